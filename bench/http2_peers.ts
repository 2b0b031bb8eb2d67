// The processes of the HTTP/2 benchmark (bench/http2.ts), on Node, Deno or
// Bun. One server, and two kinds of client, all with this library on both
// ends, so that HTTP/2 and HTTP/1.1 differ in their transport alone.
//
//   node --expose-gc bench/http2_peers.ts serve [--host 127.0.0.1]
//
// serves the same echo (`readable.pipeTo(writable)`), with the same options,
// two ways at once:
//
// - HTTP/1.1: a node:http server's 'upgrade' event, `upgrade()`
//   (src/adapters/node.ts): a TCP connection per WebSocket;
// - HTTP/2 over cleartext (h2c, prior knowledge): a node:http2 server with
//   SETTINGS_ENABLE_CONNECT_PROTOCOL, whose 'stream' event hands each
//   extended CONNECT to `upgradeStream()` (src/adapters/node_http2.ts): a
//   stream of a shared session per WebSocket, node:http2's defaults
//   otherwise (64 KiB flow-control windows).
//
// It prints "http2 echo server listening on ws://HOST:PORT (h2c on port
// P2)": HTTP/1.1's port, then HTTP/2's. Both listen in every run, so that a
// process serving one is the same process as one serving the other. On the
// HTTP/1.1 port, `GET /memory` collects garbage (where the runtime allows:
// Node and Deno given --expose-gc, Bun always) and answers the process's
// memory as JSON, with the WebSockets open over each.
//
//   node bench/http2_peers.ts echo --port P --http 1.1|2 [--conns 64]
//     [--inflight 16] [--size 32] [--warmup 500] [--duration 2000]
//     [--server-pid PID]
//
// is the throughput load: `conns` WebSockets of our client
// (`WebSocketStream`, `httpVersion` 1.1 or 2: all on one session over
// HTTP/2), each keeping `inflight` binary messages of `size` bytes in
// flight, a new one sent as each echo arrives. After the warm-up, it counts
// echoes and their round trips for `duration` ms, then prints one JSON line
// (as bench/_loadgen.ts does; with the server's CPU use over the same
// window, read from /proc, given its pid, and the whole machine's) and
// exits, dropping its connections.
//
//   node --expose-gc bench/http2_peers.ts hold --port P --memory-port P1
//     --http 1.1|2 [--conns 1000]
//
// is the memory load: it opens and closes a few WebSockets (the code they
// run is compiled, and on HTTP/2 the session made and gone), then asks the
// server's memory and takes its own (the baseline), opens `conns`
// WebSockets and sends one echo over each, takes both again, closes them
// all, takes both once more, and prints the three as one JSON line.

import { readFileSync } from "node:fs";
import http from "node:http";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { upgrade } from "../src/adapters/node.ts";
import {
  type NodeHttp2Headers,
  type NodeHttp2Stream,
  upgradeStream,
} from "../src/adapters/node_http2.ts";
import { WebSocketStream } from "../src/client.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { option } from "./_args.ts";
import { busyCpus } from "./_env.ts";
import { Histogram } from "./_histogram.ts";
import { cpuSeconds } from "./_processes.ts";
import { GeneratorRun } from "./_raw_client.ts";

const host = option("host", "127.0.0.1");
const LIMIT = 64 * 1024 * 1024;
// The same limits on both ends and both transports.
const LIMITS = {
  maxFrameSize: LIMIT,
  maxMessageSize: LIMIT,
  fragmentSize: LIMIT,
};

// Memory ---------------------------------------------------------------------

/** A process's memory, once garbage is collected. */
export interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  /** Whether a full collection ran first. */
  collected: boolean;
}

