// The messages the interop tests exchange, generated the same way on every
// side: by the tests (TypeScript, which imports this file), by the page
// (Chromium, which loads it as a module) and by peer.py (Python, which has
// a line-by-line copy). Each side checks every byte it receives against
// its own copy.
//
// Binary: a 65521-byte pseudo-random block (a prime length, so it never
// lines up with a frame or fragment size), XORed with the block's index,
// so no two blocks of a 16 MiB message are the same.
//
// Text: pieces "<k>" + 256 pseudo-random code points drawn from all four
// UTF-8 lengths, then the next piece's characters while they fit, then
// ASCII dots, to exactly `size` bytes of UTF-8.

/** The message sizes exchanged both ways: 0 B, 125 B, 64 KiB, 16 MiB. */
export const SIZES = [0, 125, 64 * 1024, 16 * 1024 * 1024];

const BLOCK = 65521;

/**
 * One step of the generator (the C library's LCG, modulo 2^32).
 *
 * @param {number} x
 * @returns {number}
 */
function next(x) {
  return (Math.imul(x, 1103515245) + 12345) >>> 0;
}

/**
 * `size` pseudo-random bytes from `seed`.
 *
 * @param {number} seed
 * @param {number} size
 * @returns {Uint8Array}
 */
export function binaryPayload(seed, size) {
  const block = new Uint8Array(BLOCK);
  let x = seed >>> 0;
  for (let i = 0; i < BLOCK; i++) {
    x = next(x);
    block[i] = x >>> 24;
  }
  const out = new Uint8Array(size);
  for (let at = 0, k = 0; at < size; at += BLOCK, k++) {
    const n = Math.min(BLOCK, size - at);
    const xor = k & 0xff;
    for (let j = 0; j < n; j++) out[at + j] = block[j] ^ xor;
  }
  return out;
}

/**
 * 256 code points from `seed`: ASCII, 2-, 3- and 4-byte UTF-8 alike.
 *
 * @param {number} seed
 * @returns {string}
 */
function textBase(seed) {
  let x = seed >>> 0;
  let s = "";
  for (let i = 0; i < 256; i++) {
    x = next(x);
    const r = x >>> 8;
    const v = r >>> 2;
    let cp;
    switch (r & 3) {
      case 0:
        cp = 0x20 + v % 95;
        break;
      case 1:
        cp = 0x80 + v % 0x780;
        break;
      case 2:
        cp = 0x800 + v % 0xd000; // up to U+D7FF: no surrogates
        break;
      default:
        cp = 0x10000 + v % 0x100000;
    }
    s += String.fromCodePoint(cp);
  }
  return s;
}

const encoder = new TextEncoder();

/**
 * A string of exactly `size` bytes of UTF-8, from `seed`.
 *
 * @param {number} seed
 * @param {number} size
 * @returns {string}
 */
export function textPayload(seed, size) {
  const base = textBase(seed);
  const baseLength = encoder.encode(base).length;
  /** @type {string[]} */
  const parts = [];
  let total = 0;
  let k = 0;
  for (;; k++) {
    const marker = `<${k}>`;
    const n = marker.length + baseLength;
    if (total + n > size) break;
    parts.push(marker, base);
    total += n;
  }
  for (const ch of `<${k}>${base}`) {
    const n = encoder.encode(ch).length;
    if (total + n > size) break;
    parts.push(ch);
    total += n;
  }
  parts.push(".".repeat(size - total));
  return parts.join("");
}

/**
 * The messages each side sends, in order: binary then text of every size.
 *
 * @param {number} seed
 * @returns {{ type: "binary" | "text", size: number, data: Uint8Array | string }[]}
 */
export function messageSet(seed) {
  /** @type {{ type: "binary" | "text", size: number, data: Uint8Array | string }[]} */
  const out = [];
  for (const size of SIZES) {
    out.push({ type: "binary", size, data: binaryPayload(seed, size) });
    out.push({ type: "text", size, data: textPayload(seed, size) });
  }
  return out;
}

/**
 * The extras: messages that a peer able to fragment sends after its set.
 * "split" is text whose 4-byte character is cut between two fragments,
 * with a ping between them that must be answered before the second
 * fragment goes out; "fragmented text" and "fragmented binary" come in
 * several fragments (peer.py sends an empty one too; our encoder skips
 * empty chunks).
 */
export const EXTRA_SPLIT = "split \u{1F389} char";
/** Where "split" is cut, in bytes: inside U+1F389 (its bytes are 6 to 9). */
export const EXTRA_SPLIT_AT = 8;

/**
 * The extras, whole, as the receiver expects them.
 *
 * @returns {{ name: string, data: Uint8Array | string }[]}
 */
export function extras() {
  return [
    { name: "split", data: EXTRA_SPLIT },
    { name: "fragmented text", data: textPayload(3, 100000) },
    { name: "fragmented binary", data: binaryPayload(4, 200000) },
  ];
}

/** Where the fragmented text is cut, in code points (the cuts repeat: an empty fragment). */
export const TEXT_CUTS = [1, 1, 5000, 20000];
/** Where the fragmented binary is cut, in bytes. */
export const BINARY_CUTS = [1, 1, 65536];

/** The last message the answering side sends. */
export const END = "end";
