/**
 * The error raised when the peer breaks the protocol.
 *
 * @module
 */

import { CloseCode } from "./close_code.ts";

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

/**
 * The close code each error implies (RFC 6455 §7.4.1, §7.1.5): what the
 * connection sends in its Close frame, or 1006 (never sent) where nothing
 * can be: the transport is gone, or was never opened. The one place where
 * an error's code becomes a close code; a new code without one does not
 * compile.
 */
export const ERROR_CLOSE_CODES = {
  reserved_bits: CloseCode.ProtocolError,
  reserved_opcode: CloseCode.ProtocolError,
  fragmented_control_frame: CloseCode.ProtocolError,
  control_frame_too_long: CloseCode.ProtocolError,
  unmasked_frame: CloseCode.ProtocolError,
  masked_frame: CloseCode.ProtocolError,
  invalid_length: CloseCode.ProtocolError,
  frame_too_big: CloseCode.MessageTooBig,
  unexpected_continuation: CloseCode.ProtocolError,
  expected_continuation: CloseCode.ProtocolError,
  invalid_utf8: CloseCode.InvalidFramePayloadData,
  message_too_big: CloseCode.MessageTooBig,
  invalid_compressed_data: CloseCode.InvalidFramePayloadData,
  invalid_close_frame: CloseCode.ProtocolError,
  unexpected_end: CloseCode.AbnormalClosure,
  connection_lost: CloseCode.AbnormalClosure,
  connect_failed: CloseCode.AbnormalClosure,
  tls_failed: CloseCode.AbnormalClosure,
  handshake_timeout: CloseCode.AbnormalClosure,
  close_timeout: CloseCode.AbnormalClosure,
  heartbeat_timeout: CloseCode.AbnormalClosure,
  send_queue_full: CloseCode.AbnormalClosure,
} as const satisfies Record<WebSocketErrorCode, CloseCode>;

/** Options for {@linkcode WebSocketError}. */
export interface WebSocketErrorOptions {
  /** The stable identifier of the violation; it sets the close code. */
  code: WebSocketErrorCode;
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
    this.closeCode = ERROR_CLOSE_CODES[options.code];
  }
}
