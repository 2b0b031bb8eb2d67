// Echo benchmark: this package's echo server (examples/echo.ts, the full
// codec over node:http's upgrade) against, in the same run, the usual echo
// server of each runtime: ws on Node, Deno.serve's native WebSocket on Deno,
// Bun.serve's native WebSocket on Bun. A load generator (bench/_loadgen.ts,
// its own Node process, raw TCP, pre-built masked frames) drives each case;
// the generator and the server are pinned to different cores with taskset.
//
//   node bench/echo.ts [node|deno|bun|all ...] [--quick] [--ladder]
//     [--sizes=32,4096,262144] [--conns=1,64] [--inflight=1,16]
//     [--duration=ms] [--warmup=ms] [--no-raw]
//
// --ladder runs sizes from 32 B to 1 MiB instead, each just under and at
// the thresholds where the codec changes how it copies and batches (1 KiB,
// 4 KiB, 16 KiB), at 64 connections x 16 in flight (1 MiB: x 4, a quarter
// GiB in flight), and says where ours moves fewer bytes per second than at
// the next size down.
//
// Each runtime's section starts with a raw node:net TCP echo on that runtime
// (--no-raw skips it): the ceiling for ours, which runs on node:net, and a
// check on the generator (its CPU near 1.00 means it is the limit).
//
// Both servers of a runtime run side by side (the idle one costs nothing),
// and each case runs against both back to back, alternating which goes
// first, so a disturbance from other processes weighs on both alike.
// Ratios: msg/s ours / peer (> 1: ours faster); p99 ours / peer (< 1: ours
// answers sooner).

import os from "node:os";
import process from "node:process";
import { number, numbers } from "./_args.ts";
import { busyCpus, machine } from "./_env.ts";
import {
  bin,
  cpuSeconds,
  died,
  generator,
  kill,
  pause,
  pinning,
  runSections,
  type Server,
  startPair,
  startServer,
  version,
} from "./_processes.ts";
import {
  bytes,
  failed as failedRun,
  latency,
  rate,
  si,
  table,
} from "./_timing.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");

const SIZES = numbers("sizes", [32, 4096, 256 * 1024]);
const LADDER = args.includes("--ladder");
const LADDER_SIZES = [
  32,
  1000,
  1024,
  4000,
  4096,
  16000,
  16384,
  64 * 1024,
  256 * 1024,
  1024 * 1024,
];
const CONNS = numbers("conns", [1, 64]);
const INFLIGHT = numbers("inflight", [1, 16]);
const WARMUP_MS = number("warmup", quick ? 300 : 500);
const DURATION_MS = number("duration", quick ? 1000 : 2500);
const RAW = !args.includes("--no-raw");
// Between runs: let the server finish with the last connections.
const PAUSE_MS = 300;

interface Runtime {
  name: string;
  /** Command prefix that runs a .ts file. */
  run: string[];
  /** The peer server's name and its argument to bench/_echo_peers.ts. */
  peer: string;
  peerKind: string;
  /** Ours msg/s over the peer's, wanted at 32 B, 64 × 16. */
  target: number;
}

const RUNTIMES: Runtime[] = [
  {
    name: "node",
    run: [bin("node")],
    peer: "ws",
    peerKind: "ws",
    target: 2,
  },
  {
    name: "deno",
    run: [bin("deno"), "run", "-A"],
    peer: "Deno native",
    peerKind: "deno",
    target: 1.5,
  },
  {
    name: "bun",
    run: [bin("bun")],
    peer: "Bun native",
    peerKind: "bun",
    target: 0.5,
  },
];

const wanted = args.filter((arg) => !arg.startsWith("--"));
const runtimes = wanted.length === 0 || wanted.includes("all")
  ? RUNTIMES
  : RUNTIMES.filter((r) => wanted.includes(r.name));
if (runtimes.length === 0) {
  console.error("usage: node bench/echo.ts [node|deno|bun|all] [--quick]");
  process.exit(2);
}

