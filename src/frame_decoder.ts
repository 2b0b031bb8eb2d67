/**
 * A sans-I/O push parser from bytes to frames (RFC 6455 §5.2–§5.5).
 *
 * @module
 */

import { allocateOwn } from "./_bytes.ts";
import { mask, readMaskKey } from "./_mask.ts";
import { checkRole, checkSize } from "./_options.ts";
import { WebSocketError, type WebSocketErrorCode } from "./errors.ts";
import {
  DEFAULT_MAX_FRAME_SIZE,
  type Frame,
  MAX_CONTROL_PAYLOAD,
  type Role,
} from "./frame.ts";
import { isControlOpcode, isKnownOpcode, Opcode } from "./opcode.ts";

/** Reserved bits a negotiated extension has given a meaning to. */
export interface ReservedBits {
  /**
   * Whether frames may have RSV1 set.
   *
   * @default {false}
   */
  rsv1?: boolean;
  /**
   * Whether frames may have RSV2 set.
   *
   * @default {false}
   */
  rsv2?: boolean;
  /**
   * Whether frames may have RSV3 set.
   *
   * @default {false}
   */
  rsv3?: boolean;
}

/** Options for {@linkcode FrameDecoder}. */
export interface FrameDecoderOptions {
  /** Which end this is: a server requires masked frames, a client unmasked. */
  role: Role;
  /**
   * The largest payload one frame may carry, in bytes. Checked on the
   * header, before anything is allocated; a larger frame fails with 1009.
   *
   * @default {16777216} (16 MiB)
   */
  maxFrameSize?: number;
  /**
   * Reserved bits that may be set, because an extension negotiated them
   * (§5.2: "If a nonzero value is received and none of the negotiated
   * extensions defines the meaning of such a nonzero value, the receiving
   * endpoint MUST _Fail the WebSocket Connection_").
   *
   * @default {{}} (none)
   */
  reservedBits?: ReservedBits;
  /**
   * Hand on what has arrived of a data frame at the end of each chunk, as a
   * frame of its own, instead of holding the frame until it is complete. A
   * frame may then come out as several: the first with its opcode, RSV1 and
   * no FIN, the rest as continuations, the last with its FIN. A message
   * means the same however it is fragmented (RFC 6455 §5.4), and memory
   * stays bounded by the chunk size whatever the frame size. Control frames
   * (125 bytes at most) and frames with RSV2 or RSV3 are never split.
   *
   * @default {false}
   */
  splitFrames?: boolean;
}

const FIN = 0x80;
const RSV1 = 0x40;
const RSV2 = 0x20;
const RSV3 = 0x10;
const MASK = 0x80;

// Frames whose header fits in one chunk are parsed straight from it; a
// header split across chunks is gathered here first (2 + 8 + 4 bytes at most).
const MAX_HEADER = 14;

/**
 * Turns bytes into frames, synchronously. Push chunks in as they arrive, in
 * any sizes; each complete frame is handed to `emit`. Nothing is consumed
 * until a frame's header is complete, and a payload that arrives inside one
 * chunk is not copied: the frame's payload is a view of that chunk, unmasked
 * in place. So the decoder owns the chunks pushed to it.
 *
 * A protocol violation throws a {@linkcode WebSocketError} carrying the
 * close code to answer with; after that, every call throws it again.
 *
 * @example Decoding the RFC 6455 §5.7 masked "Hello"
 * ```ts
 * import { FrameDecoder } from "./frame_decoder.ts";
 * import type { Frame } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const decoder = new FrameDecoder({ role: "server" });
 * const frames: Frame[] = [];
 * const bytes = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
 * decoder.push(new Uint8Array(bytes.slice(0, 4)), (f) => frames.push(f));
 * decoder.push(new Uint8Array(bytes.slice(4)), (f) => frames.push(f));
 * decoder.end();
 *
 * assert.equal(frames.length, 1);
 * assert.equal(new TextDecoder().decode(frames[0].payload), "Hello");
 * ```
 */
export class FrameDecoder {
  readonly #server: boolean;
  readonly #maxFrameSize: number;
  readonly #allowedBits: number;
  readonly #split: boolean;

  // A header split across chunks, gathered; made when one first splits.
  #header: Uint8Array | null = null;
  #headerLength = 0;

  // A payload split across chunks, in progress: being filled into
  // `#payload`, or handed on in pieces (split mode, `#payload` null).
  #inFrame = false;
  #deferred = false;
  #payload: Uint8Array | null = null;
  #length = 0;
  #filled = 0;
  #b0 = 0;
  #key = 0;
  #masked = false;

  #error: unknown = null;

