// Frame codec benchmark: this package's decoder, encoder and masking against
// the `ws` package's Receiver and Sender, in the same process, on the same
// bytes. Runs unchanged on Node, Deno and Bun:
//
//   node bench/frame.ts           deno run -A bench/frame.ts    bun bench/frame.ts
//
// Options: --quick (shorter timing), --only=decode,encode,mask.
//
// Ratios are ours / ws: above 1 means this package is faster.

import { Buffer } from "node:buffer";
import os from "node:os";
import process from "node:process";
import { mask } from "../src/_mask.ts";
import type { Frame, Role } from "../src/frame.ts";
import { FrameDecoder } from "../src/frame_decoder.ts";
import { FrameDecoderStream } from "../src/frame_decoder_stream.ts";
import { FrameEncoder } from "../src/frame_encoder.ts";
import { FrameEncoderStream } from "../src/frame_encoder_stream.ts";
import { Opcode } from "../src/opcode.ts";
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
import {
  bufferutil,
  describeWs,
  Receiver,
  Sender,
  type WsFrameOptions,
  wsNativeMask,
} from "./_ws.ts";

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const only = new Set(
  args.find((arg) => arg.startsWith("--only="))?.slice(7).split(",") ??
    ["decode", "encode", "mask"],
);
const timing: TimingOptions = quick
  ? { warmupMs: 40, rounds: 3, roundMs: 30 }
  : { warmupMs: 150, rounds: 9, roundMs: 50 };

const SIZES = [16, 125, 1024, 64 * 1024, 1024 * 1024];
const MASK_SIZES = [1024, 64 * 1024, 1024 * 1024];
// What one socket read delivers.
const CHUNK = 64 * 1024;
// Each timed batch covers about this many bytes (and at least 4 frames).
const BATCH_BYTES = 1024 * 1024;
// Sizes from here up also get a payload throughput figure.
const BIG = 64 * 1024;

// Everything the benchmarked code hands back is counted here, and checked
// after each batch, so no work can be optimized away.
let frames = 0;
let total = 0;
let checksum = 0;

function onFrame(frame: Frame): void {
  frames++;
  total += frame.payload.length;
}

function onMessage(data: Uint8Array): void {
  frames++;
  total += data.length;
}

function onBytes(chunk: Uint8Array): void {
  frames++;
  total += chunk.length;
}

function onWritten(error?: Error | null): void {
  if (error) throw error;
}

/** Checks the counters against a batch's expected output, then resets them. */
function expect(what: string, count: number | null, length: number): void {
  if ((count !== null && frames !== count) || total !== length) {
    throw new Error(
      `${what}: expected ${count} frames / ${length} bytes, got ${frames} / ${total}`,
    );
  }
  checksum += total;
  frames = 0;
  total = 0;
}

function framesPerBatch(size: number): number {
  return Math.max(4, Math.ceil(BATCH_BYTES / (size + 14)));
}

function payloadOf(size: number): Uint8Array {
  const payload = new Uint8Array(size);
  let x = size | 1;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    payload[i] = x >>> 24;
  }
  return payload;
}

