// Load, on demand (not in CI): many concurrent connections on loopback,
// held open with heartbeats, and the server's memory per connection, ours
// beside ws in the same run, on each runtime. With --soak, connections also
// churn for that many seconds, and the server's memory after they have all
// gone is compared with its baseline.
//
//   node bench/load.ts [--conns 10000] [--hold 10] [--soak 0]
//     [--runtimes node,deno,bun] [--impls ours,ws[,streams]]
//
// `--impls streams` adds the floor under ours: a socket and the
// ReadableStream piped into a WritableStream that the WebSocketStream API
// hands each connection, with nothing else.
//
// Where an idle connection's heap goes (Node, heap snapshot of 2,000 idle
// connections with heartbeats, 2026-12-07; bytes per connection, ours 9,140
// against ws's 4,093):
//
// - the socket (Socket, TCP handle and wrap, its stream states): ~1,100,
//   the same in ws;
// - the WHATWG streams the API hands out, with the algorithms Node makes
//   for them, and the pipe's reader and writer: ~2,300 (`streams`: 5.8 KiB
//   with the socket);
// - promises, their reactions and contexts (`opened`, `closed`, the pipe's
//   promise, the reader's and writer's `closed`, the application's own
//   handlers): ~1,500;
// - the stages (message decoder 312, the direct pipe's sink 280, transport
//   sink 240, message encoder 216, frame decoder stage 208 and core 152,
//   message core 72, three callbacks 168): ~1,650;
// - Session 216, Protocol 176 and its options 64, the socket transport 176,
//   the alarm and ping state: ~700.
//
// What would remove more: one decoder and one encoder object per connection
// without deflate (frame and message cores in one stage each, ~700); a
// direct pipe that locks the streams without a reader, a writer and a sink
// stage (~1,000; needs streams of our own making, not the runtime's). The
// streams and the socket stay: on Node and Deno they alone cost more RSS
// than a whole ws connection.
//
// Three kinds of process, all this file: the orchestrator (under Node),
// one server per runtime and implementation (`--serve ours|ws`), and the
// clients (`--clients N --port P`, under Node: raw TCP, no library, each
// answering the server's heartbeat pings). Servers and clients run in
// their own processes, each under the 20,000 open files allowed here.
// Every phase is bounded in time.

import { spawn } from "node:child_process";
import { createServer, type IncomingMessage } from "node:http";
import { createRequire } from "node:module";
import net from "node:net";
import process from "node:process";
import { createInterface } from "node:readline";
import type { Duplex } from "node:stream";
import { fileURLToPath } from "node:url";
import { load, machine, runtime } from "./_env.ts";

const argv = process.argv;
function option(name: string, fallback: string): string {
  const at = argv.indexOf(`--${name}`);
  return at > 0 && at + 1 < argv.length ? argv[at + 1] : fallback;
}
const num = (name: string, fallback: number) =>
  Number(option(name, String(fallback)));

const HEARTBEAT_MS = 2000;
const MiB = 1024 * 1024;

function gc(): void {
  const g = globalThis as {
    gc?: () => void;
    Bun?: { gc(full: boolean): void };
  };
  if (g.Bun) g.Bun.gc(true);
  else g.gc?.();
}

async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

// Server ------------------------------------------------------------------

async function serve(impl: string): Promise<void> {
  const server = createServer();
  let open = 0;
  let opened = 0;
  if (impl === "ours") {
    const { upgrade } = await import("../src/adapters/node.ts");
    server.on(
      "upgrade",
      (request: IncomingMessage, socket: Duplex, head: Uint8Array) => {
        const ws = upgrade(request, socket as never, head, {
          heartbeat: { interval: HEARTBEAT_MS },
        });
        open++;
        opened++;
        ws.closed.catch(() => {}).finally(() => open--);
        ws.opened.then(
          ({ readable, writable }) => readable.pipeTo(writable),
        ).catch(() => {});
      },
    );
  } else if (impl === "streams") {
    // Not a WebSocket server: what the WebSocketStream API alone costs per
    // connection (the socket, a ReadableStream piped into a WritableStream,
    // with its reader and writer), the floor under "ours". No handshake
    // checks, no frames, no heartbeat: it echoes the bytes.
    server.on("upgrade", (_request: IncomingMessage, socket: Duplex) => {
      socket.write("HTTP/1.1 101 Switching Protocols\r\n\r\n");
      open++;
      opened++;
      socket.on("error", () => {});
      socket.on("close", () => open--);
      const readable = new ReadableStream<Uint8Array>({
        start(controller) {
          socket.on("data", (chunk: Uint8Array) => controller.enqueue(chunk));
          socket.on("end", () => controller.close());
        },
      });
      const writable = new WritableStream<Uint8Array>({
        write: (chunk) => void socket.write(chunk),
        close: () => void socket.end(),
      });
      readable.pipeTo(writable).catch(() => {});
    });
  } else {
    const require = createRequire(import.meta.url);
    const WS = require(
      fileURLToPath(new URL("../node_modules/ws/index.js", import.meta.url)),
    );
    const wss = new WS.WebSocketServer({ noServer: true });
    // ws's documented heartbeat: ping every interval, drop who did not pong.
    const alive = new WeakMap<object, boolean>();
    setInterval(() => {
      for (const ws of wss.clients) {
        if (alive.get(ws) === false) {
          ws.terminate();
          continue;
        }
        alive.set(ws, false);
        ws.ping();
      }
    }, HEARTBEAT_MS);
    server.on(
      "upgrade",
      (request: IncomingMessage, socket: Duplex, head: Uint8Array) => {
        wss.handleUpgrade(request, socket, head, (ws: {
          on(event: string, listener: (...args: unknown[]) => void): void;
          send(data: unknown, options: { binary: boolean }): void;
        }) => {
          open++;
          opened++;
          alive.set(ws, true);
          ws.on("pong", () => alive.set(ws, true));
          ws.on(
            "message",
            (data, isBinary) => ws.send(data, { binary: isBinary as boolean }),
          );
          ws.on("close", () => open--);
          ws.on("error", () => {});
        });
      },
    );
  }
  await new Promise<void>((resolve) =>
    server.listen({ port: 0, host: "127.0.0.1", backlog: 4096 }, resolve)
  );
  const { port } = server.address() as net.AddressInfo;
  const say = (value: unknown) => console.log(JSON.stringify(value));
  say({ port, runtime: runtime() });
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "mem") {
      await settle();
      const { rss, heapUsed } = process.memoryUsage();
      say({ rss, heapUsed, open, opened });
    } else if (line === "quit") {
      process.exit(0);
    }
  }
}

