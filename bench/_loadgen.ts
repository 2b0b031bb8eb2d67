// The echo benchmark's load generator: its own process (run it under Node,
// pinned to a core of its own), raw TCP through node:net, no WebSocket
// library. It does the opening handshake itself, then keeps `inflight`
// pre-built masked binary frames in flight on each of `conns` connections,
// parses the echoed frames minimally (header, length, FIN; payloads are
// skipped, not unmasked, so a raw TCP echo works as a calibration target),
// and records each message's round trip in a histogram. Bounded in time:
// a warm-up, a measured window, then every socket is destroyed and one JSON
// line goes to stdout.
//
//   node bench/_loadgen.ts --port 9001 [--host 127.0.0.1] [--conns 64]
//     [--inflight 16] [--size 32] [--warmup 500] [--duration 2000]
//
// Writes are batched the way a client under load batches them: every echo
// that completes in one socket read is answered by one write of that many
// frames.

import { Buffer } from "node:buffer";
import type net from "node:net";
import process from "node:process";
import { option } from "./_args.ts";
import { Histogram } from "./_histogram.ts";
import {
  GeneratorRun,
  headerSize,
  lengthAt,
  maskedFrame,
  openRaw,
} from "./_raw_client.ts";

const host = option("host", "127.0.0.1");
const port = option("port", 9001);
const path = option("path", "/");
const conns = option("conns", 64);
const inflight = option("inflight", 16);
const size = option("size", 32);
const warmupMs = option("warmup", 500);
const durationMs = option("duration", 2000);
const connectTimeoutMs = option("connect-timeout", 5000);

const run = new GeneratorRun(connectTimeoutMs + warmupMs + durationMs + 5000);
const fail = (what: string) => run.fail(what);
const finish = (result: Record<string, unknown>) => run.finish(result);

const histogram = new Histogram();

// Frames ---------------------------------------------------------------------

const frame = maskedFrame(size);
const frameSize = frame.length;
// Up to `inflight` frames back to back: a write of m frames is a view of
// the first m. The same bytes go to every socket, never modified.
const batch = Buffer.concat(new Array<Buffer>(inflight).fill(frame));

// Connections ----------------------------------------------------------------

const NOT_YET = 0;
const WARMING = 1;
const MEASURING = 2;
const DONE = 3;
let phase = NOT_YET;

let measured = 0;
let windowStart = 0;

interface Connection {
  socket: net.Socket;
  // Send times of the frames in flight, oldest first (a ring).
  sent: Float64Array;
  head: number;
  tail: number;
  // The frame being parsed.
  header: Uint8Array;
  headerLength: number;
  remaining: number;
  fin: boolean;
  control: boolean;
  messageBytes: number;
  // Echoes counted in the measured window.
  count: number;
}

const connections: Connection[] = [];

function send(c: Connection, frames: number): void {
  const now = performance.now();
  const sent = c.sent;
  for (let i = 0; i < frames; i++) {
    sent[c.tail] = now;
    c.tail = (c.tail + 1) % inflight;
  }
  c.socket.write(
    frames === inflight ? batch : batch.subarray(0, frames * frameSize),
  );
}

// A frame's header is complete: start its payload.
function begin(c: Connection, b0: number, length: number): number {
  const opcode = b0 & 0x0f;
  c.fin = (b0 & 0x80) !== 0;
  c.control = (opcode & 0x8) !== 0;
  if (c.control) {
    if (opcode === 0x8) fail("the server sent a Close frame");
  } else {
    if (opcode !== 0 && opcode !== 2) fail(`unexpected opcode ${opcode}`);
    if (opcode !== 0) c.messageBytes = 0;
    c.messageBytes += length;
  }
  c.remaining = length;
  return length === 0 ? complete(c) : 0;
}

