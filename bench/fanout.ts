// Fan-out benchmark: one publisher, N subscribers, every broadcast to every
// subscriber. This package's broadcast server (examples/broadcast.ts, the
// node:http upgrade path, Broadcast) against, in the same run, what each
// runtime's users write: ws's README recipe (a loop over wss.clients) on
// Node, Deno.serve's native WebSocket with a loop of send() on Deno, and
// Bun.serve's native publish() on Bun (bench/_fanout_peers.ts). A load
// generator (bench/_fanout_gen.ts, its own Node process, raw TCP) drives
// each case; generator and server are pinned to different cores.
//
//   node bench/fanout.ts [node|deno|bun|all ...] [--quick]
//     [--subscribers=100,1000] [--sizes=32,4096] [--inflight=1,16]
//     [--duration=ms] [--warmup=ms]
//
// On Node, ours runs compiled to JavaScript, as users of the npm package
// run it (Node's stripping of TypeScript types would add some 37 MiB to its
// RSS); Deno and Bun run the .ts sources, as their users do.
//
// Figures per case: messages delivered per second (all subscribers), the
// time from the publisher's write to the last subscriber's read of a
// broadcast (p99) and to the first subscriber's (median), and the server's
// RSS: its peak during the case, and after it, once the connections have
// closed (V8 keeps the young generation it grew under load: the peak
// follows the rate of garbage, which grows with the rate of messages). Each case runs against both servers back to
// back, alternating which goes first.

import process from "node:process";
import { number, numbers } from "./_args.ts";
import { load, machine } from "./_env.ts";
import {
  bin,
  cpuSeconds,
  died,
  generator,
  kill,
  pause,
  pinning,
  rss,
  runSections,
  type Server,
  startPair,
  version,
} from "./_processes.ts";
import { bytes, failed as failedRun, latency, rate, table } from "./_timing.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");

const SUBSCRIBERS = numbers("subscribers", [100, 1000]);
const SIZES = numbers("sizes", [32, 4096]);
const INFLIGHT = numbers("inflight", [1, 16]);
const WARMUP_MS = number("warmup", quick ? 300 : 500);
const DURATION_MS = number("duration", quick ? 1000 : 2500);
// Between runs: let the server finish with the last connections.
const PAUSE_MS = 500;

interface Runtime {
  name: string;
  /** Command prefix that runs a .ts file. */
  run: string[];
  /** The peer server's name and its argument to bench/_fanout_peers.ts. */
  peer: string;
  peerKind: string;
  /** Ours delivered msg/s over the peer's, wanted at 1,000 x 16. */
  targets: Record<number, number>;
  /** Ours runs compiled to JavaScript, as from npm (see compiled()). */
  compiled: boolean;
}

const RUNTIMES: Runtime[] = [
  {
    name: "node",
    run: [bin("node")],
    peer: "ws",
    peerKind: "ws",
    targets: { 32: 8, 4096: 4 },
    compiled: true,
  },
  {
    name: "deno",
    run: [bin("deno"), "run", "-A"],
    peer: "Deno native",
    peerKind: "deno",
    targets: { 32: 8, 4096: 4 },
    compiled: false,
  },
  {
    name: "bun",
    run: [bin("bun")],
    peer: "Bun publish",
    peerKind: "bun",
    targets: { 32: 0.6, 4096: 0.4 },
    compiled: false,
  },
];
// The first subscriber's median latency, wanted under this (ms).
const FIRST_TARGET_MS = 2;
// Ours RSS after the case (the connections closed) over the peer's,
// wanted at most this.
const RSS_TARGET = 1.25;

const wanted = args.filter((arg) => !arg.startsWith("--"));
const runtimes = wanted.length === 0 || wanted.includes("all")
  ? RUNTIMES
  : RUNTIMES.filter((r) => wanted.includes(r.name));
if (runtimes.length === 0) {
  console.error("usage: node bench/fanout.ts [node|deno|bun|all] [--quick]");
  process.exit(2);
}

interface Case {
  subscribers: number;
  size: number;
  inflight: number;
}

interface Result {
  perSecond: number;
  lastP99: number;
  firstP50: number;
  leastPerSubscriber: number;
  mostPerSubscriber: number;
  /** The generator's CPU use, in cores. */
  cpu: number;
  /** The server's CPU use over the case, in cores. */
  serverCpu: number;
  /** The server's peak RSS during the case, in bytes. */
  peakRss: number;
  /** Its RSS after the case, once the connections have closed. */
  afterRss: number;
  errors: number;
  firstError: string;
  error?: string;
}

function caseName(c: Case): string {
  return `${c.subscribers} x ${bytes(c.size)} x ${c.inflight}`;
}

async function generate(server: Server, c: Case): Promise<Result> {
  const pid = server.child.pid;
  const cpuBefore = cpuSeconds(pid);
  const started = performance.now();
  let peakRss = rss(pid);
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rss(pid));
  }, 50);
  const result = await generator<Result>([
    bin("node"),
    "bench/_fanout_gen.ts",
    "--port",
    String(server.port),
    "--subscribers",
    String(c.subscribers),
    "--inflight",
    String(c.inflight),
    "--size",
    String(c.size),
    "--warmup",
    String(WARMUP_MS),
    "--duration",
    String(DURATION_MS),
  ], WARMUP_MS + DURATION_MS + 40_000) as Result;
  clearInterval(sampler);
  const seconds = (performance.now() - started) / 1000;
  result.serverCpu = (cpuSeconds(pid) - cpuBefore) / seconds;
  result.peakRss = Math.max(peakRss, rss(pid));
  // Once the generator's sockets have gone.
  await pause(PAUSE_MS);
  result.afterRss = rss(pid);
  return result;
}