interface Result {
  perSecond: number;
  p50: number;
  p99: number;
  max: number;
  leastPerConn: number;
  mostPerConn: number;
  /** The generator's CPU use, in cores. */
  cpu: number;
  /** The server's CPU use over the whole run, in cores. */
  serverCpu: number;
  errors: number;
  firstError: string;
  error?: string;
}

interface Case {
  size: number;
  conns: number;
  inflight: number;
}

function caseName(c: Case): string {
  return `${bytes(c.size)} ${c.conns}x${c.inflight}`;
}

async function generate(server: Server, c: Case): Promise<Result> {
  const cpuBefore = cpuSeconds(server.child.pid);
  const started = performance.now();
  const result = await generator<Result>([
    bin("node"),
    "bench/_loadgen.ts",
    "--port",
    String(server.port),
    "--conns",
    String(c.conns),
    "--inflight",
    String(c.inflight),
    "--size",
    String(c.size),
    "--warmup",
    String(WARMUP_MS),
    "--duration",
    String(DURATION_MS),
  ], WARMUP_MS + DURATION_MS + 15_000) as Result;
  const seconds = (performance.now() - started) / 1000;
  result.serverCpu = (cpuSeconds(server.child.pid) - cpuBefore) / seconds;
  return result;
}

// Formatting -----------------------------------------------------------------

const failed = (result: Result) => failedRun(result, "no echoes");

function cores2(value: number): string {
  return Number.isFinite(value) ? value.toFixed(2) : "n/a";
}

// Main -----------------------------------------------------------------------

const cases: Case[] = [];
if (LADDER) {
  for (const size of LADDER_SIZES) {
    cases.push({ size, conns: 64, inflight: size > 256 * 1024 ? 4 : 16 });
  }
} else {
  for (const size of SIZES) {
    for (const conns of CONNS) {
      for (const inflight of INFLIGHT) cases.push({ size, conns, inflight });
    }
  }
}

// Ours moves fewer bytes per second at a size than at the next size down
// (from 1 KiB on: below it, a message's fixed cost rules).
function slowerPerByte(
  measured: { size: number; bytesPerSecond: number }[],
): string[] {
  const notes: string[] = [];
  for (let i = 1; i < measured.length; i++) {
    const [below, at] = [measured[i - 1], measured[i]];
    if (at.size < 1000 || below.size < 1000) continue;
    if (at.bytesPerSecond < below.bytesPerSecond) {
      notes.push(
        `per byte, ours is slower at ${bytes(at.size)} (${
          si(at.bytesPerSecond)
        }B/s) than at ${bytes(below.size)} (${si(below.bytesPerSecond)}B/s)`,
      );
    }
  }
  return notes;
}

