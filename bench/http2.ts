// WebSockets over HTTP/2 (RFC 8441) beside HTTP/1.1, on each runtime: our
// server (bench/http2_peers.ts serve: node:http + upgrade() and node:http2 +
// upgradeStream() in one process, the same echo behind both) on Node, Deno
// and Bun, and our client (WebSocketStream, httpVersion "1.1" or "2") as
// the load, in processes of its own.
//
//   node bench/http2.ts [node|deno|bun|all ...] [--quick] [--rounds=3]
//     [--sizes=32,16384] [--conns=64] [--inflight=16] [--warmup=ms]
//     [--duration=ms] [--hold=1000] [--memory-rounds=2] [--client=node|same]
//
// 1. Echo throughput: `conns` WebSockets, each with `inflight` binary
//    messages in flight, over HTTP/2 (all on one session: h2c, prior
//    knowledge) and over HTTP/1.1 (a TCP connection each), back to back in
//    each round, alternating which goes first. The load is our own client
//    on both sides, so the two differ in their transport alone (node:http2
//    streams instead of node:net sockets, at both ends); a raw generator of
//    pre-masked frames (bench/_loadgen.ts) would make the client cheaper,
//    but over HTTP/2 it would be a second HTTP/2 client, and the ratio would
//    compare two generators as well as two transports. The client, like
//    the server, runs the full codec: "client cores" near 1.00 means the
//    client is the limit; "µs/msg", each end's CPU time per message, is
//    what a message costs it either way. Target: small messages (32 B) over HTTP/2 at
//    least half as fast as over HTTP/1.1.
// 2. Memory per WebSocket: `hold` WebSockets on one HTTP/2 session, and as
//    many on their own TCP connections, each in a fresh server process, one
//    echo sent over each; the server's heap used + external and its RSS,
//    after a full GC (--expose-gc on Node, --v8-flags=--expose-gc on Deno,
//    Bun.gc(true) on Bun), less the same figures taken before they opened
//    (after a warm-up of a few opened and closed), over `hold`. The client
//    process's, the same way. "left after close": what the server still
//    holds once they have all closed. Target: a WebSocket on a shared
//    session costs the server less than one on its own TCP connection
//    (under 0.95x, as heap+external and as RSS).
//
// --client=same runs the clients on the server's runtime instead of Node.
// The client and the server are pinned to different cores (taskset).
//
// What it found (2026-12-07; Node 26.10, Deno 2.9.6, Bun 1.4.5; clients on
// Node; three full runs):
//
// - 32 B: HTTP/2 at 0.8-1.1x HTTP/1.1's msg/s on all three. Per message,
//   HTTP/2 costs the server less CPU on Node and Bun (about 0.5 against
//   0.8 µs, 0.6 against 0.9), the same on Deno (0.9): one socket's reads
//   and writes carry many WebSockets' frames. Over HTTP/1.1 the client is
//   the limit; over HTTP/2 neither end is saturated.
// - 16 KiB: HTTP/2 at 0.25-0.4x, and unfair: in every run some WebSockets
//   get no echo in the whole window while one gets thousands. A bare
//   node:http2 echo (stream.pipe(stream), none of this library) starves
//   streams the same way, and 16 MiB flow-control windows on both ends do
//   not change it. Per message, each end spends about 3x the CPU of
//   HTTP/1.1 (server 40-60 µs against 12-21), about 40% of it in GC.
// - Memory, server: Node 8.25 KiB per WebSocket either way (heap+external;
//   RSS 10-30% more over HTTP/2, and noisy), Deno 10.6 against 10.1 KiB,
//   Bun 8.1 against 10.4 KiB. In Node's heap snapshots the WebSocket's own
//   objects (stages, streams, promises: ~8 KiB) are the same on both. A bare
//   node:http2 server (none of this library, 1,000 streams) holds 10.3-10.8
//   KiB of RSS per stream where a bare node:net server holds 6.8-7.3 per
//   socket; no setting changed it (initialWindowSize, headerTableSize,
//   maxHeaderListSize, maxSessionMemory). What one connection saves is the
//   kernel's: 6.7-7.5 KiB of slab per TCP connection (both ends, here),
//   about as much as node:http2's stream costs over a socket. Counting the
//   server's end of the kernel's (half), a WebSocket over HTTP/2 costs the
//   server's machine 0.75-0.76x on Bun, 0.94-0.97x on Deno and 1.06-1.25x
//   on Node what one over its own TCP connection does.
// - Memory, client (Node): 8.5 KiB per WebSocket over HTTP/2 against 7.5
//   over HTTP/1.1 (heap+external), after the client stopped keeping its
//   dial's closures (they were 12.35 and 10.24 KiB).