function binary(payload: Uint8Array): Frame {
  return {
    fin: true,
    rsv1: false,
    rsv2: false,
    rsv3: false,
    opcode: Opcode.Binary,
    payload,
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

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function rate(perSecond: number, size: number): string {
  const fps = `${si(perSecond)} f/s`;
  if (size < BIG) return fps;
  const payload = perSecond * size;
  return payload >= 1e9
    ? `${fps} = ${si(payload / 1e9)} GB/s`
    : `${fps} = ${si(payload / 1e6)} MB/s`;
}

function spread(values: number[]): string {
  return `±${(Math.max(...values) * 100).toFixed(0)}%`;
}

// Decoding ------------------------------------------------------------------

interface DecodeCase {
  size: number;
  masked: boolean;
  /** The decoding side's role: a server receives masked frames. */
  role: Role;
  count: number;
  payload: Uint8Array;
  /** The whole byte stream, pristine. */
  wire: Uint8Array;
  /** Where each socket-sized chunk starts and ends in `wire`. */
  bounds: [number, number][];
}

function decodeCase(size: number, masked: boolean): DecodeCase {
  const count = framesPerBatch(size);
  const payload = payloadOf(size);
  // A client sends masked frames; a server unmasked ones.
  const encoder = new FrameEncoder({ role: masked ? "client" : "server" });
  const parts: Uint8Array[] = [];
  const frame = binary(payload);
  for (let i = 0; i < count; i++) {
    encoder.encode(frame, (chunk) => parts.push(chunk.slice()));
  }
  const wire = concat(parts);
  const bounds: [number, number][] = [];
  for (let at = 0; at < wire.length; at += CHUNK) {
    bounds.push([at, Math.min(at + CHUNK, wire.length)]);
  }
  return {
    size,
    masked,
    role: masked ? "server" : "client",
    count,
    payload,
    wire,
    bounds,
  };
}

/** Fresh copies of the chunks, each in its own ArrayBuffer like a read. */
function chunksOf(c: DecodeCase): Uint8Array[] {
  return c.bounds.map(([start, end]) => c.wire.slice(start, end));
}

/** The same, as Buffers, which is what ws's Receiver expects. */
function buffersOf(c: DecodeCase): Buffer[] {
  return chunksOf(c).map((chunk) => Buffer.from(chunk.buffer));
}

/**
 * Both decoders unmask in place, so masked chunks are restored after each
 * batch, outside the timed region; unmasked chunks are left untouched.
 */
function restore(c: DecodeCase, chunks: Uint8Array[]): void {
  if (!c.masked) return;
  for (let i = 0; i < chunks.length; i++) {
    const [start, end] = c.bounds[i];
    chunks[i].set(c.wire.subarray(start, end));
  }
}

function streamOf<T>(items: T[]): ReadableStream<T> {
  return new ReadableStream<T>({
    start(controller) {
      for (const item of items) controller.enqueue(item);
      controller.close();
    },
  });
}

async function decodeWithStream(
  c: DecodeCase,
  chunks: Uint8Array[],
  each: (frame: Frame) => void,
): Promise<void> {
  const reader = streamOf(chunks)
    .pipeThrough(new FrameDecoderStream({ role: c.role }))
    .getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    each(value);
  }
}

/** Checks, untimed, that all three decode the payloads exactly. */
async function verifyDecode(c: DecodeCase): Promise<void> {
  const results: [string, Uint8Array[]][] = [];

  const pushed: Uint8Array[] = [];
  const decoder = new FrameDecoder({ role: c.role });
  for (const chunk of chunksOf(c)) {
    decoder.push(chunk, (frame) => pushed.push(frame.payload));
  }
  decoder.end();
  results.push(["FrameDecoder", pushed]);

  const streamed: Uint8Array[] = [];
  await decodeWithStream(c, chunksOf(c), (f) => streamed.push(f.payload));
  results.push(["FrameDecoderStream", streamed]);

  const received: Uint8Array[] = [];
  const receiver = new Receiver({ isServer: c.masked, maxPayload: 0 });
  receiver.on("message", (data) => received.push(data));
  for (const chunk of buffersOf(c)) receiver._write(chunk, null, onWritten);
  results.push(["ws Receiver", received]);

  for (const [name, payloads] of results) {
    if (
      payloads.length !== c.count ||
      !payloads.every((p) => equal(p, c.payload))
    ) {
      throw new Error(`${name} decoded ${bytes(c.size)} frames wrongly`);
    }
  }
}

async function benchDecode(masked: boolean): Promise<void> {
  const rows: string[][] = [];
  for (const size of SIZES) {
    const c = decodeCase(size, masked);
    await verifyDecode(c);
    const expected = () => expect(`${bytes(size)}`, c.count, c.count * size);

    const pushChunks = chunksOf(c);
    const decoder = new FrameDecoder({ role: c.role });
    const push: Variant = {
      name: "push",
      run: () => {
        for (const chunk of pushChunks) decoder.push(chunk, onFrame);
      },
      after: () => {
        expected();
        restore(c, pushChunks);
      },
    };

    const streamChunks = chunksOf(c);
    const stream: Variant = {
      name: "stream",
      run: () => decodeWithStream(c, streamChunks, onFrame),
      after: () => {
        expected();
        restore(c, streamChunks);
      },
    };

    const wsChunks = buffersOf(c);
    const receiver = new Receiver({ isServer: masked, maxPayload: 0 });
    receiver.on("message", onMessage);
    const ws: Variant = {
      name: "ws",
      run: () => {
        for (const chunk of wsChunks) receiver._write(chunk, null, onWritten);
      },
      after: () => {
        expected();
        restore(c, wsChunks);
      },
    };

    const [p, s, w] = await measure([push, stream, ws], timing);
    rows.push([
      bytes(size),
      rate(p.perSecond * c.count, size),
      rate(s.perSecond * c.count, size),
      rate(w.perSecond * c.count, size),
      ratio(speedup(p, w)),
      ratio(speedup(s, w)),
      spread([p.spread, s.spread, w.spread]),
    ]);
  }
  table([
    "payload",
    "FrameDecoder.push",
    "FrameDecoderStream",
    "ws Receiver",
    "push/ws",
    "stream/ws",
    "noise",
  ], rows);
}

// Encoding ------------------------------------------------------------------

function wireSize(size: number, masked: boolean): number {
  return 2 + (size < 126 ? 0 : size < 0x10000 ? 2 : 8) + (masked ? 4 : 0) +
    size;
}

async function encodeWithStream(
  frameList: Frame[],
  role: Role,
  each: (chunk: Uint8Array) => void,
): Promise<void> {
  const reader = streamOf(frameList)
    .pipeThrough(new FrameEncoderStream({ role }))
    .getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    each(value);
  }
}