// A full collection where the runtime offers one, three times, with timers
// between for what finalizers and weak callbacks free; then the figures.
async function memory(): Promise<Memory> {
  const g = globalThis as {
    gc?: () => void;
    Bun?: { gc(sync: boolean): void };
  };
  const full = g.Bun ? () => g.Bun!.gc(true) : g.gc;
  for (let i = 0; i < 3; i++) {
    full?.();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  const { rss, heapUsed, external } = process.memoryUsage();
  return { rss, heapUsed, external, collected: full !== undefined };
}

// Server ---------------------------------------------------------------------

async function serve(): Promise<void> {
  const open = { h1: 0, h2: 0 };
  const echo = async (ws: WebSocketConnection, over: "h1" | "h2") => {
    try {
      const { readable, writable } = await ws.opened;
      open[over]++;
      try {
        await readable.pipeTo(writable);
      } finally {
        open[over]--;
      }
    } catch {
      // A connection dropped when a client process exits.
    }
    await ws.closed.catch(() => {});
  };

  const h1 = http.createServer(async (request, response) => {
    if (request.url !== "/memory") {
      response.writeHead(404).end();
      return;
    }
    const measured = await memory();
    response.writeHead(200, { "content-type": "application/json" });
    response.end(JSON.stringify({ ...measured, open }));
  });
  h1.on("upgrade", (request, socket, head) => {
    void echo(
      upgrade(request, socket as never, head, { ...LIMITS, origins: "*" }),
      "h1",
    );
  });

  const h2 = http2.createServer({ settings: { enableConnectProtocol: true } });
  h2.on("stream", (stream: http2.ServerHttp2Stream, headers) => {
    if (headers[":method"] !== "CONNECT") {
      stream.respond({ ":status": 404 }, { endStream: true });
      return;
    }
    void echo(
      upgradeStream(
        stream as unknown as NodeHttp2Stream,
        headers as NodeHttp2Headers,
        { ...LIMITS, origins: "*" },
      ),
      "h2",
    );
  });
  // A client process that exits drops its session: serve on.
  h2.on("sessionError", () => {});

  const listen = (server: http.Server | http2.Http2Server) =>
    new Promise<number>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, host, () => {
        resolve((server.address() as AddressInfo).port);
      });
    });
  const port1 = await listen(h1);
  const port2 = await listen(h2);
  console.log(
    `http2 echo server listening on ws://${host}:${port1} (h2c on port ${port2})`,
  );
}

// Clients --------------------------------------------------------------------

const port = option("port", 0);
const httpVersion = option("http", "1.1") as "1.1" | "2";
const conns = option("conns", 64);

function connect(): WebSocketStream {
  return new WebSocketStream(`ws://${host}:${port}/`, {
    ...LIMITS,
    httpVersion,
  });
}

/** Opens `count` WebSockets, at most `batch` handshakes at a time. */
async function openMany(
  count: number,
  batch: number,
): Promise<{ ws: WebSocketStream; writer: Writer; reader: Reader }[]> {
  const opened = [];
  for (let at = 0; at < count; at += batch) {
    const next = Array.from({ length: Math.min(batch, count - at) }, connect);
    for (const ws of next) {
      const { readable, writable } = await ws.opened;
      opened.push({
        ws,
        writer: writable.getWriter(),
        reader: readable.getReader(),
      });
    }
  }
  return opened;
}

type Writer = WritableStreamDefaultWriter<Uint8Array | string>;
type Reader = ReadableStreamDefaultReader<Uint8Array | string>;

async function echoLoad(): Promise<void> {
  const inflight = option("inflight", 16);
  const size = option("size", 32);
  const warmupMs = option("warmup", 500);
  const durationMs = option("duration", 2000);
  const serverPid = option("server-pid", 0);
  const connectMs = 10_000;
  const run = new GeneratorRun(connectMs + warmupMs + durationMs + 5000);
  const histogram = new Histogram();
  const payload = new Uint8Array(size).map((_, i) => (i * 37) & 0xff);
  const WARMING = 1;
  const MEASURING = 2;
  const DONE = 3;
  let phase = 0;
  const onWriteError = (error: unknown) => {
    if (phase !== DONE) run.fail(`write failed: ${error}`);
  };

  // One WebSocket's loop: `inflight` sent, then one more per echo.
  const drive = async (writer: Writer, reader: Reader) => {
    const sent = new Float64Array(inflight);
    let head = 0;
    let tail = 0;
    let count = 0;
    const send = () => {
      sent[tail] = performance.now();
      tail = (tail + 1) % inflight;
      writer.write(payload).catch(onWriteError);
    };
    for (let i = 0; i < inflight; i++) send();
    while (phase !== DONE) {
      const { value, done } = await reader.read();
      if (done) {
        if (phase !== DONE) run.fail("the server closed a WebSocket");
        break;
      }
      if (typeof value === "string" || value.byteLength !== size) {
        run.fail(`an echo of ${value.length} instead of ${size} bytes`);
      }
      if (phase === MEASURING) {
        count++;
        histogram.add(performance.now() - sent[head]);
      }
      head = (head + 1) % inflight;
      if (phase !== DONE) send();
    }
    return count;
  };

  const connectDeadline = setTimeout(
    () => run.finish({ error: "connecting timed out" }),
    connectMs,
  );
  const all = await openMany(conns, 16);
  clearTimeout(connectDeadline);
  phase = WARMING;
  const counts = all.map(({ writer, reader }) =>
    drive(writer, reader).catch((error) => {
      if (phase !== DONE) run.fail(`read failed: ${error}`);
      return 0;
    })
  );
  await new Promise((resolve) => setTimeout(resolve, warmupMs));
  phase = MEASURING;
  const started = performance.now();
  const cpuStart = process.cpuUsage();
  const serverStart = cpuSeconds(serverPid || undefined);
  // The whole machine's CPU use over the window: what is neither this
  // process nor the server is other processes', disturbing the figures.
  const machineCpu = await busyCpus(durationMs);
  // Echoes still arriving after this turn are not counted.
  phase = DONE;
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  const serverCpu = (cpuSeconds(serverPid || undefined) - serverStart) /
    seconds;
  // The loops each stop at their next echo; those that have none coming
  // (none in flight) are not waited for.
  const perConn = await Promise.race([
    Promise.all(counts),
    new Promise<null>((resolve) => setTimeout(() => resolve(null), 2000)),
  ]);
  if (perConn === null) {
    run.finish({ error: "a WebSocket stopped echoing" });
    return;
  }
  const messages = perConn.reduce((a, b) => a + b, 0);
  run.finish({
    conns,
    inflight,
    size,
    seconds,
    messages,
    perSecond: messages / seconds,
    p50: histogram.percentile(0.5),
    p99: histogram.percentile(0.99),
    max: histogram.percentile(1),
    leastPerConn: Math.min(...perConn),
    mostPerConn: Math.max(...perConn),
    cpu: (cpu.user + cpu.system) / 1e6 / seconds,
    // The server's, over the same window (NaN without --server-pid).
    serverCpu,
    // Every process's, in cores.
    machineCpu,
  });
}