// A frame is complete: returns 1 if it completed an echoed message.
function complete(c: Connection): number {
  if (c.control || !c.fin) return 0;
  if (c.messageBytes !== size) {
    fail(`an echo of ${c.messageBytes} bytes instead of ${size}`);
  }
  const started = c.sent[c.head];
  c.head = (c.head + 1) % inflight;
  if (phase === MEASURING) {
    c.count++;
    histogram.add(performance.now() - started);
  }
  return 1;
}

function onData(c: Connection, chunk: Uint8Array): void {
  const end = chunk.length;
  let at = 0;
  let echoed = 0;
  while (at < end) {
    if (c.remaining > 0) {
      const take = Math.min(c.remaining, end - at);
      at += take;
      c.remaining -= take;
      if (c.remaining === 0) echoed += complete(c);
      continue;
    }
    if (c.headerLength === 0 && end - at >= 2) {
      const need = headerSize(chunk[at + 1]);
      if (end - at >= need) {
        const b0 = chunk[at];
        const length = lengthAt(chunk, at);
        at += need;
        echoed += begin(c, b0, length);
        continue;
      }
    }
    // A header split across reads: gathered byte by byte.
    c.header[c.headerLength++] = chunk[at++];
    if (
      c.headerLength >= 2 && c.headerLength === headerSize(c.header[1])
    ) {
      c.headerLength = 0;
      echoed += begin(c, c.header[0], lengthAt(c.header, 0));
    }
  }
  if (echoed > 0 && phase !== DONE) send(c, echoed);
}

async function connect(): Promise<Connection> {
  const { socket, rest } = await openRaw(host, port, path);
  const c: Connection = {
    socket,
    sent: new Float64Array(inflight),
    head: 0,
    tail: 0,
    header: new Uint8Array(14),
    headerLength: 0,
    remaining: 0,
    fin: false,
    control: false,
    messageBytes: 0,
    count: 0,
  };
  connections.push(c);
  run.sockets.push(socket);
  socket.on("data", (data: Buffer) => onData(c, data));
  socket.on("error", (error) => {
    if (phase !== DONE) fail(`socket error: ${error.message}`);
  });
  socket.on("close", () => {
    if (phase === WARMING || phase === MEASURING) {
      fail("the server closed a connection");
    }
  });
  if (rest.length > 0) onData(c, rest);
  return c;
}

async function main(): Promise<void> {
  const connectDeadline = setTimeout(
    () => finish({ error: "connecting timed out" }),
    connectTimeoutMs,
  );
  // At most 16 handshakes at a time, as a client pool would open them.
  const pending: Promise<Connection>[] = [];
  const opened: Connection[] = [];
  for (let i = 0; i < conns; i++) {
    pending.push(connect());
    if (pending.length === 16 || i === conns - 1) {
      opened.push(...await Promise.all(pending.splice(0)));
    }
  }
  clearTimeout(connectDeadline);

  phase = WARMING;
  for (const c of opened) send(c, inflight);
  await new Promise((resolve) => setTimeout(resolve, warmupMs));
  phase = MEASURING;
  windowStart = performance.now();
  const cpuStart = process.cpuUsage();
  await new Promise((resolve) => setTimeout(resolve, durationMs));
  phase = DONE;
  const seconds = (performance.now() - windowStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  measured = 0;
  let least = Infinity;
  let most = 0;
  for (const c of opened) {
    measured += c.count;
    least = Math.min(least, c.count);
    most = Math.max(most, c.count);
  }
  finish({
    conns,
    inflight,
    size,
    seconds,
    messages: measured,
    perSecond: measured / seconds,
    p50: histogram.percentile(0.5),
    p99: histogram.percentile(0.99),
    max: histogram.percentile(1),
    // Messages per connection, slowest and fastest: fairness.
    leastPerConn: least,
    mostPerConn: most,
    // The generator's own CPU use over the window, in cores: near 1 means
    // the generator, not the server, was the bottleneck.
    cpu: (cpu.user + cpu.system) / 1e6 / seconds,
  });
}

main().catch((error) => finish({ error: String(error) }));
