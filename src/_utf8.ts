// UTF-8 decoding and validation for text messages (RFC 6455 §8.1).

import { allocate, commit, POOLED, reserve } from "./_bytes.ts";
import { WebSocketError } from "./errors.ts";

// On Deno, TextDecoder costs ~270 ns a call and ~0.35 ns a byte: 1.5 µs for
// 4 KiB, 24 µs for 64 KiB, three times Node's and Bun's. ASCII text, which
// is valid UTF-8 as it is, is decoded faster there: up to 16 bytes in
// JavaScript (30-60 ns), above that by node:buffer's isAscii and
// latin1Slice (about 80 ns up to 64 bytes, where the loop takes 190 ns;
// 0.32 µs for 4 KiB, 7 µs for 64 KiB). On Node and Bun neither shortcut
// gains.
const DENO = "Deno" in globalThis;
const SMALL = 16;

// node:buffer, taken from the runtime rather than imported: the codec
// imports no node: module. Where it is missing (Node before 20.16), text is
// only ever validated by decoding it.
interface NodeBuffer {
  isAscii(bytes: Uint8Array): boolean;
  isUtf8(bytes: Uint8Array): boolean;
  Buffer: { prototype: { latin1Slice(start: number, end: number): string } };
}
const nodeBuffer = (globalThis as {
  process?: { getBuiltinModule?(id: string): unknown };
}).process?.getBuiltinModule?.("node:buffer") as NodeBuffer | undefined;
const isAscii = DENO ? nodeBuffer?.isAscii : undefined;
const latin1Slice = nodeBuffer?.Buffer.prototype.latin1Slice;
const isUtf8 = nodeBuffer?.isUtf8;

// Text is validated by decoding it: the WHATWG decoder fails on the first
// byte that cannot begin a valid sequence, which is as early as possible.
// ignoreBOM keeps a leading U+FEFF, which is part of the message.
const UTF8 = ["utf-8", { fatal: true, ignoreBOM: true }] as const;

/**
 * A decoder for text that comes in pieces (`decode(piece, { stream: true
 * })`). Each costs native memory (about 1.6 KiB on Node), so one is made
 * only for a message that is fragmented.
 */
export function utf8Decoder(): TextDecoder {
  return new TextDecoder(...UTF8);
}

// Whole texts share one decoder: a decode without `stream` starts afresh.
const whole = utf8Decoder();

/**
 * Decodes a whole text's bytes, throwing on invalid UTF-8, and taking a
 * shortcut for ASCII text on Deno.
 */
export function decodeUtf8(bytes: Uint8Array): string {
  if (DENO) {
    const length = bytes.length;
    if (length <= SMALL) {
      let ascii = 0;
      for (let i = 0; i < length; i++) ascii |= bytes[i];
      if (ascii < 0x80) {
        return String.fromCharCode.apply(null, bytes as unknown as number[]);
      }
    } else if (isAscii !== undefined && isAscii(bytes)) {
      return latin1Slice!.call(bytes, 0, length);
    }
  }
  return whole.decode(bytes);
}

/** The error for a text message that is not valid UTF-8 (1007). */
export function invalidUtf8(cause?: unknown): WebSocketError {
  return new WebSocketError(
    "Cannot decode message: a text message is not valid UTF-8",
    { code: "invalid_utf8", cause },
  );
}

/**
 * Whether `bytes` is valid UTF-8, without making a string: node:buffer's
 * isUtf8 checks 4 KiB in 50-120 ns, where decoding takes 0.5-2 µs.
 */
export function isValidUtf8(bytes: Uint8Array): boolean {
  if (isUtf8 !== undefined) return isUtf8(bytes);
  try {
    whole.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

/**
 * Checks text that arrives in pieces (the fragments of a message, or what
 * zlib inflates) without decoding it, and fails at the first piece that
 * shows it is not UTF-8, as a fatal streaming TextDecoder does (§8.1 asks
 * for the failure as soon as the bytes show it). Each piece is checked by
 * isValidUtf8 up to the code point it leaves unfinished; that one is
 * checked byte by byte, by the ranges of RFC 3629 §4.
 */
export class Utf8Validator {
  // The unfinished code point: its first byte, and how many bytes it
  // still needs (0: none is open).
  #lead = 0;
  #needed = 0;
  #second = false;

  /** Takes the next piece; false once the text cannot be UTF-8. */
  push(bytes: Uint8Array): boolean {
    const length = bytes.length;
    let start = 0;
    while (this.#needed > 0) {
      if (start === length) return true;
      if (!this.#extend(bytes[start++])) return false;
    }
    // Where the last code point starts, if the piece cuts it short.
    let end = length;
    for (let i = length - 1; i >= start && i >= length - 3; i--) {
      const byte = bytes[i];
      if (byte < 0x80) break;
      if (byte >= 0xc0) {
        if (following(byte) >= length - i) end = i;
        break;
      }
    }
    if (
      end > start &&
      !isValidUtf8(end - start === length ? bytes : bytes.subarray(start, end))
    ) {
      return false;
    }
    for (let i = end; i < length; i++) {
      if (!this.#extend(bytes[i])) return false;
    }
    return true;
  }

  /** Whether the text ended on a whole code point. */
  end(): boolean {
    return this.#needed === 0;
  }

  // One byte of a code point cut short: a first byte, or one that follows.
  #extend(byte: number): boolean {
    if (this.#needed === 0) {
      if (byte < 0xc2 || byte > 0xf4) return false;
      this.#lead = byte;
      this.#needed = following(byte);
      this.#second = true;
      return true;
    }
    let low = 0x80;
    let high = 0xbf;
    if (this.#second) {
      // No overlong forms, surrogates or code points above U+10FFFF.
      this.#second = false;
      const lead = this.#lead;
      if (lead === 0xe0) low = 0xa0;
      else if (lead === 0xed) high = 0x9f;
      else if (lead === 0xf0) low = 0x90;
      else if (lead === 0xf4) high = 0x8f;
    }
    if (byte < low || byte > high) return false;
    this.#needed--;
    return true;
  }
}

// How many bytes follow a sequence's first byte (0xc0 and above).
function following(lead: number): number {
  return lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : 1;
}

const encoder = new TextEncoder();

// TextEncoder.encode costs ~700-800 ns a call on Node and Deno whatever the
// size; encodeInto a slab slice ~110-150 ns up to a few KiB, and a
// JavaScript loop ~60 ns for a few ASCII characters. On Bun, encode itself
// is fastest (30-140 ns).
const ENCODE_ALWAYS = "Bun" in globalThis;
const TINY_TEXT = 16;
// A UTF-16 code unit takes at most 3 bytes of UTF-8.
const SHORT_TEXT = Math.floor(POOLED / 3);

/** Encodes `text` as UTF-8, taking shortcuts for short text. */
export function encodeUtf8(text: string): Uint8Array {
  const length = text.length;
  if (ENCODE_ALWAYS || length > SHORT_TEXT) return encoder.encode(text);
  if (length <= TINY_TEXT) {
    const out = allocate(length);
    let i = 0;
    for (; i < length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 0x80) break;
      out[i] = code;
    }
    if (i === length) return out;
  }
  const room = reserve(length * 3);
  return commit(room, encoder.encodeInto(text, room).written);
}
