// Small output buffers are carved from shared 64 KiB slabs, as Node does
// for Buffers: allocating a small Uint8Array costs 200–700 ns on Deno and
// above 64 bytes on Node, a slab slice about 20 ns. A slab is never reused,
// only dropped once full; its slices live as long as their readers keep them.
//
// A larger buffer is left unfilled where the runtime can (Node and Bun's
// Buffer.allocUnsafeSlow, also on Deno): zero-filling it first costs a pass
// over memory that the caller is about to write anyway, 1.1-1.7 times the
// time of allocating and copying 64 KiB-1 MiB. Every caller writes every
// byte before the buffer is seen.

const SLAB_SIZE = 64 * 1024;
export const POOLED = 4096;

type Unfilled = { allocUnsafeSlow(size: number): Uint8Array };
const unfilled = (globalThis as { Buffer?: Unfilled }).Buffer;

function allocateLarge(size: number): Uint8Array {
  if (unfilled === undefined) return new Uint8Array(size);
  // A plain Uint8Array over the Buffer's own ArrayBuffer, so callers never
  // see Buffer's different slice() or toString().
  return new Uint8Array(unfilled.allocUnsafeSlow(size).buffer, 0, size);
}

let slab = new Uint8Array(0);
let used = 0;

/**
 * A new buffer of `size` bytes, possibly sharing an ArrayBuffer. Its contents
 * are unspecified: the caller writes every byte.
 */
export function allocate(size: number): Uint8Array {
  if (size > POOLED) return allocateLarge(size);
  makeRoom(size);
  const out = slab.subarray(used, used + size);
  keep(size);
  return out;
}

// A new slab if the current one has less than `size` bytes left.
function makeRoom(size: number): void {
  if (used + size > slab.length) {
    slab = new Uint8Array(SLAB_SIZE);
    used = 0;
  }
}

// Marks the next `size` bytes of the slab as handed out. Slices stay 8-byte
// aligned, which the masking loop prefers.
function keep(size: number): void {
  used = (used + size + 7) & ~7;
}

/**
 * Room for up to `max` (at most 4096) bytes in the current slab, for a
 * writer that learns only afterwards how many it wrote; `commit` keeps them.
 */
export function reserve(max: number): Uint8Array {
  makeRoom(max);
  return slab.subarray(used, used + max);
}

/** Keeps the first `size` bytes of the last `reserve`d `room`, and returns them. */
export function commit(room: Uint8Array, size: number): Uint8Array {
  keep(size);
  return room.subarray(0, size);
}

/**
 * A new buffer of `size` bytes with an ArrayBuffer of its own, for data that
 * is handed to the application. Its contents are unspecified.
 */
export function allocateOwn(size: number): Uint8Array {
  return size > POOLED ? allocateLarge(size) : new Uint8Array(size);
}

/** One new buffer, with an ArrayBuffer of its own, holding `parts`. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = allocateOwn(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
