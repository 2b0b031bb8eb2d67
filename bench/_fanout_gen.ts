// The fan-out benchmark's load generator: its own Node process, raw TCP
// through node:net, no WebSocket library. It opens `subscribers`
// connections and one publisher to a relay server (every message a client
// sends goes to every other client), keeps `inflight` broadcasts in flight
// from the publisher, and checks that every subscriber gets every broadcast
// once and in order. A broadcast is done when its last subscriber has it;
// then the publisher sends the next. Bounded in time: a warm-up, a measured
// window, then every socket is destroyed and one JSON line goes to stdout.
//
//   node bench/_fanout_gen.ts --port 9002 [--host 127.0.0.1]
//     [--subscribers 1000] [--inflight 16] [--size 32] [--warmup 500]
//     [--duration 2000] [--port2 9003] [--rate 1000]
//
// --port2 connects every other subscriber to a second server (an instance
// joined to the first by a bus); the publisher stays on the first. --rate
// sends that many broadcasts a second, on a clock, instead of the next
// when one is done (`inflight` is then how many may be outstanding; a run
// that would need more reports it as an error).
//
// Each broadcast carries its sequence number in its first 4 bytes (the
// rest random). It records, per broadcast, the time to its first and to
// its last subscriber, and counts the messages delivered in the window.

import { Buffer } from "node:buffer";
import type net from "node:net";
import process from "node:process";
import { option } from "./_args.ts";
import { Histogram } from "./_histogram.ts";
import {
  GeneratorRun,
  headerSize,
  lengthAt,
  MASK_KEY,
  maskedFrame,
  maskedHeaderSize,
  openRaw,
} from "./_raw_client.ts";

const host = option("host", "127.0.0.1");
const port = option("port", 9002);
const subscriberCount = option("subscribers", 1000);
const inflight = option("inflight", 16);
const size = Math.max(8, option("size", 32));
const warmupMs = option("warmup", 500);
const durationMs = option("duration", 2000);
const connectTimeoutMs = option("connect-timeout", 20_000);
const port2 = option("port2", 0);
const rate = option("rate", 0);

const run = new GeneratorRun(connectTimeoutMs + warmupMs + durationMs + 5000);
const fail = (what: string) => run.fail(what);
const finish = (result: Record<string, unknown>) => run.finish(result);

const JOINING = 0;
const WARMING = 1;
const MEASURING = 2;
const DONE = 3;
let phase = JOINING;

// Broadcasts -----------------------------------------------------------------

// Sent before the measured ones until every subscriber has had one: the
// server has added them all. Skipped when they arrive later.
const PROBE = 0xffffffff;

const template = maskedFrame(size);
const payloadAt = maskedHeaderSize(size);

// The broadcasts in flight, by sequence number modulo `inflight`.
const sentAt = new Float64Array(inflight);
const firstAt = new Float64Array(inflight);
const receivedBy = new Uint32Array(inflight);
let nextSeq = 0;
let doneSeq = 0;

const toLast = new Histogram();
const toFirst = new Histogram();
let delivered = 0;

let publisher: net.Socket;

function frameFor(seq: number): Buffer {
  const frame = Buffer.from(template);
  for (let i = 0; i < 4; i++) {
    frame[payloadAt + i] = ((seq >>> (24 - 8 * i)) & 0xff) ^ MASK_KEY[i];
  }
  return frame;
}

// With --rate: when the clock started, and how many are due by now.
let clockStart = 0;
const due = (now: number) =>
  rate > 0 ? Math.floor((now - clockStart) * rate / 1000) + 1 : Infinity;

function publish(): void {
  const frames: Buffer[] = [];
  const now = performance.now();
  const until = due(now);
  if (rate > 0 && until - doneSeq > inflight && nextSeq - doneSeq >= inflight) {
    fail(`more than ${inflight} broadcasts outstanding at ${rate}/s`);
  }
  while (nextSeq - doneSeq < inflight && nextSeq < until && phase !== DONE) {
    const slot = nextSeq % inflight;
    sentAt[slot] = now;
    firstAt[slot] = NaN;
    receivedBy[slot] = 0;
    frames.push(frameFor(nextSeq++));
  }
  if (frames.length > 0) publisher.write(Buffer.concat(frames));
}

// A subscriber has broadcast `seq`, at `now`.
function received(seq: number, now: number): void {
  const slot = seq % inflight;
  if (receivedBy[slot] === 0) firstAt[slot] = now;
  if (++receivedBy[slot] < subscriberCount) return;
  if (seq !== doneSeq) fail(`broadcast ${seq} done before ${doneSeq}`);
  doneSeq = seq + 1;
  if (phase === MEASURING) {
    toLast.add(now - sentAt[slot]);
    toFirst.add(firstAt[slot] - sentAt[slot]);
  }
  // Batched: the publisher sends once the current read is parsed (on a
  // clock instead with --rate).
  owed = rate === 0;
}
let owed = false;

// Subscribers ----------------------------------------------------------------

interface Subscriber {
  socket: net.Socket;
  // The frame being parsed.
  header: Uint8Array;
  headerLength: number;
  remaining: number;
  fin: boolean;
  control: boolean;
  // The message being parsed: its bytes so far, and its sequence number
  // (from its first 4 payload bytes; `seqBytes` of them read so far).
  messageBytes: number;
  seq: number;
  seqBytes: number;
  // The sequence number the next broadcast must carry (-1: any).
  expected: number;
  probed: boolean;
  count: number;
}

const subscribers: Subscriber[] = [];
let probed = 0;
let probes = 0;

