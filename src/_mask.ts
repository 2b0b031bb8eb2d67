// Masking (RFC 6455 §5.3): byte i of the payload is XORed with byte i % 4 of
// the masking key. This is the hottest loop of the codec, so it works a
// 32-bit word at a time on the aligned middle of the buffer.
//
// A key is a 32-bit number in network order: its first byte is the top byte.

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

// Below this many bytes, making a Uint32Array view costs more than it saves.
const WORD_THRESHOLD = 64;

/** Reads a masking key from four bytes in network order. */
export function readMaskKey(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) |
    bytes[at + 3]) >>> 0;
}

/**
 * XORs `data` in place with `key`, as if `data` started at byte `phase` of
 * the masked payload. Applying it twice restores the input.
 */
export function mask(data: Uint8Array, key: number, phase = 0): void {
  const shift = (phase & 3) << 3;
  // `k`'s top byte is always the key byte for data[i].
  let k = shift === 0 ? key | 0 : (key << shift) | (key >>> (32 - shift));
  const length = data.length;
  let i = 0;
  if (length >= WORD_THRESHOLD) {
    const head = (4 - (data.byteOffset & 3)) & 3;
    for (; i < head; i++) {
      data[i] ^= k >>> 24;
      k = (k << 8) | (k >>> 24);
    }
    const word = LITTLE_ENDIAN
      ? ((k >>> 24) | ((k >>> 8) & 0xff00) | ((k << 8) & 0xff0000) | (k << 24))
      : k;
    const words = (length - i) >>> 2;
    const view = new Uint32Array(data.buffer, data.byteOffset + i, words);
    for (let w = 0; w < words; w++) view[w] ^= word;
    i += words << 2;
  }
  for (; i < length; i++) {
    data[i] ^= k >>> 24;
    k = (k << 8) | (k >>> 24);
  }
}