// Formatting -----------------------------------------------------------------

const failed = (result: Result) => failedRun(result, "nothing delivered");

function mib(value: number): string {
  return Number.isFinite(value) ? `${(value / 1024 / 1024).toFixed(0)}` : "?";
}

// Main -----------------------------------------------------------------------

const cases: Case[] = [];
for (const subscribers of SUBSCRIBERS) {
  for (const size of SIZES) {
    for (const inflight of INFLIGHT) {
      cases.push({ subscribers, size, inflight });
    }
  }
}

async function runRuntime(runtime: Runtime): Promise<string[]> {
  console.log(
    `\n## ${runtime.name} (${
      version(runtime.run[0])
    }): ours (examples/broadcast.ts${
      runtime.compiled ? ", compiled as for npm" : ""
    }) vs ${runtime.peer}`,
  );
  const notes: string[] = [];
  const targets: string[] = [];
  const pair = await startPair(runtime.run, "broadcast.ts", {
    name: runtime.peer,
    file: "_fanout_peers.ts",
    kind: runtime.peerKind,
  }, { compiled: runtime.compiled });
  if (pair === null) return [`${runtime.name}: FAILED to start`];
  const [ours, peer] = pair;
  const rows: string[][] = [];
  for (const [index, c] of cases.entries()) {
    const order = index % 2 === 0 ? [ours, peer] : [peer, ours];
    const results = new Map<Server, Result>();
    for (const server of order) results.set(server, await generate(server, c));
    const a = results.get(ours)!;
    const b = results.get(peer)!;
    const ok = failed(a) === null && failed(b) === null;
    for (const [server, result] of results) {
      const why = failed(result);
      if (why !== null) notes.push(`${caseName(c)} ${server.name}: ${why}`);
    }
    const speed = a.perSecond / b.perSecond;
    const memory = a.afterRss / b.afterRss;
    rows.push([
      caseName(c),
      rate(a),
      rate(b),
      ok ? `${speed.toFixed(2)}x` : "n/a",
      `${latency(a.lastP99)} / ${latency(b.lastP99)}`,
      `${latency(a.firstP50)} / ${latency(b.firstP50)}`,
      `${mib(a.peakRss)} / ${mib(b.peakRss)}`,
      `${mib(a.afterRss)} / ${mib(b.afterRss)}`,
      `${a.serverCpu.toFixed(2)} / ${b.serverCpu.toFixed(2)}`,
      `${a.cpu?.toFixed(2)} / ${b.cpu?.toFixed(2)}`,
    ]);
    const wantedSpeed = runtime.targets[c.size];
    if (c.subscribers === 1000 && c.inflight === 16 && wantedSpeed) {
      const verdict = (met: boolean) => met ? "met" : "MISSED";
      targets.push(
        `${caseName(c)}: delivered ours/${runtime.peer} >= ${wantedSpeed}x: ${
          ok ? `${speed.toFixed(2)}x, ${verdict(speed >= wantedSpeed)}` : "n/a"
        }; first subscriber median < ${FIRST_TARGET_MS} ms: ${
          latency(a.firstP50)
        }, ${
          verdict(a.firstP50 < FIRST_TARGET_MS)
        }; RSS after the case ours/${runtime.peer} <= ${RSS_TARGET}x: ${
          memory.toFixed(2)
        }x, ${verdict(memory <= RSS_TARGET)}`,
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
    "case (subscribers x size x in flight)",
    "ours delivered",
    `${runtime.peer} delivered`,
    "ratio",
    "p99 to last ours / peer",
    "median to first ours / peer",
    "peak RSS MiB ours / peer",
    "RSS after",
    "server CPU ours / peer",
    "gen CPU ours / peer",
  ], rows);
  for (const note of [...targets, ...notes]) console.log(`- ${note}`);
  await kill(ours.child);
  await kill(peer.child);
  return targets.map((line) => `${runtime.name}: ${line}`);
}

const started = performance.now();
console.log("Fan-out benchmark: one publisher, N subscribers");
console.log(machine());
console.log(await load("before"));
console.log(pinning());
console.log(
  `Each case: ${WARMUP_MS} ms warm-up, then ${DURATION_MS} ms measured; ` +
    "binary broadcasts from one publisher, the next sent when the last " +
    "subscriber has one of those in flight; every subscriber checked to " +
    "get every broadcast once, in order. delivered = messages read by all " +
    "subscribers per second; ratio = ours/peer (> 1 ours faster). " +
    "127.0.0.1 only. Server CPU in cores over the case (1.00 = its core " +
    "saturated); generator CPU near 1.00 = generator-bound.",
);
await runSections(
  runtimes,
  runRuntime,
  "Targets (1,000 subscribers, 16 in flight)",
  started,
);
