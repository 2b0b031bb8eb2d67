/**
 * Close codes (RFC 6455 §7.4.1, §11.7).
 *
 * @module
 */

/**
 * The close codes registered for RFC 6455. 1005, 1006 and 1015 are never
 * sent on the wire: they only report what happened locally.
 *
 * @example Naming a close code
 * ```ts
 * import { CloseCode } from "./close_code.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(CloseCode.ProtocolError, 1002);
 * ```
 */
export const CloseCode = {
  NormalClosure: 1000,
  GoingAway: 1001,
  ProtocolError: 1002,
  UnsupportedData: 1003,
  NoStatusReceived: 1005,
  AbnormalClosure: 1006,
  InvalidFramePayloadData: 1007,
  PolicyViolation: 1008,
  MessageTooBig: 1009,
  MandatoryExtension: 1010,
  InternalError: 1011,
  ServiceRestart: 1012,
  TryAgainLater: 1013,
  BadGateway: 1014,
  TlsHandshake: 1015,
} as const;

/** One of the codes in {@linkcode CloseCode}. */
export type CloseCode = typeof CloseCode[keyof typeof CloseCode];