import process from "node:process";
import { number, numbers } from "./_args.ts";
import { load, machine } from "./_env.ts";
import {
  bin,
  died,
  generator,
  kill,
  pause,
  pinning,
  runSections,
  type Server,
  startServer,
  version,
} from "./_processes.ts";
import {
  bytes,
  failed as failedRun,
  latency,
  median,
  rate,
  ratio,
  si,
  table,
} from "./_timing.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const SIZES = numbers("sizes", [32, 16 * 1024]);
const CONNS = number("conns", 64);
const INFLIGHT = number("inflight", 16);
const WARMUP_MS = number("warmup", quick ? 300 : 500);
const DURATION_MS = number("duration", quick ? 800 : 1500);
const ROUNDS = number("rounds", quick ? 1 : 3);
const HOLD = number("hold", 1000);
const MEMORY_ROUNDS = number("memory-rounds", quick ? 1 : 2);
const SAME_CLIENT = args.includes("--client=same");
// Between runs: let the server finish with the last connections.
const PAUSE_MS = 300;
// Over HTTP/2 at 32 B, at least this fraction of HTTP/1.1's msg/s.
const SPEED_TARGET = 0.5;
// "Less memory": below this fraction of HTTP/1.1's bytes per WebSocket, as
// heap+external and as RSS (a difference of a few per cent is noise).
const MEMORY_TARGET = 0.95;

interface Runtime {
  name: string;
  /** Command prefix that runs a .ts file, with a full GC exposed. */
  run: string[];
}

const RUNTIMES: Runtime[] = [
  { name: "node", run: [bin("node"), "--expose-gc"] },
  {
    name: "deno",
    run: [bin("deno"), "run", "-A", "--v8-flags=--expose-gc"],
  },
  { name: "bun", run: [bin("bun")] },
];

const wanted = args.filter((arg) => !arg.startsWith("--"));
const runtimes = wanted.length === 0 || wanted.includes("all")
  ? RUNTIMES
  : RUNTIMES.filter((r) => wanted.includes(r.name));
if (runtimes.length === 0) {
  console.error("usage: node bench/http2.ts [node|deno|bun|all] [--quick]");
  process.exit(2);
}

type Http = "1.1" | "2";
const HTTPS: Http[] = ["1.1", "2"];
const label = (http: Http) => http === "2" ? "h2" : "h1";

interface Peer {
  server: Server;
  /** Port per HTTP version. */
  ports: Record<Http, number>;
}

async function startPeer(runtime: Runtime): Promise<Peer> {
  const server = await startServer(`${runtime.name} server`, [
    ...runtime.run,
    "bench/http2_peers.ts",
    "serve",
  ]);
  const h2 = server.log.map((line) => /h2c on port (\d+)/.exec(line))
    .find((match) => match !== null);
  if (!h2) throw new Error(`no HTTP/2 port in: ${server.log.join(" | ")}`);
  return { server, ports: { "1.1": server.port, "2": Number(h2[1]) } };
}

function clientCommand(runtime: Runtime, mode: string): string[] {
  return [
    ...(SAME_CLIENT ? runtime.run : RUNTIMES[0].run),
    "bench/http2_peers.ts",
    mode,
  ];
}

// Throughput -----------------------------------------------------------------

