/**
 * Frames to bytes (RFC 6455 §5.2): headers with minimal lengths, and masking
 * for clients.
 *
 * @module
 */

import { allocate } from "./_bytes.ts";
import { maskInto, readMaskKey } from "./_mask.ts";
import { checkRole } from "./_options.ts";
import { type Frame, MAX_CONTROL_PAYLOAD, type Role } from "./frame.ts";
import { isControlOpcode, isKnownOpcode } from "./opcode.ts";

/** Options for {@linkcode FrameEncoder} and {@linkcode encodeFrame}. */
export interface FrameEncoderOptions {
  /** Which end this is: a client masks every frame (§5.1), a server none. */
  role: Role;
  /**
   * Where a client's masking keys come from: each call returns four fresh
   * bytes. Inject one to make output deterministic in tests.
   *
   * @default {a pool filled by crypto.getRandomValues}
   */
  maskKey?: () => Uint8Array;
}

// Unmasked payloads larger than this go out as a separate chunk after the
// header instead of being copied behind it.
const COPY_LIMIT = 512;

// §5.3: keys "MUST be derived from a strong source of entropy"; one
// getRandomValues call serves many frames.
const KEY_POOL_SIZE = 4096;
let keyPool: Uint8Array | null = null;
let keyPoolAt = KEY_POOL_SIZE;

function randomMaskKey(): number {
  if (keyPoolAt === KEY_POOL_SIZE) {
    keyPool ??= new Uint8Array(KEY_POOL_SIZE);
    crypto.getRandomValues(keyPool);
    keyPoolAt = 0;
  }
  const key = readMaskKey(keyPool!, keyPoolAt);
  keyPoolAt += 4;
  return key;
}

/**
 * Turns frames into bytes, synchronously. Each frame goes to `emit` as one
 * chunk, or, when it is large and unmasked, as a header chunk followed by
 * the payload itself, uncopied. The frame's payload is never modified.
 *
 * A frame the protocol forbids (a reserved opcode, a fragmented or
 * oversized control frame) is the caller's mistake: a `RangeError`.
 *
 * @example Encoding the RFC 6455 §5.7 unmasked "Hello"
 * ```ts
 * import { FrameEncoder } from "./frame_encoder.ts";
 * import { Opcode } from "./opcode.ts";
 * import assert from "node:assert/strict";
 *
 * const encoder = new FrameEncoder({ role: "server" });
 * const chunks: Uint8Array[] = [];
 * encoder.encode({
 *   fin: true, rsv1: false, rsv2: false, rsv3: false,
 *   opcode: Opcode.Text,
 *   payload: new TextEncoder().encode("Hello"),
 * }, (chunk) => chunks.push(chunk));
 *
 * assert.deepEqual(chunks, [
 *   new Uint8Array([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
 * ]);
 * ```
 */
export class FrameEncoder {
  readonly #masked: boolean;
  readonly #maskKey: () => number;

  /** Creates an encoder for one direction of one connection. */
  constructor(options: FrameEncoderOptions) {
    this.#masked = checkRole("FrameEncoder", options.role) === "client";
    const source = options.maskKey;
    this.#maskKey = source === undefined
      ? randomMaskKey
      : () => readMaskKey(checkKey(source()), 0);
  }

  /**
   * Encodes `frame`, handing its bytes to `emit` in one chunk or two.
   *
   * @throws {RangeError} if the protocol forbids the frame.
   */
  encode(frame: Frame, emit: (bytes: Uint8Array) => void): void {
    const payload = frame.payload;
    const length = payload.length;
    const opcode = frame.opcode;
    if (!isKnownOpcode(opcode)) {
      throw new RangeError(
        `Cannot encode frame: opcode 0x${
          Number(opcode).toString(16)
        } is reserved`,
      );
    }
    if (isControlOpcode(opcode)) {
      if (!frame.fin) {
        throw new RangeError(
          "Cannot encode frame: control frames cannot be fragmented",
        );
      }
      if (length > MAX_CONTROL_PAYLOAD) {
        throw new RangeError(
          `Cannot encode frame: a control frame carries at most 125 bytes, got ${length}`,
        );
      }
    }

    const masked = this.#masked;
    // §5.2: "the minimal number of bytes MUST be used to encode the length".
    const lengthSize = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
    const headerSize = 2 + lengthSize + (masked ? 4 : 0);
    const merge = masked || length <= COPY_LIMIT;
    const out = allocate(merge ? headerSize + length : headerSize);

    out[0] = (frame.fin ? 0x80 : 0) | (frame.rsv1 ? 0x40 : 0) |
      (frame.rsv2 ? 0x20 : 0) | (frame.rsv3 ? 0x10 : 0) | opcode;
    if (lengthSize === 0) {
      out[1] = length;
    } else if (lengthSize === 2) {
      out[1] = 126;
      out[2] = length >>> 8;
      out[3] = length & 0xff;
    } else {
      out[1] = 127;
      const high = Math.floor(length / 0x100000000);
      out[2] = high >>> 24;
      out[3] = (high >>> 16) & 0xff;
      out[4] = (high >>> 8) & 0xff;
      out[5] = high & 0xff;
      out[6] = length >>> 24;
      out[7] = (length >>> 16) & 0xff;
      out[8] = (length >>> 8) & 0xff;
      out[9] = length & 0xff;
    }

    if (masked) {
      out[1] |= 0x80;
      const key = this.#maskKey();
      const at = 2 + lengthSize;
      out[at] = key >>> 24;
      out[at + 1] = (key >>> 16) & 0xff;
      out[at + 2] = (key >>> 8) & 0xff;
      out[at + 3] = key & 0xff;
      maskInto(payload, out, headerSize, key);
      emit(out);
    } else if (merge) {
      out.set(payload, headerSize);
      emit(out);
    } else {
      emit(out);
      emit(payload);
    }
  }
}

function checkKey(key: Uint8Array): Uint8Array {
  if (!(key instanceof Uint8Array) || key.length !== 4) {
    throw new TypeError("Cannot mask frame: maskKey() must return 4 bytes");
  }
  return key;
}

/**
 * Encodes one frame into one new buffer. For many frames, reuse a
 * {@linkcode FrameEncoder}, which also avoids copying large payloads.
 *
 * @example A masked frame with a fixed key (RFC 6455 §5.7)
 * ```ts
 * import { encodeFrame } from "./frame_encoder.ts";
 * import { Opcode } from "./opcode.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = encodeFrame({
 *   fin: true, rsv1: false, rsv2: false, rsv3: false,
 *   opcode: Opcode.Text,
 *   payload: new TextEncoder().encode("Hello"),
 * }, { role: "client", maskKey: () => new Uint8Array([0x37, 0xfa, 0x21, 0x3d]) });
 *
 * assert.deepEqual(bytes, new Uint8Array([
 *   0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
 * ]));
 * ```
 */
export function encodeFrame(
  frame: Frame,
  options: FrameEncoderOptions,
): Uint8Array {
  const chunks: Uint8Array[] = [];
  new FrameEncoder(options).encode(frame, (chunk) => chunks.push(chunk));
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(chunks[0].length + chunks[1].length);
  out.set(chunks[0], 0);
  out.set(chunks[1], chunks[0].length);
  return out;
}
