// Message pipeline benchmark: bytes → messages and messages → bytes through
// this package's public streams, read and written the way an application
// does, against the `ws` package's Receiver and Sender in the same process,
// on the same bytes. Runs unchanged on Node, Deno and Bun:
//
//   node bench/message.ts     deno run -A bench/message.ts     bun bench/message.ts
//
// Options: --quick (shorter timing), --only=decode,encode,
// --kinds=binary,text,utf8.
//
// Ratios are ours / ws: above 1 means this package is faster.

import { Buffer } from "node:buffer";
import process from "node:process";
import type { Frame } from "../src/frame.ts";
import { FrameDecoder } from "../src/frame_decoder.ts";
import { FrameDecoderStream } from "../src/frame_decoder_stream.ts";
import { FrameEncoder } from "../src/frame_encoder.ts";
import { FrameEncoderStream } from "../src/frame_encoder_stream.ts";
import type { Message } from "../src/message.ts";
import { MessageDecoder, type MessageHandler } from "../src/message_decoder.ts";
import { MessageDecoderStream } from "../src/message_decoder_stream.ts";
import { MessageEncoder } from "../src/message_encoder.ts";
import { MessageEncoderStream } from "../src/message_encoder_stream.ts";
import { Opcode } from "../src/opcode.ts";
import { load, machine, runtime } from "./_env.ts";
import {
  bytes,
  measure,
  ratio,
  si,
  speedup,
  table,
  type TimingOptions,
  type Variant,
} from "./_timing.ts";
import { describeWs, Receiver, Sender, wsNativeMask } from "./_ws.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const option = (name: string, fallback: string[]) =>
  new Set(
    args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3)
      .split(",") ?? fallback,
  );
const only = option("only", ["decode", "encode"]);
const kinds = (["binary", "text", "utf8"] as const).filter((kind) =>
  option("kinds", ["binary", "text", "utf8"]).has(kind)
);
type Kind = typeof kinds[number];

const timing: TimingOptions = quick
  ? { warmupMs: 40, rounds: 3, roundMs: 30 }
  : { warmupMs: 150, rounds: 9, roundMs: 50 };

const SIZES = [16, 125, 1024, 64 * 1024, 1024 * 1024];
// What one socket read delivers.
const CHUNK = 64 * 1024;
// Each timed batch covers about this many bytes (and at least 4 messages).
const BATCH_BYTES = 1024 * 1024;
// Sizes from here up also get a payload throughput figure.
const BIG = 64 * 1024;

// Everything the benchmarked code hands back is counted here, and checked
// after each batch, so no work can be optimized away.
let count = 0;
let total = 0;
let checksum = 0;

function onMessage(message: Message): void {
  count++;
  total += message.length;
}

function onBytes(chunk: Uint8Array): void {
  count++;
  total += chunk.length;
}

function onWritten(error?: Error | null): void {
  if (error) throw error;
}

/** Checks the counters against a batch's expected output, then resets them. */
function expect(what: string, messages: number | null, length: number): void {
  if ((messages !== null && count !== messages) || total !== length) {
    throw new Error(
      `${what}: expected ${messages} messages / ${length} units, got ${count} / ${total}`,
    );
  }
  checksum += total;
  count = 0;
  total = 0;
}

function messagesPerBatch(size: number): number {
  return Math.max(4, Math.ceil(BATCH_BYTES / (size + 14)));
}

// Payloads -------------------------------------------------------------------

function random(seed: number): () => number {
  let x = seed | 1;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    return x >>> 16;
  };
}

// Text of exactly `size` UTF-8 bytes: printable ASCII (like JSON), or a mix
// of 1- to 4-byte characters (about a third of them ASCII).
const MIXED = ["é", "ß", "€", "→", "日", "本", "😀", "🎉"];

function textOf(size: number, ascii: boolean): string {
  const next = random(size);
  let text = "";
  let length = 0;
  while (length < size) {
    const r = next();
    const char = ascii || r % 3 === 0
      ? String.fromCharCode(0x20 + (r % 95))
      : MIXED[r % MIXED.length];
    const width = new TextEncoder().encode(char).length;
    if (length + width > size) {
      text += "a";
      length++;
    } else {
      text += char;
      length += width;
    }
  }
  // A flat string, as one decoded from the network would be.
  return new TextDecoder().decode(new TextEncoder().encode(text));
}