interface EchoResult {
  perSecond: number;
  p50: number;
  p99: number;
  leastPerConn: number;
  mostPerConn: number;
  /** The client's CPU use over the window, in cores. */
  cpu: number;
  /** The server's CPU use over the same window, in cores. */
  serverCpu: number;
  /** Every process's, in cores. */
  machineCpu: number;
  errors: number;
  firstError: string;
  error?: string;
}

const failed = (result: EchoResult) => failedRun(result, "no echoes");

// Cores that other processes used during a run's window: neither the
// client nor the server.
const others = (result: EchoResult) =>
  Math.max(0, result.machineCpu - result.cpu - result.serverCpu);
// A round in which other processes took more than this is marked.
const DISTURBED = 0.3;

function echoRun(
  runtime: Runtime,
  peer: Peer,
  http: Http,
  size: number,
): Promise<EchoResult> {
  return generator<EchoResult>([
    ...clientCommand(runtime, "echo"),
    "--port",
    String(peer.ports[http]),
    "--http",
    http,
    "--conns",
    String(CONNS),
    "--inflight",
    String(INFLIGHT),
    "--size",
    String(size),
    "--warmup",
    String(WARMUP_MS),
    "--duration",
    String(DURATION_MS),
    "--server-pid",
    String(peer.server.child.pid),
  ], WARMUP_MS + DURATION_MS + 20_000) as Promise<EchoResult>;
}

const cores = (value: number) =>
  Number.isFinite(value) ? value.toFixed(2) : "n/a";

async function throughput(runtime: Runtime): Promise<string[]> {
  console.log(
    `\n### Echo throughput: ${CONNS} WebSockets x ${INFLIGHT} in flight, ` +
      `${ROUNDS} round${ROUNDS > 1 ? "s" : ""}`,
  );
  const targets: string[] = [];
  const notes: string[] = [];
  let peer: Peer;
  try {
    peer = await startPeer(runtime);
  } catch (error) {
    return [`${runtime.name}: throughput FAILED: ${(error as Error).message}`];
  }
  const rows: string[][] = [];
  for (const size of SIZES) {
    let disturbedRounds = 0;
    const ratios: number[] = [];
    const perHttp: Record<Http, EchoResult[]> = { "1.1": [], "2": [] };
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? HTTPS : HTTPS.toReversed();
      for (const http of order) {
        perHttp[http].push(await echoRun(runtime, peer, http, size));
        await pause(PAUSE_MS);
      }
      const [h1, h2] = [perHttp["1.1"][round], perHttp["2"][round]];
      const ok = failed(h1) === null && failed(h2) === null;
      for (const [http, result] of [["1.1", h1], ["2", h2]] as const) {
        const why = failed(result);
        if (why !== null) {
          notes.push(
            `${bytes(size)} ${label(http)} round ${round + 1}: ${why}`,
          );
        }
      }
      if (ok) ratios.push(h2.perSecond / h1.perSecond);
      const disturbed = Math.max(others(h1), others(h2)) > DISTURBED;
      if (disturbed) disturbedRounds++;
      rows.push([
        `${bytes(size)}, round ${round + 1}${disturbed ? " *" : ""}`,
        rate(h1),
        rate(h2),
        ok ? ratio(h2.perSecond / h1.perSecond) : "n/a",
        `${latency(h1.p99)} / ${latency(h2.p99)}`,
        `${fairness(h1)} / ${fairness(h2)}`,
        `${cores(h1.serverCpu)} / ${cores(h2.serverCpu)}`,
        `${micros(h1, h1.serverCpu)} / ${micros(h2, h2.serverCpu)}`,
        `${cores(h1.cpu)} / ${cores(h2.cpu)}`,
        `${micros(h1, h1.cpu)} / ${micros(h2, h2.cpu)}`,
        `${cores(others(h1))} / ${cores(others(h2))}`,
        "",
      ]);
      if (died(peer.server)) {
        notes.push(`the server died: ${peer.server.log.join(" | ")}`);
        break;
      }
    }
    const middle = ratios.length > 0 ? median(ratios) : NaN;
    const isTarget = size <= 64;
    const met = middle >= SPEED_TARGET;
    const spread = (ratios.length > 1
      ? ` (rounds ${Math.min(...ratios).toFixed(2)}-${
        Math.max(...ratios).toFixed(2)
      })`
      : "") +
      (disturbedRounds > 0
        ? ` [${disturbedRounds} of ${ROUNDS} rounds disturbed by other processes]`
        : "");
    rows.push([
      `${bytes(size)}, median`,
      medianRate(perHttp["1.1"]),
      medianRate(perHttp["2"]),
      Number.isFinite(middle) ? ratio(middle) : "n/a",
      "",
      "",
      "",
      `${medianMicros(perHttp["1.1"], "serverCpu")} / ${
        medianMicros(perHttp["2"], "serverCpu")
      }`,
      "",
      `${medianMicros(perHttp["1.1"], "cpu")} / ${
        medianMicros(perHttp["2"], "cpu")
      }`,
      "",
      isTarget ? `${met ? "MET" : "MISSED"} (>= ${SPEED_TARGET}x)` : "",
    ]);
    if (isTarget) {
      targets.push(
        `${runtime.name}: small-message echo over h2 >= ${SPEED_TARGET}x ` +
          `HTTP/1.1 (${bytes(size)}, ${CONNS}x${INFLIGHT}): ${
            Number.isFinite(middle)
              ? `${ratio(middle)}${spread}, ${met ? "met" : "MISSED"}`
              : "n/a"
          }`,
      );
    } else if (Number.isFinite(middle)) {
      notes.push(`${bytes(size)}: h2/h1 ${ratio(middle)}${spread}`);
    }
  }
  table([
    "size, round",
    "h1 msg/s",
    "h2 msg/s",
    "h2/h1",
    "p99 h1 / h2",
    "per WS least-most h1 / h2",
    "server cores h1 / h2",
    "server µs/msg h1 / h2",
    "client cores h1 / h2",
    "client µs/msg h1 / h2",
    "others' cores h1 / h2",
    "target",
  ], rows);
  for (const note of notes) console.log(`- ${note}`);
  await kill(peer.server.child);
  return targets;
}