// Clients -----------------------------------------------------------------

const REQUEST = (port: number) =>
  `GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
  "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
  "Sec-WebSocket-Version: 13\r\n\r\n";

// A masked frame with a zero key, so the payload goes as is.
function frame(opcode: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(6 + payload.length);
  out[0] = 0x80 | opcode;
  out[1] = 0x80 | payload.length; // < 126 here
  out.set(payload, 6);
  return out;
}

interface Client {
  socket: net.Socket;
  opened: Promise<boolean>;
  closed: Promise<void>;
  echoes: number;
}

function connectClient(port: number): Client {
  const socket = net.connect(port, "127.0.0.1");
  let upgraded = false;
  let buffer = new Uint8Array(0);
  let resolveOpen!: (ok: boolean) => void;
  const client: Client = {
    socket,
    opened: new Promise((resolve) => (resolveOpen = resolve)),
    closed: new Promise((resolve) => socket.once("close", () => resolve())),
    echoes: 0,
  };
  socket.on("error", () => resolveOpen(false));
  socket.on("close", () => resolveOpen(false));
  socket.on("connect", () => socket.write(REQUEST(port)));
  socket.on("data", (chunk: Uint8Array) => {
    const next = new Uint8Array(buffer.length + chunk.length);
    next.set(buffer);
    next.set(chunk, buffer.length);
    buffer = next;
    if (!upgraded) {
      const text = String.fromCharCode(...buffer.subarray(0, 1024));
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      upgraded = true;
      resolveOpen(text.startsWith("HTTP/1.1 101"));
      buffer = buffer.subarray(end + 4);
    }
    // Server frames: unmasked, short in this benchmark.
    while (buffer.length >= 2) {
      const length = buffer[1] & 0x7f;
      if (length > 125 || buffer.length < 2 + length) break;
      const opcode = buffer[0] & 0x0f;
      const payload = buffer.subarray(2, 2 + length);
      if (opcode === 0x9) socket.write(frame(0xa, payload));
      else if (opcode === 0x8) socket.end(frame(0x8, payload));
      else client.echoes++;
      buffer = buffer.subarray(2 + length);
    }
  });
  return client;
}

function closeClient(client: Client): Promise<void> {
  if (!client.socket.destroyed) {
    client.socket.write(frame(0x8, new Uint8Array([0x03, 0xe8])));
  }
  const timer = setTimeout(() => client.socket.destroy(), 5000);
  return client.closed.finally(() => clearTimeout(timer));
}

async function clients(count: number, port: number): Promise<void> {
  const say = (value: unknown) => console.log(JSON.stringify(value));
  const all: Client[] = [];
  let failed = 0;
  const started = performance.now();
  // At most 256 handshakes at a time: the listen backlog is finite.
  for (let at = 0; at < count; at += 256) {
    const batch: Client[] = [];
    for (let i = at; i < Math.min(count, at + 256); i++) {
      batch.push(connectClient(port));
    }
    for (const ok of await Promise.all(batch.map((c) => c.opened))) {
      if (!ok) failed++;
    }
    all.push(...batch);
  }
  say({
    open: all.filter((c) => !c.socket.destroyed).length,
    failed,
    seconds: (performance.now() - started) / 1000,
  });
  const churnSeconds = num("churn", 0);
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === "count") {
      say({ open: all.filter((c) => !c.socket.destroyed).length });
    } else if (line === "churn") {
      say(await churn(all, port, churnSeconds));
    } else if (line === "close") {
      await Promise.all(all.map(closeClient));
      say({ closed: all.length });
      process.exit(0);
    }
  }
}

// Replaces random connections for `seconds`, each sending a message and
// waiting for its echo before going.
async function churn(all: Client[], port: number, seconds: number) {
  const end = performance.now() + seconds * 1000;
  let replaced = 0;
  let echoed = 0;
  const message = frame(0x1, new TextEncoder().encode("churn"));
  const worker = async () => {
    while (performance.now() < end) {
      const at = Math.floor(Math.random() * all.length);
      const old = all[at];
      const fresh = connectClient(port);
      all[at] = fresh;
      await closeClient(old);
      if (!(await fresh.opened)) continue;
      fresh.socket.write(message);
      while (fresh.echoes === 0 && !fresh.socket.destroyed) {
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      echoed += fresh.echoes;
      replaced++;
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return { replaced, echoed };
}

// Orchestrator ------------------------------------------------------------

interface Process {
  send(line: string): void;
  next(): Promise<Record<string, number | string>>;
  done: Promise<void>;
}

function start(command: string, args: string[]): Process {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "inherit"] });
  const lines: string[] = [];
  let wake = () => {};
  createInterface({ input: child.stdout! }).on("line", (line) => {
    lines.push(line);
    wake();
  });
  return {
    send: (line) => child.stdin!.write(`${line}\n`),
    async next() {
      const deadline = Date.now() + 120_000;
      while (true) {
        const line = lines.shift();
        if (line !== undefined) {
          try {
            return JSON.parse(line);
          } catch {
            continue; // not ours: a runtime's warning
          }
        }
        if (Date.now() > deadline) throw new Error("no answer in 120 s");
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 1000);
        });
      }
    },
    done: new Promise((resolve) => child.once("exit", () => resolve())),
  };
}

const bin = (name: string) =>
  fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
const self = fileURLToPath(import.meta.url);
const RUNTIMES: Record<string, string[]> = {
  node: [bin("node"), "--expose-gc", self],
  deno: [bin("deno"), "run", "-A", "--v8-flags=--expose-gc", self],
  bun: [bin("bun"), self],
};

const mib = (bytes: number) => (bytes / MiB).toFixed(1);

async function orchestrate(): Promise<void> {
  const conns = num("conns", 10000);
  const hold = num("hold", 10);
  const soak = num("soak", 0);
  const runtimes = option("runtimes", "node,deno,bun").split(",");
  const impls = option("impls", "ours,ws").split(",");
  console.log(
    `load: ${conns} connections held ${hold} s, heartbeat every ${
      HEARTBEAT_MS / 1000
    } s${soak > 0 ? `, then ${soak} s of churn` : ""}`,
  );
  console.log(`machine: ${machine()}; ${await load("before")}`);
  console.log(
    "the machine may be shared: other processes skew the figures",
  );
  const rows: string[] = [];
  for (const name of runtimes) {
    for (const impl of impls) {
      const [command, ...args] = RUNTIMES[name];
      const server = start(command, [...args, "--serve", impl]);
      const { port, runtime: version } = await server.next();
      server.send("mem");
      const base = await server.next();
      const client = start(bin("node"), [
        self,
        "--clients",
        String(conns),
        "--port",
        String(port),
        "--churn",
        String(soak),
      ]);
      const opened = await client.next();
      // Hold the connections through several heartbeats.
      await new Promise((resolve) => setTimeout(resolve, hold * 1000));
      client.send("count");
      const held = await client.next();
      server.send("mem");
      const loaded = await server.next();
      let soakLine = "";
      if (soak > 0) {
        client.send("churn");
        const churned = await client.next();
        soakLine = `, churn: ${churned.replaced} replaced`;
      }
      client.send("close");
      await client.next();
      await client.done;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      server.send("mem");
      const after = await server.next();
      server.send("quit");
      await server.done;
      const n = Number(loaded.open);
      const row = `${name.padEnd(4)} ${impl.padEnd(4)} held ${
        String(held.open).padStart(5)
      }/${conns} (server sees ${loaded.open}, connect ${
        Number(opened.seconds).toFixed(1)
      } s, ${opened.failed} failed): per connection ${
        ((Number(loaded.rss) - Number(base.rss)) / n / 1024).toFixed(1)
      } KiB RSS, ${
        ((Number(loaded.heapUsed) - Number(base.heapUsed)) / n / 1024)
          .toFixed(1)
      } KiB heap; RSS base ${mib(Number(base.rss))} → loaded ${
        mib(Number(loaded.rss))
      } → after close ${mib(Number(after.rss))} MiB, heap base ${
        mib(Number(base.heapUsed))
      } → after ${
        mib(Number(after.heapUsed))
      } MiB, ${after.open} left open${soakLine} [${version}]`;
      console.log(row);
      rows.push(row);
    }
  }
  console.log(`\n${await load("after")}`);
}

if (argv.includes("--serve")) await serve(option("serve", "ours"));
else if (argv.includes("--clients")) {
  await clients(num("clients", 100), num("port", 0));
} else await orchestrate();
