// Masking (RFC 6455 §5.3): byte i of the payload is XORed with byte i % 4 of
// the masking key. This is the hottest loop of the codec, so it works on
// the aligned middle of the buffer a word at a time: 64-bit words on V8
// (Node, Deno), where BigUint64Array XOR runs at ~19 GB/s against ~7 GB/s
// for 32-bit words; 32-bit words, unrolled, on JavaScriptCore (Bun), where
// BigInt arithmetic is ~50 times slower.
//
// A key is a 32-bit number in network order: its first byte is the top byte.

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
const WIDE = !("Bun" in globalThis) && typeof BigUint64Array === "function";

// TypedArray.prototype.set costs 20-40 ns a call whatever the size (Node,
// Deno, Bun): below this many bytes, maskInto copies and masks in one loop.
const SHORT_COPY = 32;

// Below this many bytes, a word view costs more than it saves.
const WORD_THRESHOLD = 64;

// The word view of the last buffer masked, reused while the same buffer
// comes back (the frames of one chunk, the slices of one slab): making a
// view costs as much as masking a few hundred bytes. Only buffers up to
// 1 MiB are kept, so a large one is not held alive.
const CACHED_LIMIT = 1024 * 1024;
let cachedBuffer: ArrayBufferLike | null = null;
let cachedWide: BigUint64Array | null = null;
let cachedNarrow: Int32Array | null = null;

// The key repeated to 64 bits, without BigInt arithmetic (three BigInt
// allocations a call).
const pair = new Int32Array(2);
const pairWide = WIDE ? new BigUint64Array(pair.buffer) : null;

/** Reads a masking key from four bytes in network order. */
export function readMaskKey(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) |
    bytes[at + 3]) >>> 0;
}

/**
 * Copies `source` into `target` at `at`, masked with `key` from its first
 * byte on. Short payloads take one pass: copying first would cost a call
 * to TypedArray.prototype.set, more than masking them.
 */
export function maskInto(
  source: Uint8Array,
  target: Uint8Array,
  at: number,
  key: number,
): void {
  const length = source.length;
  if (length >= SHORT_COPY) {
    target.set(source, at);
    mask(target, key, 0, at, at + length);
  } else {
    xorBytes(source, 0, target, at, length, key);
  }
}

/**
 * XORs `data[start..end)` in place with `key`, as if `data[start]` were byte
 * `phase` of the masked payload. Applying it twice restores the input.
 */
export function mask(
  data: Uint8Array,
  key: number,
  phase = 0,
  start = 0,
  end: number = data.length,
): void {
  const shift = (phase & 3) << 3;
  // `k`'s top byte is always the key byte for data[i].
  let k = shift === 0 ? key | 0 : (key << shift) | (key >>> (32 - shift));
  let i = start;
  if (end - i >= WORD_THRESHOLD) {
    const align = WIDE ? 7 : 3;
    const head = ((align + 1) - ((data.byteOffset + i) & align)) & align;
    for (const stop = i + head; i < stop; i++) {
      data[i] ^= k >>> 24;
      k = (k << 8) | (k >>> 24);
    }
    const word = LITTLE_ENDIAN
      ? ((k >>> 24) | ((k >>> 8) & 0xff00) | ((k << 8) & 0xff0000) | (k << 24))
      : k;
    const buffer = data.buffer;
    const at = data.byteOffset + i;
    if (WIDE) {
      const words = (end - i) >>> 3;
      pair[0] = pair[1] = word;
      const key64 = pairWide![0];
      let view: BigUint64Array;
      let w = 0;
      if (
        buffer === cachedBuffer && cachedWide !== null &&
        (at >>> 3) + words <= cachedWide.length
      ) {
        view = cachedWide;
        w = at >>> 3;
      } else if (buffer.byteLength <= CACHED_LIMIT) {
        view = cachedWide = new BigUint64Array(
          buffer,
          0,
          buffer.byteLength >>> 3,
        );
        cachedBuffer = buffer;
        cachedNarrow = null;
        w = at >>> 3;
      } else {
        view = new BigUint64Array(buffer, at, words);
      }
      for (const stop = w + words; w < stop; w++) view[w] ^= key64;
      i += words << 3;
    } else {
      const words = (end - i) >>> 2;
      let view: Int32Array;
      let w = 0;
      if (
        buffer === cachedBuffer && cachedNarrow !== null &&
        (at >>> 2) + words <= cachedNarrow.length
      ) {
        view = cachedNarrow;
        w = at >>> 2;
      } else if (buffer.byteLength <= CACHED_LIMIT) {
        view = cachedNarrow = new Int32Array(
          buffer,
          0,
          buffer.byteLength >>> 2,
        );
        cachedBuffer = buffer;
        cachedWide = null;
        w = at >>> 2;
      } else {
        view = new Int32Array(buffer, at, words);
      }
      const stop = w + words;
      for (const unrolled = stop - 3; w < unrolled; w += 4) {
        view[w] ^= word;
        view[w + 1] ^= word;
        view[w + 2] ^= word;
        view[w + 3] ^= word;
      }
      for (; w < stop; w++) view[w] ^= word;
      i += words << 2;
    }
  }
  // The rest (or all of a short payload).
  xorBytes(data, i, data, i, end - i, k);
}

// target[to + j] = source[from + j] XOR key byte j % 4, for j < count, four
// bytes a turn; `k`'s top byte is the key byte for source[from].
function xorBytes(
  source: Uint8Array,
  from: number,
  target: Uint8Array,
  to: number,
  count: number,
  k: number,
): void {
  const b0 = k >>> 24;
  const b1 = (k >>> 16) & 0xff;
  const b2 = (k >>> 8) & 0xff;
  const b3 = k & 0xff;
  let j = 0;
  for (const stop = count - 3; j < stop; j += 4) {
    target[to + j] = source[from + j] ^ b0;
    target[to + j + 1] = source[from + j + 1] ^ b1;
    target[to + j + 2] = source[from + j + 2] ^ b2;
    target[to + j + 3] = source[from + j + 3] ^ b3;
  }
  if (j < count) target[to + j] = source[from + j++] ^ b0;
  if (j < count) target[to + j] = source[from + j++] ^ b1;
  if (j < count) target[to + j] = source[from + j] ^ b2;
}