// Echoes per WebSocket in the window, the fewest and the most: "0-6151"
// means one WebSocket got none while another got 6,151.
function fairness(result: EchoResult): string {
  return failed(result) === null
    ? `${si(result.leastPerConn)}-${si(result.mostPerConn)}`
    : "n/a";
}

// CPU time per echoed message, in µs: what a message costs a process,
// whichever end is the limit.
function micros(result: EchoResult, cpu: number): string {
  return failed(result) === null && Number.isFinite(cpu)
    ? (cpu / result.perSecond * 1e6).toFixed(2)
    : "n/a";
}

function medianMicros(
  results: EchoResult[],
  which: "cpu" | "serverCpu",
): string {
  const ok = results.filter((result) =>
    failed(result) === null && Number.isFinite(result[which])
  );
  return ok.length === 0
    ? "n/a"
    : median(ok.map((result) => result[which] / result.perSecond * 1e6))
      .toFixed(2);
}

function medianRate(results: EchoResult[]): string {
  const ok = results.filter((result) => failed(result) === null);
  return ok.length === 0
    ? "FAILED"
    : `${si(median(ok.map((result) => result.perSecond)))}/s`;
}

// Memory ---------------------------------------------------------------------

interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  collected: boolean;
  open?: Record<"h1" | "h2", number>;
}

interface Snapshot {
  client: Memory;
  server: Memory;
  /** The kernel's slab, bytes: sockets at both ends (NaN off Linux). */
  kernelSlab: number;
}

interface HoldResult {
  conns: number;
  openSeconds: number;
  base: Snapshot;
  loaded: Snapshot;
  after: Snapshot;
  errors: number;
  firstError: string;
  error?: string;
}

