// Compressed echo benchmark: this package's echo server (examples/echo.ts,
// permessage-deflate on) against ws's WebSocketServer with perMessageDeflate
// on, in the same run, on the same runtime. Two figures:
//
// - throughput: a load generator (its own Node process: ws's client with
//   perMessageDeflate, the same for both servers) keeps `inflight`
//   compressible text messages in flight on each of `conns` connections for
//   a fixed time, and counts the echoes. It sends one pre-compressed frame
//   again and again (it asks for client_no_context_takeover, so that is
//   valid) and inflates the echoes, which the servers compress with
//   context takeover;
// - memory per connection: 1,000 connections, each having sent and got
//   back one compressed message (so both ends hold their zlib contexts),
//   then idle; the server's resident set (/proc/PID/status VmRSS) before
//   and after, divided by 1,000. The same without compression offered
//   shows how much of it is the connection itself. On V8 the figure also
//   holds young-generation growth: V8 doubles that space each time the
//   bytes surviving its collections outgrow it, so a server that keeps
//   more per connection pays more than its heap snapshot shows.
//
//   node bench/deflate.ts [node|deno|bun|all ...] [--quick]
//     [--sizes=4096,65536] [--conns=16] [--inflight=4] [--idle=1000]
//     [--duration=ms] [--warmup=ms] [--rounds=3]
//
// Throughput is measured in rounds (3, or 1 with --quick), both servers
// running, the order alternating; the table gives the median rates and the
// median of the rounds' ratios, with their range: on this machine, one run
// of one server and then one of the other gave 64 KiB ratios from 0.89 to
// 1.03 on the same code.
//
// On Node, the 64 KiB rates follow V8's garbage collector more than either
// library's code. Both servers allocate about 166 KiB of buffers (zlib's
// and the socket's) per echo, and V8 counts those allocated since its last
// full collection as old generation when it decides to start the next.
// A server that settles into full collections every ~100 ms runs ~5-10%
// slower than one that gets by with young-generation collections. Ours has
// settled into the first in every traced run, ws mostly into the second
// (0 to 9 full collections per 2.5 s); --trace-gc on a server shows which.
//
// The generator inflates the echoes, so it can be the limit: its CPU use is
// printed (near 1.00: the generator, not the server, set
// the pace, and the ratio understates the difference). The servers and the
// generator are pinned to different cores when taskset exists.
//
// Helper modes, started by the orchestrator:
//   deflate.ts ws-server --port 0       ws with perMessageDeflate on
//   deflate.ts load --port P [--conns N --inflight K --size S ...]
//   deflate.ts idle --port P --conns N  opens N compressed connections

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import process from "node:process";
import { fileURLToPath } from "node:url";
import zlib from "node:zlib";
import { numbers, option } from "./_args.ts";
import { load, machine } from "./_env.ts";
import { bytes, median, si, table } from "./_timing.ts";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = (name: string) =>
  fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
const LIMIT = 64 * 1024 * 1024;

// Under Bun, import "ws" gives Bun's own; load the package by path.
function requireWs(): {
  WebSocket: new (url: string, options: Record<string, unknown>) => WsClient;
  WebSocketServer: new (options: Record<string, unknown>) => WsServer;
} {
  const require = createRequire(import.meta.url);
  return require(
    fileURLToPath(new URL("../node_modules/ws/index.js", import.meta.url)),
  );
}

interface WsClient {
  on(event: string, listener: (...args: never[]) => void): void;
  once(event: string, listener: (...args: never[]) => void): void;
  send(data: string): void;
  terminate(): void;
}

interface WsServer {
  on(event: string, listener: (...args: never[]) => void): void;
  address(): { port: number };
}

/** Compressible text: words drawn from a small vocabulary, like JSON chatter. */
function text(size: number): string {
  const words = [
    '{"id":',
    '"name":"',
    "streamsocket",
    '","value":',
    "42",
    "true",
    '"items":[',
    "],",
    "null",
    '"ok"}',
    " ",
  ];
  let x = 12345;
  let out = "";
  while (out.length < size) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out += words[(x >>> 16) % words.length];
    if ((x & 7) === 0) out += String((x >>> 8) & 0xffff);
  }
  return out.slice(0, size);
}