// The kernel's slab memory, in bytes (Linux; NaN elsewhere): where each TCP
// socket's structures live, at both ends of a connection on this machine.
// It is the whole machine's, so other processes' churn shows in it too.
function kernelSlab(): number {
  try {
    const match = /^Slab:\s+(\d+) kB$/m.exec(
      readFileSync("/proc/meminfo", "utf8"),
    );
    return match === null ? NaN : Number(match[1]) * 1024;
  } catch {
    return NaN;
  }
}

async function holdLoad(): Promise<void> {
  const memoryPort = option("memory-port", 0);
  const run = new GeneratorRun(90_000);
  const server = () =>
    new Promise<Memory & { open: { h1: number; h2: number } }>(
      (resolve, reject) => {
        // Its own connection, closed after: no agent keeps it.
        http.get({ host, port: memoryPort, path: "/memory", agent: false }, (
          response,
        ) => {
          let body = "";
          response.setEncoding("utf8");
          response.on("data", (chunk: string) => body += chunk);
          response.on("end", () => resolve(JSON.parse(body)));
        }).on("error", reject);
      },
    );
  // This process first (its figures then include nothing of the query),
  // then the kernel's slab (sockets and their bookkeeping, both ends).
  const both = async () => {
    const client = await memory();
    const result = { client, server: await server() };
    return { ...result, kernelSlab: kernelSlab() };
  };
  const echoOnce = async (
    all: { writer: Writer; reader: Reader }[],
  ) => {
    const ping = new Uint8Array(32);
    await Promise.all(all.map(async ({ writer, reader }) => {
      await writer.write(ping);
      const { value } = await reader.read();
      if (value === undefined || value.length !== 32) run.fail("no echo");
    }));
  };
  const closeAll = async (all: { ws: WebSocketStream }[]) => {
    for (const { ws } of all) ws.close({ closeCode: 1000 });
    await Promise.all(all.map(({ ws }) => ws.closed.catch(() => {})));
  };

  // Warm-up: the code compiled, the runtime's lazy parts loaded, both ends.
  for (let i = 0; i < 2; i++) {
    const few = await openMany(8, 8);
    await echoOnce(few);
    await closeAll(few);
  }
  await server();
  await new Promise((resolve) => setTimeout(resolve, 200));
  const base = await both();
  const started = performance.now();
  const all = await openMany(conns, 50);
  const openSeconds = (performance.now() - started) / 1000;
  await echoOnce(all);
  const loaded = await both();
  await closeAll(all);
  // Nothing here holds them any more: what stays is what the library keeps.
  all.length = 0;
  // The server's side of the last closes, and of the session's.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const after = await both();
  run.finish({ conns, openSeconds, base, loaded, after });
}

const mode = process.argv[2];
if (mode === "serve") await serve();
else if (mode === "echo") await echoLoad();
else if (mode === "hold") await holdLoad();
else {
  console.error("usage: http2_peers.ts serve|echo|hold [options]");
  process.exit(2);
}