/** Bytes per WebSocket of one process, from one hold run. */
interface PerSocket {
  heap: number;
  rss: number;
  /** Heap used + external still held after they all closed. */
  left: number;
}

interface MemoryResult {
  server: PerSocket;
  client: PerSocket;
  /** The kernel's slab per WebSocket, both ends' sockets. */
  kernel: number;
  openSeconds: number;
}

async function memoryRun(
  runtime: Runtime,
  http: Http,
): Promise<MemoryResult | string> {
  let peer: Peer;
  try {
    peer = await startPeer(runtime);
  } catch (error) {
    return (error as Error).message;
  }
  try {
    const result = await generator<HoldResult>([
      ...clientCommand(runtime, "hold"),
      "--port",
      String(peer.ports[http]),
      "--memory-port",
      String(peer.ports["1.1"]),
      "--http",
      http,
      "--conns",
      String(HOLD),
    ], 100_000) as HoldResult;
    if (result.error) return result.error;
    if (result.errors > 0) {
      return `${result.errors} errors: ${result.firstError}`;
    }
    const open = result.loaded.server.open?.[label(http)];
    if (open !== HOLD) return `the server had ${open} open, not ${HOLD}`;
    const per = (side: "client" | "server"): PerSocket => {
      const [base, loaded, after] = [result.base, result.loaded, result.after]
        .map((snapshot) => snapshot[side]);
      const heap = (m: Memory) => m.heapUsed + m.external;
      return {
        heap: (heap(loaded) - heap(base)) / HOLD,
        rss: (loaded.rss - base.rss) / HOLD,
        left: (heap(after) - heap(base)) / HOLD,
      };
    };
    return {
      server: per("server"),
      client: per("client"),
      kernel: (result.loaded.kernelSlab - result.base.kernelSlab) / HOLD,
      openSeconds: result.openSeconds,
    };
  } finally {
    await kill(peer.server.child);
  }
}

const kib = (value: number) =>
  Number.isFinite(value) ? `${(value / 1024).toFixed(2)} KiB` : "n/a";

async function memoryPerSocket(runtime: Runtime): Promise<string[]> {
  console.log(
    `\n### Memory per WebSocket: ${HOLD} open, after GC, baseline ` +
      `subtracted; a fresh server each run, ${MEMORY_ROUNDS} round${
        MEMORY_ROUNDS > 1 ? "s" : ""
      }`,
  );
  const runs: Record<Http, MemoryResult[]> = { "1.1": [], "2": [] };
  const notes: string[] = [];
  const rows: string[][] = [];
  const name = (http: Http) =>
    http === "2" ? "h2, one session" : "h1, a TCP conn each";
  for (let round = 0; round < MEMORY_ROUNDS; round++) {
    const order = round % 2 === 0 ? HTTPS : HTTPS.toReversed();
    for (const http of order) {
      const result = await memoryRun(runtime, http);
      if (typeof result === "string") {
        notes.push(`${label(http)} round ${round + 1}: FAILED: ${result}`);
        continue;
      }
      runs[http].push(result);
    }
    for (const http of HTTPS) {
      const result = runs[http][round];
      if (result === undefined) continue;
      rows.push([
        `${name(http)}, round ${round + 1}`,
        kib(result.server.heap),
        kib(result.server.rss),
        kib(result.server.left),
        kib(result.client.heap),
        kib(result.client.rss),
        kib(result.client.left),
        kib(result.kernel),
        kib(result.server.rss + result.kernel / 2),
        `${result.openSeconds.toFixed(2)} s`,
      ]);
    }
    await pause(PAUSE_MS);
  }
  const mid = (http: Http, pick: (r: MemoryResult) => number) =>
    runs[http].length === 0 ? NaN : median(runs[http].map(pick));
  const picks: ((r: MemoryResult) => number)[] = [
    (r) => r.server.heap,
    (r) => r.server.rss,
    (r) => r.server.left,
    (r) => r.client.heap,
    (r) => r.client.rss,
    (r) => r.client.left,
    (r) => r.kernel,
    (r) => r.server.rss + r.kernel / 2,
  ];
  for (const http of HTTPS) {
    rows.push([
      `${name(http)}, median`,
      ...picks.map((pick) => kib(mid(http, pick))),
      "",
    ]);
  }
  const ratios = picks.map((pick) => mid("2", pick) / mid("1.1", pick));
  rows.push([
    "h2 / h1",
    ...ratios.map((value, i) =>
      i === 2 || i === 5 || !Number.isFinite(value) ? "" : ratio(value)
    ),
    "",
  ]);
  table([
    "transport, round",
    "server heap+ext",
    "server RSS",
    "server left after close",
    "client heap+ext",
    "client RSS",
    "client left after close",
    "kernel slab, both ends",
    "server total",
    `open ${HOLD}`,
  ], rows);
  for (const note of notes) console.log(`- ${note}`);
  const [heap, rss, total] = [ratios[0], ratios[1], ratios[7]];
  const less = (value: number) => value < MEMORY_TARGET;
  const verdict = (value: number) =>
    Number.isFinite(value)
      ? `${ratio(value)} (${less(value) ? "less" : "NOT less"})`
      : "n/a";
  return [
    `${runtime.name}: a WebSocket on a shared session costs the server's ` +
    `machine less memory than one on its own TCP connection (server RSS + ` +
    `its end's kernel sockets, h2/h1 < ${MEMORY_TARGET}x): ${verdict(total)}: ${
      less(total) ? "met" : "MISSED"
    }; the server process alone: ` +
    `heap+external ${verdict(heap)}, RSS ${verdict(rss)}`,
  ];
}

