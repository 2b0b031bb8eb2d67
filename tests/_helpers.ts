// Helpers shared by the tests.

export { concat } from "../src/_bytes.ts";
import { link, type Stage } from "../src/_stage.ts";
import type { Frame } from "../src/frame.ts";
import type { Opcode } from "../src/opcode.ts";
import { WebSocketConnection } from "../src/connection.ts";

/** A frame with every field given, the rest defaulted. */
export function frame(
  opcode: Opcode,
  payload: Uint8Array | string,
  fields: Partial<Frame> = {},
): Frame {
  return {
    fin: true,
    rsv1: false,
    rsv2: false,
    rsv3: false,
    opcode,
    payload: typeof payload === "string"
      ? new TextEncoder().encode(payload)
      : payload,
    ...fields,
  };
}

/** Bytes from numbers, for readable golden vectors. */
export function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values);
}

/** Reads a stream to its end. */
export async function collect<T>(stream: ReadableStream<T>): Promise<T[]> {
  const out: T[] = [];
  const reader = stream.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) return out;
    out.push(value);
  }
}

/** A readable stream of the given chunks. */
export function streamOf<T>(chunks: readonly T[]): ReadableStream<T> {
  let i = 0;
  return new ReadableStream<T>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else controller.close();
    },
  });
}

/** One end of an in-memory byte duplex, with a log of what it sent. */
export interface MemoryEnd {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
}

/**
 * Two connected in-memory byte duplexes. Closing one end's writable ends
 * the other's readable (a FIN); aborting it errors it (a reset).
 */
export function duplexPair(): [MemoryEnd, MemoryEnd] {
  const ab = new TransformStream<Uint8Array, Uint8Array>();
  const ba = new TransformStream<Uint8Array, Uint8Array>();
  return [
    { readable: ba.readable, writable: ab.writable },
    { readable: ab.readable, writable: ba.writable },
  ];
}

/**
 * Resolves once `condition()` holds, checking every 10 ms; rejects with
 * `what` if it does not within `ms`. For state another part of the process
 * updates in its own event (a socket's write callbacks), with no promise to
 * wait on.
 */
export async function eventually(
  condition: () => boolean,
  what: string,
  ms = 2000,
): Promise<void> {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error(`not within ${ms} ms: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Sorted cut positions in 0..length, from raw generated numbers. */
export function positions(raw: readonly number[], length: number): number[] {
  return raw.map((n) => n % (length + 1)).sort((a, b) => a - b);
}

/**
 * Copies of the pieces of `bytes` between the cuts (raw generated numbers,
 * any order; a repeated position makes an empty piece).
 */
export function cut(bytes: Uint8Array, raw: readonly number[]): Uint8Array[] {
  const edges = [0, ...positions(raw, bytes.length), bytes.length];
  const pieces: Uint8Array[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    pieces.push(bytes.slice(edges[i], edges[i + 1]));
  }
  return pieces;
}

/** Pseudo-random bytes, the same for the same seed. */
export function payload(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

/** Stages joined in a row by link(), as a connection joins them, as one transform. */
export function linked<I, O>(
  // deno-lint-ignore no-explicit-any
  ...stages: Stage<any, any>[]
): ReadableWritablePair<O, I> {
  for (let i = 1; i < stages.length; i++) link(stages[i - 1], stages[i]);
  return {
    writable: stages[0].writable,
    readable: stages[stages.length - 1].readable,
  };
}

/** A masked frame, as a client sends it. */
export function clientFrame(
  opcode: number,
  payload: Uint8Array = new Uint8Array(0),
  fin = true,
): Uint8Array {
  const length = payload.length;
  const extra = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + extra + 4 + length);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (extra === 0) out[1] = 0x80 | length;
  else if (extra === 2) {
    out[1] = 0x80 | 126;
    out[2] = length >>> 8;
    out[3] = length & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(length));
  }
  const key = [0x12, 0x34, 0x56, 0x78];
  out.set(key, 2 + extra);
  for (let i = 0; i < length; i++) {
    out[6 + extra + i] = payload[i] ^ key[i & 3];
  }
  return out;
}

/**
 * A server connection over an in-memory pipe, and what its client has
 * read so far (the client reads everything, as it comes).
 */
export async function memoryMember(): Promise<{
  server: WebSocketConnection;
  client: WebSocketConnection;
  got: unknown[];
}> {
  const [near, far] = duplexPair();
  const server = new WebSocketConnection(far, { role: "server" });
  const client = new WebSocketConnection(near, { role: "client" });
  const got: unknown[] = [];
  const { readable } = await client.opened;
  void (async () => {
    for await (const message of readable) got.push(message);
  })().catch(() => {});
  await server.opened;
  return { server, client, got };
}