/** Checks, untimed, that each encoder's output decodes to the payload. */
async function verifyEncode(
  payload: Uint8Array,
  masked: boolean,
  wsOptions: WsFrameOptions,
): Promise<void> {
  const role: Role = masked ? "client" : "server";
  const outputs: [string, Uint8Array[]][] = [];
  const encoded: Uint8Array[] = [];
  new FrameEncoder({ role }).encode(binary(payload), (b) => encoded.push(b));
  outputs.push(["FrameEncoder", encoded]);
  const streamed: Uint8Array[] = [];
  await encodeWithStream([binary(payload)], role, (b) => streamed.push(b));
  outputs.push(["FrameEncoderStream", streamed]);
  outputs.push([
    "ws Sender.frame",
    Sender.frame(Buffer.from(payload), wsOptions),
  ]);
  for (const [name, chunks] of outputs) {
    const wire = concat(chunks);
    const decoded: Uint8Array[] = [];
    const decoder = new FrameDecoder({ role: masked ? "server" : "client" });
    decoder.push(wire, (frame) => decoded.push(frame.payload));
    decoder.end();
    if (
      wire.length !== wireSize(payload.length, masked) ||
      decoded.length !== 1 || !equal(decoded[0], payload)
    ) {
      throw new Error(`${name} encoded ${bytes(payload.length)} wrongly`);
    }
  }
}

