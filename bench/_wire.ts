// What the codec benchmarks (frame.ts, message.ts) share: batches of one
// frame repeated, their bytes cut into socket reads, reader loops, the
// counters that check every batch, and the table rows of ours against ws.

import { Buffer } from "node:buffer";
import { concat } from "../src/_bytes.ts";
import type { Frame } from "../src/frame.ts";
import { FrameDecoder } from "../src/frame_decoder.ts";
import { FrameEncoder } from "../src/frame_encoder.ts";
import type { Message } from "../src/message.ts";
import type { Opcode } from "../src/opcode.ts";
import { load, machine, runtime } from "./_env.ts";
import { bytes, type Rate, ratio, si, speedup } from "./_timing.ts";
import { describeWs, wsNativeMask } from "./_ws.ts";

export const SIZES = [16, 125, 1024, 64 * 1024, 1024 * 1024];
// What one socket read delivers.
export const CHUNK = 64 * 1024;
// Each timed batch covers about this many bytes (and at least 4 frames).
export const BATCH_BYTES = 1024 * 1024;
// Sizes from here up also get a payload throughput figure.
const BIG = 64 * 1024;

/** How many frames of `size` make a batch. */
export function perBatch(size: number): number {
  return Math.max(4, Math.ceil(BATCH_BYTES / (size + 14)));
}

/** A frame's size on the wire. */
export function wireSize(size: number, masked: boolean): number {
  return 2 + (size < 126 ? 0 : size < 0x10000 ? 2 : 8) + (masked ? 4 : 0) +
    size;
}

/** A single-frame message. */
export function frameOf(opcode: Opcode, payload: Uint8Array): Frame {
  return { fin: true, rsv1: false, rsv2: false, rsv3: false, opcode, payload };
}

export function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Whether an encoder's output, `chunks`, is `frame` once, masked or not, and
 * nothing else: the peer decodes it back, and its size is exact.
 */
export function encodes(
  chunks: Uint8Array[],
  frame: Frame,
  masked: boolean,
): boolean {
  const wire = concat(chunks);
  const decoded: Frame[] = [];
  const decoder = new FrameDecoder({ role: masked ? "server" : "client" });
  decoder.push(wire, (f) => decoded.push(f));
  decoder.end();
  return wire.length === wireSize(frame.payload.length, masked) &&
    decoded.length === 1 && decoded[0].opcode === frame.opcode &&
    equal(decoded[0].payload, frame.payload);
}

// Counting -------------------------------------------------------------------

// Everything the benchmarked code hands back is counted here, and checked
// after each batch, so no work can be optimized away.
let count = 0;
let total = 0;
let checksum = 0;

export function onFrame(frame: Frame): void {
  count++;
  total += frame.payload.length;
}

export function onMessage(message: Message): void {
  count++;
  total += message.length;
}

export function onBytes(chunk: Uint8Array): void {
  count++;
  total += chunk.length;
}

export function onWritten(error?: Error | null): void {
  if (error) throw error;
}

/** Adds to the checksum what cannot be counted. */
export function keep(value: number): void {
  checksum += value;
}

/**
 * expect(what, count, length) checks the counters against a batch's
 * expected output, then resets them; `items` and `units` name what they
 * count, for its message.
 */
export function expecter(items: string, units: string) {
  return (what: string, expected: number | null, length: number): void => {
    if ((expected !== null && count !== expected) || total !== length) {
      throw new Error(
        `${what}: expected ${expected} ${items} / ${length} ${units}, got ${count} / ${total}`,
      );
    }
    checksum += total;
    count = 0;
    total = 0;
  };
}

// Streams --------------------------------------------------------------------

export function streamOf<T>(items: T[]): ReadableStream<T> {
  return new ReadableStream<T>({
    start(controller) {
      for (const item of items) controller.enqueue(item);
      controller.close();
    },
  });
}

/** An application's reader loop: reads `stream` to its end. */
export async function drain<T>(
  stream: ReadableStream<T>,
  each: (value: T) => void,
): Promise<void> {
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    each(value);
  }
}

