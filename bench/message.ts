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
import { listed } from "./_args.ts";
import {
  bytes,
  describeTiming,
  measure,
  table,
  timingFor,
  type Variant,
} from "./_timing.ts";
import {
  BATCH_BYTES,
  batchOf,
  buffersOf,
  CHUNK,
  chunksOf,
  drain,
  encodes,
  equal,
  expecter,
  footer,
  frameOf,
  header,
  onBytes,
  onMessage,
  onWritten,
  perBatch,
  restore,
  row,
  SIZES,
  streamOf,
  type Wire,
  wireSize,
} from "./_wire.ts";
import { Receiver, Sender } from "./_ws.ts";

const args = process.argv.slice(2);
const option = (name: string, fallback: string[]) =>
  new Set(listed(name) ?? fallback);
const only = option("only", ["decode", "encode"]);
const kinds = (["binary", "text", "utf8"] as const).filter((kind) =>
  option("kinds", ["binary", "text", "utf8"]).has(kind)
);
type Kind = typeof kinds[number];

const timing = timingFor(args.includes("--quick"));

const expect = expecter("messages", "units");

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

/** A message as one frame. */
function frameFor(message: Message): Frame {
  return typeof message === "string"
    ? frameOf(Opcode.Text, new TextEncoder().encode(message))
    : frameOf(Opcode.Binary, message);
}

function same(a: Message, b: Message): boolean {
  return typeof a === "string" || typeof b === "string" ? a === b : equal(a, b);
}

/** The columns of a table: our streams and sans-I/O cores against `ws`. */
function columns(ws: string): string[] {
  return [
    "message",
    "streams",
    "sans-I/O",
    ws,
    "streams/ws",
    "sans-I/O/ws",
    "noise",
  ];
}

// Decoding -------------------------------------------------------------------

interface DecodeCase extends Wire {
  kind: Kind;
  message: Message;
}

/** The messages masked, as a client sends them. */
function decodeCase(kind: Kind, size: number): DecodeCase {
  const message = messageOf(kind, size);
  return { ...batchOf(frameFor(message), true), kind, message };
}

/** A stream fed by hand, as a socket feeds a connection's, and its feed. */
function fed<T>(): [ReadableStream<T>, ReadableStreamDefaultController<T>] {
  let source!: ReadableStreamDefaultController<T>;
  const stream = new ReadableStream<T>({
    start: (controller) => {
      source = controller;
    },
  });
  return [stream, source];
}

/** The public pipeline, bytes to messages, for a reader loop to read. */
function decoding(chunks: ReadableStream<Uint8Array>): ReadableStream<Message> {
  return chunks
    .pipeThrough(new FrameDecoderStream({ role: "server" }))
    .pipeThrough(new MessageDecoderStream());
}

/**
 * The same pipeline, built once and fed batch after batch, as a
 * connection's is: a batch's chunks arrive at once, as a burst of socket
 * reads, and the reader reads until it has the batch's messages.
 */
function decodePipeline(each: (message: Message) => void) {
  const [reads, source] = fed<Uint8Array>();
  const reader = decoding(reads).getReader();
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
  await drain(decoding(streamOf(chunksOf(c))), (m) => streamed.push(m));
  results.push(["streams", streamed]);
  const pushed: Message[] = [];
  sansIoDecoder((m) => pushed.push(m))(chunksOf(c));
  results.push(["sans-I/O", pushed]);
  const received: Message[] = [];
  wsReceiver((m) => received.push(m))(buffersOf(c));
  results.push(["ws Receiver", received]);
  for (const [name, messages] of results) {
    if (
      messages.length !== c.count ||
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
    const units = c.count * c.message.length;
    const variant = (
      name: string,
      chunks: Uint8Array[],
      run: (chunks: Uint8Array[]) => void | Promise<void>,
    ): Variant => ({
      name,
      run: () => run(chunks),
      after: () => {
        expect(`${kind} ${bytes(size)} ${name}`, c.count, units);
        restore(c, chunks);
      },
    });
    const pipeline = decodePipeline(onMessage);
    const rates = await measure([
      variant(
        "streams",
        chunksOf(c),
        (chunks) => pipeline(chunks, c.count),
      ),
      variant("sans-I/O", chunksOf(c), sansIoDecoder(onMessage)),
      variant("ws", buffersOf(c), wsReceiver(onMessage)),
    ], timing);
    rows.push(row(size, c.count, "msg/s", rates));
  }
  table(columns("ws Receiver"), rows);
}

// Encoding -------------------------------------------------------------------

/**
 * The public pipeline, messages to bytes: messages written into the encoder
 * streams, the bytes drained by a reader (as a socket would).
 */
function encoding(
  messages: ReadableStream<Message>,
): ReadableStream<Uint8Array> {
  return messages
    .pipeThrough(new MessageEncoderStream())
    .pipeThrough(new FrameEncoderStream({ role: "server" }));
}

/** The same pipeline, built once and fed batch after batch. */
function encodePipeline(each: (chunk: Uint8Array) => void) {
  const [writes, source] = fed<Message>();
  const reader = encoding(writes).getReader();
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
  await drain(encoding(streamOf([message])), (b) => streamed.push(b));
  outputs.push(["streams", streamed]);
  const encoded: Uint8Array[] = [];
  sansIoEncoder((b) => encoded.push(b))([message]);
  outputs.push(["sans-I/O", encoded]);
  const framed: Uint8Array[] = [];
  wsFramer((b) => framed.push(b))([wsData]);
  outputs.push(["ws Sender.frame", framed]);
  const frame = frameFor(message);
  for (const [name, chunks] of outputs) {
    if (!encodes(chunks, frame, false)) {
      throw new Error(`${name} encoded ${bytes(frame.payload.length)} wrongly`);
    }
  }
}

async function benchEncode(kind: Kind): Promise<void> {
  const rows: string[][] = [];
  for (const size of SIZES) {
    const messages = perBatch(size);
    const message = messageOf(kind, size);
    await verifyEncode(message);
    const list = new Array<Message>(messages).fill(message);
    const wsList = new Array<string | Buffer>(messages).fill(
      typeof message === "string" ? message : Buffer.from(message),
    );
    const length = messages * wireSize(size, false);
    // One chunk or two per message: check the byte count.
    const check = () => expect(`${kind} ${bytes(size)}`, null, length);
    const pipeline = encodePipeline(onBytes);
    const sansIo = sansIoEncoder(onBytes);
    const framer = wsFramer(onBytes);
    const rates = await measure([
      {
        name: "streams",
        run: () => pipeline(list, length),
        after: check,
      },
      { name: "sans-I/O", run: () => sansIo(list), after: check },
      { name: "ws", run: () => framer(wsList), after: check },
    ], timing);
    rows.push(row(size, messages, "msg/s", rates));
  }
  table(columns("ws Sender.frame"), rows);
}

// Main -----------------------------------------------------------------------

const KIND_NAMES: Record<Kind, string> = {
  binary: "binary",
  text: "text, ASCII",
  utf8: "text, mixed UTF-8 (1- to 4-byte characters)",
};

const started = performance.now();
await header(
  "Message pipeline benchmark",
  "bufferutil: IN USE (native addon) by ws",
);
console.log(
  `${describeTiming(timing)}; ` +
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
await footer(started, "units checked");