  /** Creates a decoder for one direction of one connection. */
  constructor(options: FrameDecoderOptions) {
    this.#server = checkRole("FrameDecoder", options.role) === "server";
    this.#maxFrameSize = checkSize(
      "maxFrameSize",
      options.maxFrameSize ?? DEFAULT_MAX_FRAME_SIZE,
    );
    this.#split = options.splitFrames === true;
    const bits = options.reservedBits ?? {};
    this.#allowedBits = (bits.rsv1 ? RSV1 : 0) | (bits.rsv2 ? RSV2 : 0) |
      (bits.rsv3 ? RSV3 : 0);
  }

  /** Whether the decoder holds part of a frame, waiting for more bytes. */
  get pending(): boolean {
    return this.#headerLength > 0 || this.#inFrame;
  }

  /**
   * Parses `chunk`, calling `emit` for each frame it completes.
   *
   * @throws {WebSocketError} if the peer broke the protocol.
   */
  push(chunk: Uint8Array, emit: (frame: Frame) => void): void {
    if (this.#error !== null) throw this.#error;
    try {
      this.#push(chunk, emit);
    } catch (error) {
      this.#error = error;
      throw error;
    }
  }

  /**
   * Declares the end of the input.
   *
   * @throws {WebSocketError} (`unexpected_end`, 1006) if it ended mid-frame.
   */
  end(): void {
    if (this.#error !== null) throw this.#error;
    if (this.pending) {
      this.#error = new WebSocketError(
        "Cannot decode frame: the input ended in the middle of a frame",
        { code: "unexpected_end" },
      );
      throw this.#error;
    }
  }

  #push(chunk: Uint8Array, emit: (frame: Frame) => void): void {
    const end = chunk.length;
    let offset = 0;

    if (this.#inFrame) {
      offset = this.#fill(chunk, emit);
      if (this.#inFrame) return;
    }

    if (this.#headerLength > 0) {
      const header = this.#header!;
      // Take just enough bytes to complete the header, and no more.
      while (offset < end) {
        header[this.#headerLength++] = chunk[offset++];
        const size = this.#headerSize(header, this.#headerLength);
        if (this.#headerLength === size) break;
      }
      const size = this.#headerSize(header, this.#headerLength);
      if (this.#headerLength < size) return;
      this.#headerLength = 0;
      offset = this.#frame(header, 0, size, chunk, offset, emit);
      if (this.#inFrame) return;
    }

    while (offset < end) {
      const available = end - offset;
      const size = available < 2
        ? 2
        : this.#headerSize(chunk, available, offset);
      if (available < size) {
        (this.#header ??= new Uint8Array(MAX_HEADER)).set(
          chunk.subarray(offset),
          0,
        );
        this.#headerLength = available;
        return;
      }
      offset = this.#frame(chunk, offset, size, chunk, offset + size, emit);
      if (this.#inFrame) return;
    }
  }

  // The header's full size, once its first two bytes are known; validates
  // what those two bytes say as soon as they arrive.
  #headerSize(bytes: Uint8Array, available: number, at = 0): number {
    if (available < 2) return 2;
    const b0 = bytes[at];
    const b1 = bytes[at + 1];
    this.#check(b0, b1);
    const length7 = b1 & 0x7f;
    return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) +
      (b1 & MASK ? 4 : 0);
  }

  #check(b0: number, b1: number): void {
    const rsv = b0 & 0x70 & ~this.#allowedBits;
    if (rsv !== 0) {
      const bit = rsv & RSV1 ? 1 : rsv & RSV2 ? 2 : 3;
      fail(
        "reserved_bits",
        `RSV${bit} is set but no extension gave it a meaning`,
      );
    }
    const opcode = b0 & 0x0f;
    if (!isKnownOpcode(opcode)) {
      fail("reserved_opcode", `opcode 0x${opcode.toString(16)} is reserved`);
    }
    if (isControlOpcode(opcode)) {
      // §5.5: "All control frames MUST have a payload length of 125 bytes
      // or less and MUST NOT be fragmented."
      if ((b0 & FIN) === 0) {
        fail(
          "fragmented_control_frame",
          `control frame (opcode 0x${opcode.toString(16)}) is fragmented`,
        );
      }
      if ((b1 & 0x7f) > MAX_CONTROL_PAYLOAD) {
        fail(
          "control_frame_too_long",
          `control frame (opcode 0x${
            opcode.toString(16)
          }) is longer than 125 bytes`,
        );
      }
    }
    // §5.1: "The server MUST close the connection upon receiving a frame that
    // is not masked." and "A client MUST close a connection if it detects a
    // masked frame."
    const masked = (b1 & MASK) !== 0;
    if (this.#server && !masked) {
      fail("unmasked_frame", "a client sent an unmasked frame");
    }
    if (!this.#server && masked) {
      fail("masked_frame", "a server sent a masked frame");
    }
  }

  // Parses a complete header at `bytes[at .. at + size]`, then takes the
  // payload from `chunk` at `offset`. Returns the offset after what it used.
  #frame(
    bytes: Uint8Array,
    at: number,
    size: number,
    chunk: Uint8Array,
    offset: number,
    emit: (frame: Frame) => void,
  ): number {
    const b0 = bytes[at];
    const b1 = bytes[at + 1];
    let length = b1 & 0x7f;
    let keyAt = at + 2;
    if (length === 126) {
      length = (bytes[at + 2] << 8) | bytes[at + 3];
      keyAt += 2;
    } else if (length === 127) {
      const high = ((bytes[at + 2] << 24) | (bytes[at + 3] << 16) |
        (bytes[at + 4] << 8) | bytes[at + 5]) >>> 0;
      const low = ((bytes[at + 6] << 24) | (bytes[at + 7] << 16) |
        (bytes[at + 8] << 8) | bytes[at + 9]) >>> 0;
      // §5.2: "the most significant bit MUST be 0".
      if (high > 0x7fffffff) {
        fail("invalid_length", "the 64-bit payload length has its top bit set");
      }
      // Past 2^53 - 1 this is approximate, but still above any limit.
      length = high * 0x100000000 + low;
      keyAt += 8;
    }
    if (length > this.#maxFrameSize) {
      fail(
        "frame_too_big",
        `a frame of ${length} bytes exceeds the ${this.#maxFrameSize}-byte limit`,
      );
    }
    const masked = keyAt < at + size;
    const key = masked ? readMaskKey(bytes, keyAt) : 0;

    const available = chunk.length - offset;
    if (available >= length) {
      const payload = chunk.subarray(offset, offset + length);
      if (masked) mask(payload, key, 0, 0, length);
      emit(makeFrame(b0, payload));
      return offset + length;
    }
    // The payload spans chunks. In split mode, a data frame goes on in
    // pieces as its bytes arrive (RFC 6455 §5.4: fragmentation carries no
    // meaning, so an intermediary may change it); RSV2 and RSV3 belong to
    // unknown extensions, which may not allow that. Otherwise the payload is
    // allocated once, at its known size.
    const split = this.#split && !isControlOpcode(b0 & 0x0f) &&
      (b0 & (RSV2 | RSV3)) === 0;
    this.#inFrame = true;
    this.#length = length;
    this.#filled = 0;
    this.#b0 = b0;
    this.#key = key;
    this.#masked = masked;
    // A header that ends its chunk leaves the payload to the next one, which
    // may hold all of it: allocate only once that is known.
    this.#deferred = !split && available === 0;
    this.#payload = split || available === 0 ? null : allocateOwn(length);
    return this.#fill(chunk.subarray(offset), emit) + offset;
  }

  // Takes what `chunk` has of the payload in progress: copied into the
  // buffer, or in split mode handed on as a piece. Returns how much of
  // `chunk` it used.
  #fill(chunk: Uint8Array, emit: (frame: Frame) => void): number {
    if (this.#deferred) {
      if (chunk.length === 0) return 0;
      this.#deferred = false;
      const length = this.#length;
      if (chunk.length >= length) {
        const payload = chunk.subarray(0, length);
        if (this.#masked) mask(payload, this.#key, 0, 0, length);
        this.#inFrame = false;
        emit(makeFrame(this.#b0, payload));
        return length;
      }
      this.#payload = allocateOwn(length);
    }
    const phase = this.#filled;
    const need = this.#length - phase;
    const take = Math.min(chunk.length, need);
    const done = take === need;
    this.#filled += take;
    const payload = this.#payload;
    if (payload === null) {
      if (take > 0) {
        const piece = chunk.subarray(0, take);
        if (this.#masked) mask(piece, this.#key, phase, 0, take);
        const first = phase === 0;
        const b0 = this.#b0;
        emit({
          fin: done && (b0 & FIN) !== 0,
          rsv1: first && (b0 & RSV1) !== 0,
          rsv2: false,
          rsv3: false,
          opcode: first ? (b0 & 0x0f) as Opcode : Opcode.Continuation,
          payload: piece,
        });
      }
    } else {
      payload.set(chunk.subarray(0, take), phase);
      if (this.#masked) {
        mask(payload, this.#key, phase, phase, phase + take);
      }
      if (done) {
        this.#payload = null;
        emit(makeFrame(this.#b0, payload));
      }
    }
    if (done) this.#inFrame = false;
    return take;
  }
}

function makeFrame(b0: number, payload: Uint8Array): Frame {
  return {
    fin: (b0 & FIN) !== 0,
    rsv1: (b0 & RSV1) !== 0,
    rsv2: (b0 & RSV2) !== 0,
    rsv3: (b0 & RSV3) !== 0,
    opcode: (b0 & 0x0f) as Opcode,
    payload,
  };
}

function fail(
  code: WebSocketErrorCode,
  what: string,
): never {
  throw new WebSocketError(`Cannot decode frame: ${what}`, { code });
}