// Socket reads ---------------------------------------------------------------

/** A batch of one frame repeated, as its bytes arrive. */
export interface Wire {
  /** Client to server: the decoders unmask in place. */
  masked: boolean;
  /** The frame's payload size. */
  size: number;
  /** How many times it is sent. */
  count: number;
  /** The whole byte stream, pristine. */
  wire: Uint8Array;
  /** Where each socket-sized chunk starts and ends in `wire`. */
  bounds: [number, number][];
}

/** A batch of `frame`, as a client (masked) or a server sends it. */
export function batchOf(frame: Frame, masked: boolean): Wire {
  const size = frame.payload.length;
  const count = perBatch(size);
  const encoder = new FrameEncoder({ role: masked ? "client" : "server" });
  const parts: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    encoder.encode(frame, (chunk) => parts.push(chunk.slice()));
  }
  const wire = concat(parts);
  const bounds: [number, number][] = [];
  for (let at = 0; at < wire.length; at += CHUNK) {
    bounds.push([at, Math.min(at + CHUNK, wire.length)]);
  }
  return { masked, size, count, wire, bounds };
}

/** Fresh copies of the chunks, each in its own ArrayBuffer like a read. */
export function chunksOf(w: Wire): Uint8Array[] {
  return w.bounds.map(([start, end]) => w.wire.slice(start, end));
}

/** The same, as Buffers, which is what ws's Receiver gets from a socket. */
export function buffersOf(w: Wire): Buffer[] {
  return chunksOf(w).map((chunk) => Buffer.from(chunk.buffer));
}

/**
 * Both decoders unmask in place, so masked chunks are restored after each
 * batch, outside the timed region; unmasked chunks are left untouched.
 */
export function restore(w: Wire, chunks: Uint8Array[]): void {
  if (!w.masked) return;
  for (let i = 0; i < chunks.length; i++) {
    const [start, end] = w.bounds[i];
    chunks[i].set(w.wire.subarray(start, end));
  }
}

// Output ---------------------------------------------------------------------

function rate(perSecond: number, size: number, unit: string): string {
  const each = `${si(perSecond)} ${unit}`;
  if (size < BIG) return each;
  const payload = perSecond * size;
  return payload >= 1e9
    ? `${each} = ${si(payload / 1e9)} GB/s`
    : `${each} = ${si(payload / 1e6)} MB/s`;
}

export function spread(values: number[]): string {
  return `±${(Math.max(...values) * 100).toFixed(0)}%`;
}

/**
 * A table row for two of ours against ws, timed on batches of `count`
 * items of `size`: the rates (in `unit`, "f/s"), ours / ws, the noise.
 */
export function row(
  size: number,
  count: number,
  unit: string,
  [a, b, ws]: Rate[],
): string[] {
  return [
    bytes(size),
    rate(a.perSecond * count, size, unit),
    rate(b.perSecond * count, size, unit),
    rate(ws.perSecond * count, size, unit),
    ratio(speedup(a, ws)),
    ratio(speedup(b, ws)),
    spread([a.spread, b.spread, ws.spread]),
  ];
}

/**
 * The opening lines: what runs, where, how busy the machine is, what ws
 * masks with; `native` is the last line when that is bufferutil's addon.
 */
export async function header(title: string, native: string): Promise<void> {
  console.log(`${title} on ${runtime()}`);
  console.log(machine());
  console.log(await load("before"));
  console.log(describeWs());
  console.log(
    wsNativeMask
      ? native
      : "bufferutil: NOT IN USE: ws masks in JS, its figures are understated",
  );
}

/** The closing lines; `checked` says what the checksum adds up. */
export async function footer(started: number, checked: string): Promise<void> {
  console.log(`\n${await load("after")}`);
  console.log(
    `checksum ${checksum} (${checked}); ${
      ((performance.now() - started) / 1000).toFixed(1)
    } s`,
  );
}