// ---------------------------------------------------------------------------
// Helper processes

function wsServer(): void {
  const { WebSocketServer } = requireWs();
  const host = option("host", "127.0.0.1");
  const server = new WebSocketServer({
    host,
    port: option("port", 0),
    maxPayload: LIMIT,
    // ws's defaults otherwise (threshold 1024, zlib's level and memLevel),
    // as examples/echo.ts uses ours.
    perMessageDeflate: true,
  });
  server.on("connection", (ws: WsClient) => {
    ws.on("error", () => {});
    ws.on("message", (data: Uint8Array, binary: boolean) => {
      (ws as unknown as {
        send(d: Uint8Array, o: { binary: boolean }): void;
      }).send(data, { binary });
    });
  });
  server.on("listening", () => {
    console.log(
      `ws echo server listening on ws://${host}:${server.address().port}`,
    );
  });
}

function open(
  url: string,
  perMessageDeflate: Record<string, unknown> | false = {},
): Promise<WsClient> {
  const { WebSocket } = requireWs();
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate, maxPayload: LIMIT });
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
  });
}

// One compressed, masked text frame, built once and sent again and again:
// with client_no_context_takeover agreed, every message is compressed on
// its own, so the same bytes are a valid message every time, and the
// generator spends nothing on compressing (it still inflates the echoes).
function compressedFrame(message: string): Uint8Array {
  const deflated = zlib.deflateRawSync(new TextEncoder().encode(message), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const payload = deflated.subarray(0, deflated.length - 4);
  const n = payload.length;
  const extra = n < 126 ? 0 : n < 0x10000 ? 2 : 8;
  const frame = new Uint8Array(2 + extra + 4 + n);
  const view = new DataView(frame.buffer);
  frame[0] = 0xc1; // FIN, RSV1, text
  if (extra === 0) frame[1] = 0x80 | n;
  else if (extra === 2) {
    frame[1] = 0x80 | 126;
    view.setUint16(2, n);
  } else {
    frame[1] = 0x80 | 127;
    view.setUint32(6, n);
  }
  const key = [0x37, 0xfa, 0x21, 0x3d];
  frame.set(key, 2 + extra);
  for (let i = 0; i < n; i++) frame[6 + extra + i] = payload[i] ^ key[i & 3];
  return frame;
}

async function loadGenerator(): Promise<void> {
  const url = `ws://127.0.0.1:${option("port", 0)}/`;
  const conns = option("conns", 16);
  const inflight = option("inflight", 4);
  const message = text(option("size", 4096));
  const frame = compressedFrame(message);
  const warmup = option("warmup", 500);
  const duration = option("duration", 2000);
  setTimeout(() => {
    console.log(JSON.stringify({ error: "the load generator timed out" }));
    process.exit(0);
  }, warmup + duration + 15000);
  let measuring = false;
  let done = false;
  let count = 0;
  let errors = 0;
  const sockets: WsClient[] = [];
  for (let i = 0; i < conns; i++) {
    sockets.push(await open(url, { clientNoContextTakeover: true }));
  }
  for (const ws of sockets) {
    // Past ws's sender, straight to its socket (ws 8 keeps it in _socket).
    const socket = (ws as unknown as {
      _socket: { write(data: Uint8Array): void };
    })._socket;
    ws.on("message", (data: Uint8Array) => {
      if (data.length !== message.length) errors++;
      if (measuring) count++;
      if (!done) socket.write(frame);
    });
    for (let i = 0; i < inflight; i++) socket.write(frame);
  }
  await new Promise((resolve) => setTimeout(resolve, warmup));
  measuring = true;
  const start = performance.now();
  const cpuStart = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, duration));
  measuring = false;
  done = true;
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  for (const ws of sockets) ws.terminate();
  console.log(JSON.stringify({
    perSecond: count / seconds,
    cpu: (cpu.user + cpu.system) / 1e6 / seconds,
    errors,
  }));
  process.exit(0);
}

