/**
 * The frame (RFC 6455 §5.2): the unit both frame streams speak.
 *
 * @module
 */

import type { Opcode } from "./opcode.ts";

/**
 * One WebSocket frame. The masking key and the payload length are the
 * codec's business: a decoded frame is already unmasked, and an encoder
 * masks and measures on its own.
 */
export interface Frame {
  /** Whether this is the final fragment of a message. */
  fin: boolean;
  /** Reserved bit 1; permessage-deflate uses it to mark compression. */
  rsv1: boolean;
  /** Reserved bit 2; no registered extension uses it. */
  rsv2: boolean;
  /** Reserved bit 3; no registered extension uses it. */
  rsv3: boolean;
  /** What the payload is. */
  opcode: Opcode;
  /** The application data, unmasked. */
  payload: Uint8Array;
}

/**
 * Which end of the connection this is. It decides masking (§5.1): a client
 * masks every frame it sends and a server none, and each rejects frames
 * that break the rule.
 */
export type Role = "client" | "server";

/**
 * Control frames carry at most this many payload bytes (§5.5).
 *
 * @example A longer ping is refused before it is sent
 * ```ts
 * import { MAX_CONTROL_PAYLOAD } from "./frame.ts";
 * import { encodeFrame } from "./frame_encoder.ts";
 * import { Opcode } from "./opcode.ts";
 * import assert from "node:assert/strict";
 *
 * const ping = (size: number) => ({
 *   fin: true, rsv1: false, rsv2: false, rsv3: false,
 *   opcode: Opcode.Ping, payload: new Uint8Array(size),
 * });
 * assert.equal(encodeFrame(ping(MAX_CONTROL_PAYLOAD), { role: "server" }).length, 127);
 * assert.throws(() => encodeFrame(ping(MAX_CONTROL_PAYLOAD + 1), { role: "server" }), RangeError);
 * ```
 */
export const MAX_CONTROL_PAYLOAD = 125;

/**
 * The default limit on a single frame's payload: 16 MiB.
 *
 * @example Raising it for one decoder
 * ```ts
 * import { DEFAULT_MAX_FRAME_SIZE } from "./frame.ts";
 * import { FrameDecoderStream } from "./frame_decoder_stream.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_MAX_FRAME_SIZE, 16 * 1024 * 1024);
 * const decoder = new FrameDecoderStream({
 *   role: "server",
 *   maxFrameSize: 4 * DEFAULT_MAX_FRAME_SIZE,
 * });
 * assert.ok(decoder.readable instanceof ReadableStream);
 * ```
 */
export const DEFAULT_MAX_FRAME_SIZE: number = 16 * 1024 * 1024;
