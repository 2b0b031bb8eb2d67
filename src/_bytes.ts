// Small output buffers are carved from shared 64 KiB slabs, as Node does
// for Buffers: allocating a small Uint8Array costs 200–700 ns on Deno and
// above 64 bytes on Node, a slab slice about 20 ns. A slab is never reused,
// only dropped once full; its slices live as long as their readers keep them.

const SLAB_SIZE = 64 * 1024;
const POOLED = 4096;

let slab = new Uint8Array(0);
let used = 0;

/** A new zero-filled buffer of `size` bytes, possibly sharing an ArrayBuffer. */
export function allocate(size: number): Uint8Array {
  if (size > POOLED) return new Uint8Array(size);
  if (used + size > slab.length) {
    slab = new Uint8Array(SLAB_SIZE);
    used = 0;
  }
  const out = slab.subarray(used, used + size);
  // Keep slices 8-byte aligned, which the masking loop prefers.
  used = (used + size + 7) & ~7;
  return out;
}

/** One new buffer holding `parts`, in order. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const part of parts) length += part.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}