async function runRuntime(runtime: Runtime): Promise<string[]> {
  console.log(
    `\n## ${runtime.name} (${
      version(runtime.run[0])
    }): ours (examples/echo.ts) vs ${runtime.peer}`,
  );
  if (RAW) await calibrate(runtime);
  const notes: string[] = [];
  const pair = await startPair(runtime.run, "echo.ts", {
    name: runtime.peer,
    file: "_echo_peers.ts",
    kind: runtime.peerKind,
  });
  if (pair === null) return [`${runtime.name}: FAILED to start`];
  const [ours, peer] = pair;
  const rows: string[][] = [];
  const perByte: { size: number; bytesPerSecond: number }[] = [];
  for (const [index, c] of cases.entries()) {
    const order = index % 2 === 0 ? [ours, peer] : [peer, ours];
    const results = new Map<Server, Result>();
    for (const server of order) {
      results.set(server, await generate(server, c));
      await pause(PAUSE_MS);
    }
    const a = results.get(ours)!;
    const b = results.get(peer)!;
    const ok = failed(a) === null && failed(b) === null;
    for (const [server, result] of results) {
      const why = failed(result);
      if (why !== null) notes.push(`${caseName(c)} ${server.name}: ${why}`);
    }
    const isTarget = c.size === 32 && c.conns === 64 && c.inflight === 16;
    const speed = a.perSecond / b.perSecond;
    if (failed(a) === null) {
      perByte.push({ size: c.size, bytesPerSecond: a.perSecond * c.size });
    }
    rows.push([
      caseName(c),
      rate(a),
      failed(a) === null ? `${si(a.perSecond * c.size)}B/s` : "n/a",
      rate(b),
      ok ? `${speed.toFixed(2)}x` : "n/a",
      latency(a.p99),
      latency(b.p99),
      ok ? `${(a.p99 / b.p99).toFixed(2)}x` : "n/a",
      `${cores2(a.serverCpu)} / ${cores2(b.serverCpu)}`,
      `${cores2(a.cpu)} / ${cores2(b.cpu)}`,
      isTarget
        ? `${
          speed >= runtime.target ? "MET" : "MISSED"
        } (>= ${runtime.target}x)`
        : "",
    ]);
    if (isTarget) {
      notes.unshift(
        `target at 32 B 64x16: ours/${runtime.peer} >= ${runtime.target}x: ${
          ok
            ? `${speed.toFixed(2)}x, ${
              speed >= runtime.target ? "met" : "MISSED"
            }`
            : "n/a"
        }`,
      );
    }
    for (const server of [ours, peer]) {
      if (died(server)) {
        notes.push(
          `${server.name} died during ${caseName(c)}: ${
            server.log.join(" | ")
          }`,
        );
      }
    }
  }
  table([
    "case (size conns x in flight)",
    "ours msg/s",
    "ours bytes/s",
    `${runtime.peer} msg/s`,
    "ratio",
    "ours p99",
    "peer p99",
    "p99 ratio",
    "server CPU ours/peer",
    "gen CPU ours/peer",
    "target",
  ], rows);
  if (LADDER) notes.push(...slowerPerByte(perByte));
  for (const note of notes) console.log(`- ${note}`);
  await kill(ours.child);
  await kill(peer.child);
  return notes.filter((n) => n.startsWith("target")).map((n) =>
    `${runtime.name}: ${n}`
  );
}

// A raw TCP echo (node:net, answering the handshake, then sending every
// byte back) on the runtime: the most any server on its node:net can do,
// which is what ours runs on. Its generator CPU near 1.00 means the
// generator, not the server, is the limit.
async function calibrate(runtime: Runtime): Promise<void> {
  try {
    const raw = await startServer("raw", [
      ...runtime.run,
      "bench/_echo_peers.ts",
      "raw",
    ]);
    const result = await generate(raw, { size: 32, conns: 64, inflight: 16 });
    const why = failed(result);
    console.log(
      `Ceiling: raw node:net TCP echo on ${runtime.name}, 32 B 64x16: ${
        why ?? `${si(result.perSecond)} msg/s, p99 ${latency(result.p99)}, ` +
            `server CPU ${cores2(result.serverCpu)}, generator CPU ${
              cores2(result.cpu)
            }`
      }`,
    );
    await kill(raw.child);
  } catch (error) {
    console.log(`Ceiling: FAILED: ${(error as Error).message}`);
  }
}

const started = performance.now();
console.log("Echo benchmark: messages/s and round-trip latency");
console.log(machine());
const busy = await busyCpus(500);
console.log(
  `CPUs busy before: ${busy.toFixed(1)} of ${os.cpus().length}${
    busy > 0.3
      ? ": other processes are competing, treat the figures with care"
      : ""
  }`,
);
console.log(pinning());
console.log(
  `Each case: ${WARMUP_MS} ms warm-up, then ${DURATION_MS} ms measured; ` +
    "binary messages, masked by the generator, echoed unmasked; " +
    "conns x in flight = connections x messages kept in flight on each. " +
    "127.0.0.1 only. ratio = ours/peer msg/s (> 1 ours faster); p99 ratio " +
    "= ours/peer (< 1 ours sooner). Server CPU in cores over the run (1.00 " +
    "= its core saturated); generator CPU near 1.00 = generator-bound.",
);
await runSections(runtimes, runRuntime, "Targets", started);