async function benchEncode(masked: boolean): Promise<void> {
  const role: Role = masked ? "client" : "server";
  const rows: string[][] = [];
  for (const size of SIZES) {
    const count = framesPerBatch(size);
    const payload = payloadOf(size);
    const frame = binary(payload);
    // What ws's own WebSocket#send passes for a Buffer: the data is
    // read-only, so a masked payload is copied, as this package always does.
    const wsOptions: WsFrameOptions = {
      fin: true,
      rsv1: false,
      opcode: Opcode.Binary,
      mask: masked,
      readOnly: true,
    };
    const wsData = Buffer.from(payload);
    await verifyEncode(payload, masked, wsOptions);
    const length = count * wireSize(size, masked);
    // The encoders emit one or two chunks a frame: check the byte count.
    const check = () => expect(bytes(size), null, length);

    const encoder = new FrameEncoder({ role });
    const encode: Variant = {
      name: "encode",
      run: () => {
        for (let i = 0; i < count; i++) encoder.encode(frame, onBytes);
      },
      after: check,
    };

    const frameList = new Array<Frame>(count).fill(frame);
    const stream: Variant = {
      name: "stream",
      run: () => encodeWithStream(frameList, role, onBytes),
      after: check,
    };

    const ws: Variant = {
      name: "ws",
      run: () => {
        for (let i = 0; i < count; i++) {
          const list = Sender.frame(wsData, wsOptions);
          for (let j = 0; j < list.length; j++) onBytes(list[j]);
        }
      },
      after: check,
    };

    const [e, s, w] = await measure([encode, stream, ws], timing);
    rows.push([
      bytes(size),
      rate(e.perSecond * count, size),
      rate(s.perSecond * count, size),
      rate(w.perSecond * count, size),
      ratio(speedup(e, w)),
      ratio(speedup(s, w)),
      spread([e.spread, s.spread, w.spread]),
    ]);
  }
  table([
    "payload",
    "FrameEncoder.encode",
    "FrameEncoderStream",
    "ws Sender.frame",
    "encode/ws",
    "stream/ws",
    "noise",
  ], rows);
}

// Masking -------------------------------------------------------------------

async function benchMask(): Promise<void> {
  const KEY = 0x37fa213d;
  const keyBytes = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const rows: string[][] = [];
  for (const size of MASK_SIZES) {
    const reps = Math.max(1, Math.ceil((4 << 20) / size));
    const source = payloadOf(size);
    const target = new Uint8Array(size);
    const data = source.slice();
    const bufferSource = Buffer.from(source);
    const bufferTarget = Buffer.alloc(size);
    const bufferData = Buffer.from(source);

    // Masking is its own inverse: check it against the definition once.
    mask(data, KEY);
    for (let i = 0; i < size; i++) {
      if (data[i] !== (source[i] ^ keyBytes[i & 3])) {
        throw new Error(`mask() is wrong at byte ${i} of ${size}`);
      }
    }
    const sample = (bytes: Uint8Array) => {
      checksum += bytes[reps % size];
    };

    const variants: Variant[] = [
      {
        name: "copy",
        run: () => {
          for (let r = 0; r < reps; r++) target.set(source);
        },
        after: () => sample(target),
      },
      {
        name: "mask",
        run: () => {
          for (let r = 0; r < reps; r++) mask(data, KEY);
        },
        after: () => sample(data),
      },
      {
        name: "copy+mask",
        run: () => {
          for (let r = 0; r < reps; r++) {
            target.set(source);
            mask(target, KEY);
          }
        },
        after: () => sample(target),
      },
    ];
    const addon = bufferutil;
    if (addon !== null) {
      variants.push({
        name: "bufferutil.unmask",
        run: () => {
          for (let r = 0; r < reps; r++) addon.unmask(bufferData, keyBytes);
        },
        after: () => sample(bufferData),
      }, {
        name: "bufferutil.mask",
        run: () => {
          for (let r = 0; r < reps; r++) {
            addon.mask(bufferSource, keyBytes, bufferTarget, 0, size);
          }
        },
        after: () => sample(bufferTarget),
      });
    }
    const results = await measure(variants, timing);
    const gbps = results.map((r) => (r.perSecond * reps * size) / 1e9);
    const gb = (i: number) =>
      gbps[i] === undefined ? "n/a" : `${gbps[i].toFixed(2)} GB/s`;
    const vs = (a: number, b: number) =>
      results[b] === undefined ? "n/a" : ratio(speedup(results[a], results[b]));
    // copy, mask, copy+mask, bufferutil unmask, bufferutil mask
    rows.push([
      bytes(size),
      gb(0),
      gb(1),
      gb(2),
      gb(3),
      gb(4),
      vs(1, 0),
      vs(1, 3),
      vs(2, 4),
      spread(results.map((r) => r.spread)),
    ]);
  }
  table([
    "size",
    "copy (set)",
    "mask()",
    "copy+mask()",
    "bu.unmask",
    "bu.mask",
    "mask/copy",
    "mask/bu.unmask",
    "copy+mask/bu.mask",
    "noise",
  ], rows);
}

