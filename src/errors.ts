/**
 * The error raised when the peer breaks the protocol.
 *
 * @module
 */

/**
 * Stable identifiers for each way a peer can break the protocol. Match on
 * these, not on the message text.
 */
export type WebSocketErrorCode =
  | "reserved_bits"
  | "reserved_opcode"
  | "fragmented_control_frame"
  | "control_frame_too_long"
  | "unmasked_frame"
  | "masked_frame"
  | "invalid_length"
  | "frame_too_big"
  | "unexpected_continuation"
  | "expected_continuation"
  | "invalid_utf8"
  | "message_too_big"
  | "invalid_compressed_data"
  | "invalid_close_frame"
  | "unexpected_end"
  | "connection_lost"
  | "connect_failed"
  | "tls_failed"
  | "handshake_timeout"
  | "close_timeout"
  | "heartbeat_timeout"
  | "send_queue_full";

/** Options for {@linkcode WebSocketError}. */
export interface WebSocketErrorOptions {
  /** The stable identifier of the violation. */
  code: WebSocketErrorCode;
  /** The close code RFC 6455 names for it (1006 if nothing can be sent). */
  closeCode: number;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * What the peer did wrong, and the close code to answer it with.
 *
 * Errors the caller makes (a bad argument, a write after close) are
 * `TypeError`s and `RangeError`s instead, so the two never mix.
 *
 * @example Reading the close code of a protocol violation
 * ```ts
 * import { WebSocketError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new WebSocketError("Cannot decode frame: opcode 0x3 is reserved", {
 *   code: "reserved_opcode",
 *   closeCode: 1002,
 * });
 * assert.equal(error.closeCode, 1002);
 * assert.equal(error.name, "WebSocketError");
 * ```
 */
export class WebSocketError extends Error {
  /** The stable identifier of the violation. */
  readonly code: WebSocketErrorCode;
  /** The close code to send to the peer (1006: none can be sent). */
  readonly closeCode: number;

  /** Creates an error for a protocol violation. */
  constructor(message: string, options: WebSocketErrorOptions) {
    super(message, { cause: options.cause });
    this.name = "WebSocketError";
    this.code = options.code;
    this.closeCode = options.closeCode;
  }
}