// Main -----------------------------------------------------------------------

async function runRuntime(runtime: Runtime): Promise<string[]> {
  console.log(
    `\n## ${runtime.name} (${
      version(runtime.run[0])
    }): server bench/http2_peers.ts on ${runtime.name}, clients on ${
      SAME_CLIENT ? runtime.name : "node"
    }`,
  );
  return [
    ...await throughput(runtime),
    ...await memoryPerSocket(runtime),
  ];
}

const started = performance.now();
console.log(
  "HTTP/2 benchmark: WebSockets over HTTP/2 (RFC 8441, extended CONNECT, " +
    "one h2c session) beside HTTP/1.1 (a TCP connection each); this " +
    "library at both ends",
);
console.log(machine());
console.log(await load("before"));
console.log(pinning());
console.log(
  `Throughput: each run ${WARMUP_MS} ms warm-up, then ${DURATION_MS} ms ` +
    "measured; binary messages; h1 and h2 back to back in each round, " +
    "alternating which goes first; 127.0.0.1 only. h2/h1 = msg/s over " +
    "HTTP/2 / over HTTP/1.1 (< 1: HTTP/2 slower). per WS least-most: " +
    "echoes of the WebSocket that got the fewest and the most (fairness). " +
    "cores: CPU use over the measured window (1.00 = a core saturated: " +
    "that end is the limit); µs/msg: CPU time per echoed message, what a " +
    "message costs that end, whichever end is the limit; others' cores: " +
    "CPU that other processes took meanwhile (a round marked * lost more " +
    `than ${DISTURBED} of a core to them: treat it with care).`,
);
console.log(
  "Memory: bytes per WebSocket = (loaded - baseline) / WebSockets, after " +
    "a full GC; heap+ext = V8's (JSC's on Bun) heap used + external " +
    "(ArrayBuffers, native buffers it knows of); RSS = resident memory, " +
    "with what the runtime holds outside the JS heap (node:http2's " +
    "nghttp2 state, socket buffers); kernel slab = the growth of the " +
    "kernel's slab (/proc/meminfo), where each TCP socket's structures " +
    "live, at both ends, as both run here; server total = server RSS + half " +
    "the kernel slab (its end of each connection).",
);
await runSections(runtimes, runRuntime, "Targets", started);