function binaryOf(size: number): Uint8Array {
  const next = random(size);
  const payload = new Uint8Array(size);
  for (let i = 0; i < size; i++) payload[i] = next();
  return payload;
}

function messageOf(kind: Kind, size: number): Message {
  return kind === "binary" ? binaryOf(size) : textOf(size, kind === "text");
}

const utf8 = new TextEncoder();

function bytesOf(message: Message): Uint8Array {
  return typeof message === "string" ? utf8.encode(message) : message;
}

function opcodeOf(message: Message): Opcode {
  return typeof message === "string" ? Opcode.Text : Opcode.Binary;
}

function frameOf(message: Message): Frame {
  return {
    fin: true,
    rsv1: false,
    rsv2: false,
    rsv3: false,
    opcode: opcodeOf(message),
    payload: bytesOf(message),
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function same(a: Message, b: Message | Uint8Array): boolean {
  if (typeof a === "string" || typeof b === "string") return a === b;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function rate(perSecond: number, size: number): string {
  const mps = `${si(perSecond)} msg/s`;
  if (size < BIG) return mps;
  const payload = perSecond * size;
  return payload >= 1e9
    ? `${mps} = ${si(payload / 1e9)} GB/s`
    : `${mps} = ${si(payload / 1e6)} MB/s`;
}

function spread(values: number[]): string {
  return `±${(Math.max(...values) * 100).toFixed(0)}%`;
}

function streamOf<T>(items: T[]): ReadableStream<T> {
  return new ReadableStream<T>({
    start(controller) {
      for (const item of items) controller.enqueue(item);
      controller.close();
    },
  });
}

// Decoding -------------------------------------------------------------------

interface DecodeCase {
  kind: Kind;
  size: number;
  messages: number;
  message: Message;
  /** The whole byte stream, masked (client to server), pristine. */
  wire: Uint8Array;
  /** Where each socket-sized chunk starts and ends in `wire`. */
  bounds: [number, number][];
}

function decodeCase(kind: Kind, size: number): DecodeCase {
  const messages = messagesPerBatch(size);
  const message = messageOf(kind, size);
  const encoder = new FrameEncoder({ role: "client" });
  const frame = frameOf(message);
  const parts: Uint8Array[] = [];
  for (let i = 0; i < messages; i++) {
    encoder.encode(frame, (chunk) => parts.push(chunk.slice()));
  }
  const wire = concat(parts);
  const bounds: [number, number][] = [];
  for (let at = 0; at < wire.length; at += CHUNK) {
    bounds.push([at, Math.min(at + CHUNK, wire.length)]);
  }
  return { kind, size, messages, message, wire, bounds };
}

/** Fresh copies of the chunks, each in its own ArrayBuffer like a read. */
function chunksOf(c: DecodeCase): Uint8Array[] {
  return c.bounds.map(([start, end]) => c.wire.slice(start, end));
}

/** The same, as Buffers, which is what ws's Receiver gets from a socket. */
function buffersOf(c: DecodeCase): Buffer[] {
  return chunksOf(c).map((chunk) => Buffer.from(chunk.buffer));
}

/**
 * Both decoders unmask in place: the chunks are restored after each batch,
 * outside the timed region, so every batch decodes the pristine bytes.
 */
function restore(c: DecodeCase, chunks: Uint8Array[]): void {
  for (let i = 0; i < chunks.length; i++) {
    const [start, end] = c.bounds[i];
    chunks[i].set(c.wire.subarray(start, end));
  }
}

// The application's side of the public pipeline: a reader loop.
async function decodeWithStreams(
  chunks: Uint8Array[],
  each: (message: Message) => void,
): Promise<void> {
  const reader = streamOf(chunks)
    .pipeThrough(new FrameDecoderStream({ role: "server" }))
    .pipeThrough(new MessageDecoderStream())
    .getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    each(value);
  }
}

/**
 * The same pipeline, built once and fed batch after batch, as a
 * connection's is: a batch's chunks arrive at once, as a burst of socket
 * reads, and the reader reads until it has the batch's messages.
 */
function decodePipeline(each: (message: Message) => void) {
  let source!: ReadableStreamDefaultController<Uint8Array>;
  const reader = new ReadableStream<Uint8Array>({
    start: (controller) => {
      source = controller;
    },
  })
    .pipeThrough(new FrameDecoderStream({ role: "server" }))
    .pipeThrough(new MessageDecoderStream())
    .getReader();
  return async (chunks: Uint8Array[], messages: number) => {
    for (let i = 0; i < chunks.length; i++) source.enqueue(chunks[i]);
    for (let i = 0; i < messages; i++) {
      const { done, value } = await reader.read();
      if (done) throw new Error("the message stream ended early");
      each(value);
    }
  };
}

// The sans-I/O cores under the streams, for reference: what the streams
// add is the difference.
function sansIoDecoder(each: (message: Message) => void) {
  const frames = new FrameDecoder({ role: "server" });
  const messages = new MessageDecoder();
  const handler: MessageHandler = {
    data: (data) => each(data),
    control: () => {},
  };
  const onFrame = (frame: Frame) => messages.push(frame, handler);
  return (chunks: Uint8Array[]) => {
    for (let i = 0; i < chunks.length; i++) frames.push(chunks[i], onFrame);
  };
}

// ws, as its WebSocket uses it: Receiver#_write per socket chunk, and an
// application's 'message' listener that turns text into a string.
function wsReceiver(each: (message: Message) => void) {
  const receiver = new Receiver({ isServer: true, maxPayload: 0 });
  receiver.on("message", (data, isBinary) => {
    each(isBinary ? data : (data as Buffer).toString());
  });
  return (chunks: Uint8Array[]) => {
    for (let i = 0; i < chunks.length; i++) {
      receiver._write(chunks[i], null, onWritten);
    }
  };
}

/** Checks, untimed, that all three decode the messages exactly. */
async function verifyDecode(c: DecodeCase): Promise<void> {
  const results: [string, Message[]][] = [];
  const streamed: Message[] = [];
  await decodeWithStreams(chunksOf(c), (m) => streamed.push(m));
  results.push(["streams", streamed]);
  const pushed: Message[] = [];
  sansIoDecoder((m) => pushed.push(m))(chunksOf(c));
  results.push(["sans-I/O", pushed]);
  const received: Message[] = [];
  wsReceiver((m) => received.push(m))(buffersOf(c));
  results.push(["ws Receiver", received]);
  for (const [name, messages] of results) {
    if (
      messages.length !== c.messages ||
      !messages.every((m) =>
        typeof m === typeof c.message && same(m, c.message)
      )
    ) {
      throw new Error(`${name} decoded ${c.kind} ${bytes(c.size)} wrongly`);
    }
  }
}

async function benchDecode(kind: Kind): Promise<void> {
  const rows: string[][] = [];
  for (const size of SIZES) {
    const c = decodeCase(kind, size);
    await verifyDecode(c);
    const units = c.messages * c.message.length;
    const variant = (
      name: string,
      chunks: Uint8Array[],
      run: (chunks: Uint8Array[]) => void | Promise<void>,
    ): Variant => ({
      name,
      run: () => run(chunks),
      after: () => {
        expect(`${kind} ${bytes(size)} ${name}`, c.messages, units);
        restore(c, chunks);
      },
    });
    const pipeline = decodePipeline(onMessage);
    const [s, p, w] = await measure([
      variant(
        "streams",
        chunksOf(c),
        (chunks) => pipeline(chunks, c.messages),
      ),
      variant("sans-I/O", chunksOf(c), sansIoDecoder(onMessage)),
      variant("ws", buffersOf(c), wsReceiver(onMessage)),
    ], timing);
    rows.push([
      bytes(size),
      rate(s.perSecond * c.messages, size),
      rate(p.perSecond * c.messages, size),
      rate(w.perSecond * c.messages, size),
      ratio(speedup(s, w)),
      ratio(speedup(p, w)),
      spread([s.spread, p.spread, w.spread]),
    ]);
  }
  table([
    "message",
    "streams",
    "sans-I/O",
    "ws Receiver",
    "streams/ws",
    "sans-I/O/ws",
    "noise",
  ], rows);
}

// Encoding -------------------------------------------------------------------

function wireSize(size: number): number {
  return 2 + (size < 126 ? 0 : size < 0x10000 ? 2 : 8) + size;
}

// The application's side of the public pipeline: messages written into
// the encoder streams, the bytes drained by a reader (as a socket would).
async function encodeWithStreams(
  messages: Message[],
  each: (chunk: Uint8Array) => void,
): Promise<void> {
  const reader = streamOf(messages)
    .pipeThrough(new MessageEncoderStream())
    .pipeThrough(new FrameEncoderStream({ role: "server" }))
    .getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    each(value);
  }
}

/** The same pipeline, built once and fed batch after batch. */
function encodePipeline(each: (chunk: Uint8Array) => void) {
  let source!: ReadableStreamDefaultController<Message>;
  const reader = new ReadableStream<Message>({
    start: (controller) => {
      source = controller;
    },
  })
    .pipeThrough(new MessageEncoderStream())
    .pipeThrough(new FrameEncoderStream({ role: "server" }))
    .getReader();
  return async (list: Message[], length: number) => {
    for (let i = 0; i < list.length; i++) source.enqueue(list[i]);
    let got = 0;
    while (got < length) {
      const { done, value } = await reader.read();
      if (done) throw new Error("the byte stream ended early");
      got += value.length;
      each(value);
    }
  };
}

function sansIoEncoder(each: (chunk: Uint8Array) => void) {
  const messages = new MessageEncoder();
  const frames = new FrameEncoder({ role: "server" });
  const onFrame = (frame: Frame) => frames.encode(frame, each);
  return (list: Message[]) => {
    for (let i = 0; i < list.length; i++) messages.encode(list[i], onFrame);
  };
}

// ws's static framer, with what WebSocket#send passes a server's Sender:
// a string is converted with Buffer.from() inside frame(); bytes are
// handed over as a Buffer (toBuffer() in send(), done here beforehand).
function wsFramer(each: (chunk: Uint8Array) => void) {
  return (list: (string | Buffer)[]) => {
    for (let i = 0; i < list.length; i++) {
      const data = list[i];
      const chunks = Sender.frame(data as Uint8Array, {
        fin: true,
        rsv1: false,
        opcode: typeof data === "string" ? Opcode.Text : Opcode.Binary,
        mask: false,
        readOnly: false,
      });
      for (let j = 0; j < chunks.length; j++) each(chunks[j]);
    }
  };
}

/** Checks, untimed, that each encoder's output decodes to the message. */
async function verifyEncode(message: Message): Promise<void> {
  const wsData = typeof message === "string" ? message : Buffer.from(message);
  const outputs: [string, Uint8Array[]][] = [];
  const streamed: Uint8Array[] = [];
  await encodeWithStreams([message], (b) => streamed.push(b));
  outputs.push(["streams", streamed]);
  const encoded: Uint8Array[] = [];
  sansIoEncoder((b) => encoded.push(b))([message]);
  outputs.push(["sans-I/O", encoded]);
  const framed: Uint8Array[] = [];
  wsFramer((b) => framed.push(b))([wsData]);
  outputs.push(["ws Sender.frame", framed]);
  const payload = bytesOf(message);
  for (const [name, chunks] of outputs) {
    const wire = concat(chunks);
    const decoded: Frame[] = [];
    const decoder = new FrameDecoder({ role: "client" });
    decoder.push(wire, (frame) => decoded.push(frame));
    decoder.end();
    if (
      wire.length !== wireSize(payload.length) || decoded.length !== 1 ||
      decoded[0].opcode !== opcodeOf(message) ||
      !same(decoded[0].payload, payload)
    ) {
      throw new Error(`${name} encoded ${bytes(payload.length)} wrongly`);
    }
  }
}

async function benchEncode(kind: Kind): Promise<void> {
  const rows: string[][] = [];
  for (const size of SIZES) {
    const messages = messagesPerBatch(size);
    const message = messageOf(kind, size);
    await verifyEncode(message);
    const list = new Array<Message>(messages).fill(message);
    const wsList = new Array<string | Buffer>(messages).fill(
      typeof message === "string" ? message : Buffer.from(message),
    );
    const length = messages * wireSize(size);
    // One chunk or two per message: check the byte count.
    const check = () => expect(`${kind} ${bytes(size)}`, null, length);
    const pipeline = encodePipeline(onBytes);
    const sansIo = sansIoEncoder(onBytes);
    const framer = wsFramer(onBytes);
    const [s, p, w] = await measure([
      {
        name: "streams",
        run: () => pipeline(list, length),
        after: check,
      },
      { name: "sans-I/O", run: () => sansIo(list), after: check },
      { name: "ws", run: () => framer(wsList), after: check },
    ], timing);
    rows.push([
      bytes(size),
      rate(s.perSecond * messages, size),
      rate(p.perSecond * messages, size),
      rate(w.perSecond * messages, size),
      ratio(speedup(s, w)),
      ratio(speedup(p, w)),
      spread([s.spread, p.spread, w.spread]),
    ]);
  }
  table([
    "message",
    "streams",
    "sans-I/O",
    "ws Sender.frame",
    "streams/ws",
    "sans-I/O/ws",
    "noise",
  ], rows);
}

// Main -----------------------------------------------------------------------

const KIND_NAMES: Record<Kind, string> = {
  binary: "binary",
  text: "text, ASCII",
  utf8: "text, mixed UTF-8 (1- to 4-byte characters)",
};

const started = performance.now();
console.log(`Message pipeline benchmark on ${runtime()}`);
console.log(machine());
console.log(await load("before"));
console.log(describeWs());
console.log(
  wsNativeMask
    ? "bufferutil: IN USE (native addon) by ws"
    : "bufferutil: NOT IN USE: ws masks in JS, its figures are understated",
);
console.log(
  `Timing: ${timing.warmupMs} ms warm-up, then the median of ${timing.rounds} rounds of ${timing.roundMs} ms per variant (ratios: median of per-round ratios); ` +
    `batches of ~${
      bytes(BATCH_BYTES)
    } (at least 4 messages), each message one frame. ` +
    "Ratios are ours / ws: > 1 means ours is faster. noise: half the range of the per-round rates, worst variant of the row.",
);
console.log(
  `Decode: masked client-to-server frames in ${bytes(CHUNK)} chunks (fresh ` +
    "pristine copies each batch, restored untimed). streams = ReadableStream " +
    "of chunks .pipeThrough(FrameDecoderStream server) .pipeThrough(" +
    "MessageDecoderStream), built once, read by a reader loop (each batch's " +
    "chunks enqueued at once, read until its messages are out); " +
    "sans-I/O = FrameDecoder.push → MessageDecoder.push; ws = Receiver#_write " +
    "per chunk, 'message' listener calling data.toString() for text (ws " +
    "validates UTF-8 with buffer.isUtf8 or utf-8-validate).",
);
console.log(
  "Encode (server role, unmasked): streams = ReadableStream of messages " +
    ".pipeThrough(MessageEncoderStream) .pipeThrough(FrameEncoderStream), " +
    "built once, drained by a reader; sans-I/O = MessageEncoder.encode → " +
    "FrameEncoder.encode; ws = static Sender.frame() (a string is converted " +
    "by Buffer.from() inside it; bytes are passed as a Buffer).",
);

if (only.has("decode")) {
  for (const kind of kinds) {
    console.log(`\n## Decode, ${KIND_NAMES[kind]}`);
    await benchDecode(kind);
  }
}
if (only.has("encode")) {
  for (const kind of kinds) {
    console.log(`\n## Encode, ${KIND_NAMES[kind]}`);
    await benchEncode(kind);
  }
}
console.log(`\n${await load("after")}`);
console.log(
  `checksum ${checksum} (units checked); ${
    ((performance.now() - started) / 1000).toFixed(1)
  } s`,
);