// Main ----------------------------------------------------------------------

function runtime(): string {
  const g = globalThis as unknown as {
    Deno?: { version: { deno: string; v8: string } };
    Bun?: { version: string };
  };
  if (g.Bun) {
    return `Bun ${g.Bun.version} (JavaScriptCore ${
      process.versions.webkit ?? "?"
    })`;
  }
  if (g.Deno) return `Deno ${g.Deno.version.deno} (V8 ${g.Deno.version.v8})`;
  return `Node ${process.versions.node} (V8 ${process.versions.v8})`;
}

// Other processes on the machine skew every figure: measure how busy the
// CPUs are while this one sleeps, and say so when they are.
async function load(when: string): Promise<string> {
  const sum = (cpus: os.CpuInfo[], idle: boolean) =>
    cpus.reduce(
      (total, { times: t }) =>
        total + (idle ? t.idle : t.user + t.nice + t.sys + t.irq),
      0,
    );
  const before = os.cpus();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const after = os.cpus();
  const busy = sum(after, false) - sum(before, false);
  const idle = sum(after, true) - sum(before, true);
  const cpus = (busy / Math.max(1, busy + idle)) * after.length;
  const warning = cpus > 0.3
    ? ": other processes are competing, treat the figures with care"
    : "";
  return `CPUs busy ${when}: ${cpus.toFixed(1)} of ${after.length}${warning}`;
}

const started = performance.now();
const cpus = os.cpus();
console.log(`Frame codec benchmark on ${runtime()}`);
console.log(
  `${process.platform} ${process.arch}, ${cpus.length} CPUs (${
    cpus[0]?.model ?? "?"
  })`,
);
console.log(await load("before"));
console.log(describeWs());
console.log(
  wsNativeMask
    ? "bufferutil: IN USE (native addon), by ws and in the masking table"
    : "bufferutil: NOT IN USE: ws masks in JS, its figures are understated",
);
console.log(
  `Timing: ${timing.warmupMs} ms warm-up, then the median of ${timing.rounds} rounds of ${timing.roundMs} ms per variant (ratios: median of per-round ratios); ` +
    `batches of ~${bytes(BATCH_BYTES)} (at least 4 frames), delivered in ${
      bytes(CHUNK)
    } chunks. Ratios are ours / ws: > 1 means ours is faster.`,
);
console.log(
  "ws side: Receiver#_write(chunk) (the parser, minus Writable buffering), " +
    "counting 'message' events, one per FIN frame; static Sender.frame() with " +
    "readOnly: true. noise: half the range of the per-round rates, worst " +
    "variant of the row.",
);

if (only.has("decode")) {
  console.log(
    "\n## Decode, masked (client to server: role server / ws isServer: true)",
  );
  await benchDecode(true);
  console.log(
    "\n## Decode, unmasked (server to client: role client / ws isServer: false)",
  );
  await benchDecode(false);
}
if (only.has("encode")) {
  console.log("\n## Encode, masked (role client / ws mask: true)");
  await benchEncode(true);
  console.log(
    "\n## Encode, unmasked (role server / ws mask: false)\n" +
      "ws always emits [header, payload]; ours copies payloads up to 16 KiB\n" +
      "behind the header and passes larger ones through, so at 64 KiB and up\n" +
      "neither copies and GB/s is nominal.",
  );
  await benchEncode(false);
}
if (only.has("mask")) {
  console.log(
    "\n## Masking throughput (in place unless copy; bu = bufferutil, native)",
  );
  await benchMask();
}
console.log(`\n${await load("after")}`);
console.log(
  `checksum ${checksum} (payload bytes checked); ${
    ((performance.now() - started) / 1000).toFixed(1)
  } s`,
);
