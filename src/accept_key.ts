/**
 * The `Sec-WebSocket-Accept` key (RFC 6455 §4.2.2 step 5.4), and the
 * protocol version both sides send.
 *
 * @module
 */

// RFC 6455 §1.3 and §4.2.2: the GUID appended to the key.
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The only version of the protocol there is (RFC 6455 §4.1, §11.6). */
export const VERSION = "13";

const encoder = new TextEncoder();

export function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode.apply(null, bytes as unknown as number[]));
}

/**
 * The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`:
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), RFC 6455
 * §4.2.2 step 5.4, computed by `crypto.subtle`. {@linkcode acceptKeySync}
 * gives the same without awaiting.
 *
 * @example The RFC 6455 §1.3 example
 * ```ts
 * import { acceptKey } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
 * ```
 */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    encoder.encode(key + GUID),
  );
  return base64(new Uint8Array(digest));
}

/**
 * The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`, as
 * {@linkcode acceptKey} gives it, but synchronously: SHA-1 in JavaScript,
 * 1–2 µs a key, where awaiting `crypto.subtle.digest` takes 2 µs on Bun
 * and 10–40 µs on Node and Deno. The server and client checks use it.
 *
 * @example The RFC 6455 §1.3 example
 * ```ts
 * import { acceptKeySync } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(acceptKeySync("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
 * ```
 */
export function acceptKeySync(key: string): string {
  return base64(sha1(encoder.encode(key + GUID)));
}

// The message schedule and the digest, reused by every key (sha1 runs to its
// end in one call): a server answers many handshakes.
const schedule = new Int32Array(80);
const digest = new Uint8Array(20);
const digestView = new DataView(digest.buffer);

// SHA-1 (FIPS 180-4 §6.1). RFC 6455 §10.8: the handshake "doesn't depend
// on any security properties of SHA-1". The digest is valid until the next
// call.
function sha1(bytes: Uint8Array): Uint8Array {
  const length = bytes.length;
  // The message, a 1 bit, zeros, and the 64-bit bit length, in 512-bit blocks.
  const words = new Int32Array((((length + 8) >>> 6) + 1) * 16);
  for (let i = 0; i < length; i++) {
    words[i >>> 2] |= bytes[i] << (24 - (i & 3) * 8);
  }
  words[length >>> 2] |= 0x80 << (24 - (length & 3) * 8);
  words[words.length - 2] = Math.floor(length / 0x20000000);
  words[words.length - 1] = length * 8;
  let h0 = 0x67452301;
  let h1 = 0xefcdab89 | 0;
  let h2 = 0x98badcfe | 0;
  let h3 = 0x10325476;
  let h4 = 0xc3d2e1f0 | 0;
  const w = schedule;
  for (let block = 0; block < words.length; block += 16) {
    for (let t = 0; t < 16; t++) w[t] = words[block + t];
    for (let t = 16; t < 80; t++) {
      const x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16];
      w[t] = (x << 1) | (x >>> 31);
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    for (let t = 0; t < 80; t++) {
      let f: number;
      if (t < 20) f = ((b & c) | (~b & d)) + 0x5a827999;
      else if (t < 40) f = (b ^ c ^ d) + 0x6ed9eba1;
      else if (t < 60) f = ((b & c) | (b & d) | (c & d)) + 0x8f1bbcdc;
      else f = (b ^ c ^ d) + 0xca62c1d6;
      const next = (((a << 5) | (a >>> 27)) + f + e + w[t]) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = next;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  digestView.setInt32(0, h0);
  digestView.setInt32(4, h1);
  digestView.setInt32(8, h2);
  digestView.setInt32(12, h3);
  digestView.setInt32(16, h4);
  return digest;
}
