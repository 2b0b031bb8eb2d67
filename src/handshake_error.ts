/**
 * What a failed opening handshake throws or reports (RFC 6455 §4).
 *
 * @module
 */

/**
 * Stable identifiers for each way an opening handshake can fail. Match on
 * these, not on the message text.
 *
 * On the server (in {@linkcode UpgradeRefused}): `method_not_allowed`
 * (405), `unsupported_version` (426; 400 over HTTP/2, which has no
 * Upgrade), `unsupported_protocol` (501, an HTTP/2 extended CONNECT for a
 * protocol other than websocket), `forbidden_origin` (403), `refused`
 * (the `accept` hook's status), `too_many_headers` and `head_too_large`
 * (431, from the `node:http` adapter), `handshake_timeout` (503, hooks that
 * took longer than the adapter's `handshakeTimeout`) and the rest 400. On the client (from
 * {@linkcode verifyResponse}): `unexpected_status`, `invalid_upgrade`,
 * `invalid_connection`, `invalid_accept`, `unexpected_protocol`,
 * `invalid_extensions` and `unexpected_extension`.
 */
export type HandshakeErrorCode =
  | "method_not_allowed"
  | "invalid_http_version"
  | "invalid_upgrade"
  | "invalid_connection"
  | "missing_host"
  | "invalid_key"
  | "invalid_version"
  | "unsupported_version"
  | "invalid_connect"
  | "unsupported_protocol"
  | "forbidden_origin"
  | "invalid_protocols"
  | "invalid_extensions"
  | "refused"
  | "too_many_headers"
  | "head_too_large"
  | "handshake_timeout"
  | "unexpected_status"
  | "invalid_response"
  | "invalid_accept"
  | "unexpected_protocol"
  | "unexpected_extension";

/** Options for {@linkcode HandshakeError}. */
export interface HandshakeErrorOptions {
  /** The stable identifier of the failure. */
  code: HandshakeErrorCode;
  /**
   * On the server, the HTTP status to refuse the request with; on the
   * client, the status of the response received.
   */
  status: number;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * What the peer got wrong in the opening handshake. The client throws it
 * from {@linkcode verifyResponse}; the server turns it into an
 * {@linkcode UpgradeRefused} and never throws it. Its message names the
 * header at fault and is safe to show to the peer.
 *
 * @example Telling a refused handshake from a broken one
 * ```ts
 * import { HandshakeError, verifyResponse } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const response = new Response("Forbidden", { status: 403 });
 * assert.throws(
 *   () => verifyResponse(response, { key: "dGhlIHNhbXBsZSBub25jZQ==" }),
 *   (error) =>
 *     error instanceof HandshakeError && error.code === "unexpected_status" &&
 *     error.status === 403,
 * );
 * ```
 */
export class HandshakeError extends Error {
  /** The stable identifier of the failure. */
  readonly code: HandshakeErrorCode;
  /** The HTTP status to refuse with (server) or that was received (client). */
  readonly status: number;

  /** Creates an error for a failed handshake. */
  constructor(message: string, options: HandshakeErrorOptions) {
    super(message, { cause: options.cause });
    this.name = "HandshakeError";
    this.code = options.code;
    this.status = options.status;
  }
}