async function idleConnections(): Promise<void> {
  const url = `ws://127.0.0.1:${option("port", 0)}/`;
  const conns = option("conns", 1000);
  const plain = process.argv.includes("--plain");
  const message = text(2048);
  const sockets: WsClient[] = [];
  // 50 handshakes at a time, each with one round trip (compressed unless
  // --plain: then no compression is offered).
  for (let i = 0; i < conns; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, conns - i) }, async () => {
        const ws = await open(url, plain ? false : {});
        const echoed = new Promise((resolve) => ws.once("message", resolve));
        ws.send(message);
        await echoed;
        sockets.push(ws);
      }),
    );
  }
  console.log(`IDLE ${sockets.length}`);
  // Held open until the orchestrator closes stdin.
  process.stdin.resume();
  process.stdin.on("end", () => process.exit(0));
}

// ---------------------------------------------------------------------------
// Orchestrator

interface Runtime {
  name: string;
  run: string[];
}

const RUNTIMES: Runtime[] = [
  { name: "node", run: [bin("node")] },
  { name: "deno", run: [bin("deno"), "run", "-A"] },
  { name: "bun", run: [bin("bun")] },
];

const taskset = os.cpus().length >= 2 &&
  spawnSync("taskset", ["-c", "0", "true"]).status === 0;
const pinned = (core: string, command: string[]) =>
  taskset ? ["taskset", "-c", core, ...command] : command;

const children = new Set<ChildProcess>();