function begin(s: Subscriber, b0: number, length: number): void {
  const opcode = b0 & 0x0f;
  s.fin = (b0 & 0x80) !== 0;
  s.control = (opcode & 0x8) !== 0;
  if (s.control) {
    if (opcode === 0x8) fail("the server sent a Close frame");
  } else {
    if (opcode !== 0 && opcode !== 2) fail(`unexpected opcode ${opcode}`);
    if (opcode !== 0) {
      s.messageBytes = 0;
      s.seq = 0;
      s.seqBytes = 0;
    }
    s.messageBytes += length;
  }
  s.remaining = length;
}

function complete(s: Subscriber, now: number): void {
  if (s.control || !s.fin) return;
  if (s.messageBytes !== size) {
    fail(`a broadcast of ${s.messageBytes} bytes instead of ${size}`);
    return;
  }
  const seq = s.seq >>> 0;
  if (seq === PROBE) {
    if (!s.probed) {
      s.probed = true;
      probed++;
    }
    return;
  }
  if (s.expected !== -1 && seq !== s.expected) {
    fail(`a subscriber got broadcast ${seq} where ${s.expected} was due`);
  }
  s.expected = seq + 1;
  if (phase === MEASURING) {
    s.count++;
    delivered++;
  }
  received(seq, now);
}

function onData(s: Subscriber, chunk: Uint8Array): void {
  const now = performance.now();
  const end = chunk.length;
  let at = 0;
  while (at < end) {
    if (s.remaining > 0) {
      while (s.seqBytes < 4 && s.remaining > 0 && at < end && !s.control) {
        s.seq = (s.seq << 8) | chunk[at++];
        s.seqBytes++;
        s.remaining--;
      }
      const take = Math.min(s.remaining, end - at);
      at += take;
      s.remaining -= take;
      if (s.remaining === 0) complete(s, now);
      continue;
    }
    if (s.headerLength === 0 && end - at >= 2) {
      const need = headerSize(chunk[at + 1]);
      if (end - at >= need) {
        const b0 = chunk[at];
        const length = lengthAt(chunk, at);
        at += need;
        begin(s, b0, length);
        if (length === 0) complete(s, now);
        continue;
      }
    }
    // A header split across reads: gathered byte by byte.
    s.header[s.headerLength++] = chunk[at++];
    if (s.headerLength >= 2 && s.headerLength === headerSize(s.header[1])) {
      s.headerLength = 0;
      const length = lengthAt(s.header, 0);
      begin(s, s.header[0], length);
      if (length === 0) complete(s, now);
    }
  }
  if (owed) {
    owed = false;
    if (phase === WARMING || phase === MEASURING) publish();
  }
}

function watch(socket: net.Socket): void {
  run.sockets.push(socket);
  socket.on("error", (error) => {
    if (phase !== DONE) fail(`socket error: ${error.message}`);
  });
  socket.on("close", () => {
    if (phase !== DONE) fail("the server closed a connection");
  });
}

async function subscribe(index: number): Promise<void> {
  const s: Subscriber = {
    socket: null as unknown as net.Socket,
    header: new Uint8Array(14),
    headerLength: 0,
    remaining: 0,
    fin: false,
    control: false,
    messageBytes: 0,
    seq: 0,
    seqBytes: 0,
    expected: -1,
    probed: false,
    count: 0,
  };
  const { socket, rest } = await openRaw(
    host,
    port2 > 0 && index % 2 === 1 ? port2 : port,
    "/",
    (bytes) => onData(s, bytes),
  );
  s.socket = socket;
  subscribers.push(s);
  watch(socket);
  if (rest.length > 0) onData(s, rest);
}

// Main -----------------------------------------------------------------------

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const connectDeadline = setTimeout(
    () => finish({ error: "connecting timed out" }),
    connectTimeoutMs,
  );
  // At most 64 handshakes at a time, as a client pool would open them.
  const pending: Promise<void>[] = [];
  for (let i = 0; i < subscriberCount; i++) {
    pending.push(subscribe(i));
    if (pending.length === 64) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  const opened = await openRaw(
    host,
    port,
    "/",
    () => fail("the publisher got a broadcast"),
  );
  publisher = opened.socket;
  watch(publisher);
  // Probes until every subscriber has had one: all have joined.
  while (probed < subscriberCount) {
    probes++;
    publisher.write(frameFor(PROBE));
    await pause(20);
  }
  clearTimeout(connectDeadline);

  phase = WARMING;
  clockStart = performance.now();
  if (rate > 0) {
    const clock = setInterval(
      () => phase === DONE ? clearInterval(clock) : publish(),
      1,
    );
  }
  publish();
  await pause(warmupMs);
  phase = MEASURING;
  const windowStart = performance.now();
  const cpuStart = process.cpuUsage();
  await pause(durationMs);
  phase = DONE;
  const seconds = (performance.now() - windowStart) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  let least = Infinity;
  let most = 0;
  for (const s of subscribers) {
    least = Math.min(least, s.count);
    most = Math.max(most, s.count);
  }
  finish({
    subscribers: subscriberCount,
    inflight,
    size,
    seconds,
    delivered,
    perSecond: delivered / seconds,
    broadcasts: toLast.count,
    // Broadcasts the publisher sent, probes included: from the start.
    sent: nextSeq + probes,
    // Milliseconds from the publisher's write to the last subscriber's
    // read of a broadcast, and to the first subscriber's.
    lastP50: toLast.percentile(0.5),
    lastP99: toLast.percentile(0.99),
    firstP50: toFirst.percentile(0.5),
    firstP99: toFirst.percentile(0.99),
    // Broadcasts per subscriber in the window, fewest and most: fairness.
    leastPerSubscriber: least,
    mostPerSubscriber: most,
    // The generator's CPU use over the window, in cores: near 1 means the
    // generator, not the server, was the bottleneck.
    cpu: (cpu.user + cpu.system) / 1e6 / seconds,
  });
}

main().catch((error) => finish({ error: String(error) }));