function start(command: string[], pattern: RegExp): Promise<{
  child: ChildProcess;
  match: RegExpExecArray;
  output: () => string;
}> {
  const child = spawn(command[0], command.slice(1), {
    cwd: root,
    stdio: ["pipe", "pipe", "pipe"],
    env: { ...process.env, NO_COLOR: "1" },
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let out = "";
  let err = "";
  child.stderr!.on("data", (d) => (err = (err + d).slice(-4000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${command.join(" ")}: no start\n${out}${err}`)),
      60_000,
    );
    child.stdout!.on("data", (d) => {
      out += d;
      const match = pattern.exec(out);
      if (match !== null) {
        clearTimeout(timer);
        resolve({ child, match, output: () => out + err });
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${command.join(" ")} exited ${code}\n${out}${err}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGTERM");
  const force = setTimeout(() => child.kill("SIGKILL"), 2000);
  await exited;
  clearTimeout(force);
}

// A server on a port of its own, on the servers' core.
const serve = (command: string[]) =>
  start(
    pinned("1", [...command, "--port", "0"]),
    /listening on ws:\/\/[\d.]+:(\d+)/,
  );

const kib = (size: number) => `${(size / 1024).toFixed(1)} KiB`;

function rss(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

async function helper(args: string[]): Promise<Record<string, number>> {
  const { child, match } = await start(
    pinned("0", [bin("node"), fileURLToPath(import.meta.url), ...args]),
    /^(\{.*\})$/m,
  );
  await stop(child);
  const result = JSON.parse(match[1]);
  if (result.error) throw new Error(result.error);
  return result;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const quick = args.includes("--quick");
  const sizes = numbers("sizes", [4096, 65536]);
  const conns = numbers("conns", [16])[0];
  const inflight = numbers("inflight", [4])[0];
  const idle = numbers("idle", [1000])[0];
  const warmup = numbers("warmup", [quick ? 300 : 500])[0];
  const duration = numbers("duration", [quick ? 1000 : 2500])[0];
  const rounds = numbers("rounds", [quick ? 1 : 3])[0];
  const wanted = args.filter((arg) => !arg.startsWith("--"));
  const runtimes = wanted.length === 0
    ? RUNTIMES.slice(0, 1)
    : wanted.includes("all")
    ? RUNTIMES
    : RUNTIMES.filter((r) => wanted.includes(r.name));

  console.log(`# Compressed echo: ours vs ws, permessage-deflate on`);
  console.log(machine());
  console.log(await load("before the run"));
  for (const runtime of runtimes) {
    console.log(
      `\n## ${runtime.name}: examples/echo.ts vs ws (both on ${runtime.name}), generator: ws client on Node${
        taskset ? ", pinned" : ""
      }`,
    );
    const servers = {
      ours: [...runtime.run, "examples/echo.ts", "--port", "0"],
      ws: [...runtime.run, fileURLToPath(import.meta.url), "ws-server"],
    };
    const rows: string[][] = [];
    const results: Record<string, Record<string, number>> = {};
    // Both servers run side by side, idle but for the one under load, and
    // the rounds alternate which goes first: a drift of the machine during
    // the run then weighs on both alike.
    const runs: Record<string, Record<string, number>[]> = {};
    const started = [];
    try {
      for (const command of Object.values(servers)) {
        started.push(await serve(command));
      }
      const names = Object.keys(servers);
      for (let round = 0; round < rounds; round++) {
        for (const size of sizes) {
          const order = round % 2 === 0 ? [0, 1] : [1, 0];
          for (const at of order) {
            const result = await helper([
              "load",
              "--port",
              started[at].match[1],
              "--conns",
              String(conns),
              "--inflight",
              String(inflight),
              "--size",
              String(size),
              "--warmup",
              String(warmup),
              "--duration",
              String(duration),
            ]);
            (runs[`${names[at]} ${size}`] ??= []).push(result);
          }
        }
      }
    } finally {
      for (const server of started) await stop(server.child);
    }
    for (const [name, command] of Object.entries(servers)) {
      // A fresh server for each count, so no memory freed by one is reused
      // by the next.
      for (const plain of [true, false]) {
        const server = await serve(command);
        try {
          const before = rss(server.child.pid!);
          const idler = await start(
            pinned("0", [
              bin("node"),
              fileURLToPath(import.meta.url),
              "idle",
              "--port",
              server.match[1],
              "--conns",
              String(idle),
              ...(plain ? ["--plain"] : []),
            ]),
            /^IDLE (\d+)$/m,
          );
          await new Promise((resolve) => setTimeout(resolve, 500));
          const after = rss(server.child.pid!);
          results[`${name} idle${plain ? " plain" : ""}`] = {
            perConn: (after - before) / idle,
          };
          idler.child.stdin!.end();
          await stop(idler.child);
        } finally {
          await stop(server.child);
        }
      }
    }
    for (const size of sizes) {
      const ours = runs[`ours ${size}`];
      const ws = runs[`ws ${size}`];
      const ratios = ours.map((run, i) => run.perSecond / ws[i].perSecond);
      // A server's median rate, and the generator's median CPU use.
      const rate = (list: Record<string, number>[]) =>
        `${si(median(list.map((run) => run.perSecond)))} msg/s (gen CPU ${
          median(list.map((run) => run.cpu)).toFixed(2)
        })`;
      rows.push([
        `echo ${bytes(size)} text, ${conns} × ${inflight}`,
        rate(ours),
        rate(ws),
        `${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}–${
          Math.max(...ratios).toFixed(2)
        })`,
      ]);
      const errors = (list: Record<string, number>[]) =>
        list.reduce((sum, run) => sum + run.errors, 0);
      if (errors(ours) || errors(ws)) {
        rows.push(["  wrong echoes", String(errors(ours)), String(errors(ws))]);
      }
    }
    for (const plain of [false, true]) {
      const key = plain ? " plain" : "";
      const oursIdle = results[`ours idle${key}`].perConn;
      const wsIdle = results[`ws idle${key}`].perConn;
      rows.push([
        `memory per idle connection (${idle}${
          plain ? ", no compression offered" : ""
        })`,
        kib(oursIdle),
        kib(wsIdle),
        (oursIdle / wsIdle).toFixed(2),
      ]);
    }
    table(["case", "ours", "ws", "ours / ws (min–max)"], rows);
  }
  console.log(`\n${await load("after the run")}`);
}

const mode = process.argv[2];
if (mode === "ws-server") wsServer();
else if (mode === "load") await loadGenerator();
else if (mode === "idle") await idleConnections();
else {
  try {
    await main();
  } finally {
    for (const child of children) child.kill("SIGKILL");
  }
}
