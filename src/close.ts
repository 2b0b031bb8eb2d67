/**
 * Close frames (RFC 6455 §5.5.1, §7.4): their body, and which codes and
 * reasons may be sent and received.
 *
 * @module
 */

import { CloseCode } from "./close_code.ts";
import { WebSocketError } from "./errors.ts";
import { decodeUtf8 } from "./_utf8.ts";

/** What a close frame says: a code and a reason, either of which may be absent. */
export interface CloseInfo {
  /** The status code; absent in an empty close frame (reported as 1005). */
  closeCode?: number;
  /** Why, in at most 123 bytes of UTF-8. */
  reason?: string;
}

const utf8 = new TextEncoder();

/**
 * The most bytes a reason can take: 125 less the 2-byte code.
 *
 * @example Reasons are measured in UTF-8 bytes, not characters
 * ```ts
 * import { encodeClose, MAX_REASON_BYTES } from "./close.ts";
 * import assert from "node:assert/strict";
 *
 * encodeClose({ closeCode: 1000, reason: "é".repeat(MAX_REASON_BYTES / 2) }); // 122 bytes
 * assert.throws(
 *   () => encodeClose({ closeCode: 1000, reason: "é".repeat(62) }), // 124 bytes
 *   RangeError,
 * );
 * ```
 */
export const MAX_REASON_BYTES = 123;

/**
 * Whether a peer may send `code` (§7.4.1, §7.4.2): 1000–1003, 1007–1014
 * and 3000–4999. 1004 is reserved; 1005, 1006 and 1015 only report what
 * happened locally and "MUST NOT be set as a status code in a Close control
 * frame"; the rest of 1000–2999 is for future revisions of the protocol.
 *
 * @example Codes a Close frame may carry
 * ```ts
 * import { isValidCloseCode } from "./close.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isValidCloseCode(1000) && isValidCloseCode(1011) && isValidCloseCode(4000));
 * assert.ok(!isValidCloseCode(1005) && !isValidCloseCode(1006) && !isValidCloseCode(2000));
 * ```
 */
export function isValidCloseCode(code: number): boolean {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
    (code >= 3000 && code <= 4999);
}

/**
 * Whether an application may close with `code`: 1000 or 3000–4999, as in
 * the WHATWG WebSocket API. The protocol's own codes are the library's to
 * send.
 *
 * @example What `close()` accepts
 * ```ts
 * import { isApplicationCloseCode } from "./close.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(isApplicationCloseCode(1000));
 * assert.ok(isApplicationCloseCode(4013));
 * // 1008 is valid on the wire, but the library sends it, not the application.
 * assert.ok(!isApplicationCloseCode(1008));
 * ```
 */
export function isApplicationCloseCode(code: number): boolean {
  return code === CloseCode.NormalClosure || (code >= 3000 && code <= 4999);
}

/**
 * The body of a close frame: the code in network order, then the reason.
 * Empty if there is no code.
 *
 * @throws {RangeError} if the code may not be sent or the reason is too long.
 *
 * @example
 * ```ts
 * import { encodeClose } from "./close.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(encodeClose({ closeCode: 1000, reason: "ok" }), new Uint8Array([0x03, 0xe8, 0x6f, 0x6b]));
 * assert.deepEqual(encodeClose({}), new Uint8Array());
 * ```
 */
export function encodeClose(info: CloseInfo): Uint8Array {
  const { closeCode, reason = "" } = info;
  if (closeCode === undefined) {
    if (reason !== "") {
      throw new RangeError("Cannot close: a reason needs a close code");
    }
    return new Uint8Array(0);
  }
  if (!Number.isInteger(closeCode) || !isValidCloseCode(closeCode)) {
    throw new RangeError(
      `Cannot close: ${closeCode} is not a close code that can be sent`,
    );
  }
  const text = utf8.encode(reason);
  if (text.length > MAX_REASON_BYTES) {
    throw new RangeError(
      `Cannot close: the reason is ${text.length} bytes of UTF-8, more than ${MAX_REASON_BYTES}`,
    );
  }
  const body = new Uint8Array(2 + text.length);
  body[0] = closeCode >>> 8;
  body[1] = closeCode & 0xff;
  body.set(text, 2);
  return body;
}

/**
 * Reads the body of a received close frame.
 *
 * @throws {WebSocketError} if the peer broke §5.5.1 (a one-byte body, a code
 * it may not send: 1002) or sent a reason that is not UTF-8 (1007).
 *
 * @example
 * ```ts
 * import { decodeClose } from "./close.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(decodeClose(new Uint8Array([0x03, 0xe8, 0x6f, 0x6b])), { closeCode: 1000, reason: "ok" });
 * assert.deepEqual(decodeClose(new Uint8Array()), { closeCode: 1005, reason: "" });
 * ```
 */
export function decodeClose(
  body: Uint8Array,
): { closeCode: number; reason: string } {
  if (body.length === 0) {
    return { closeCode: CloseCode.NoStatusReceived, reason: "" };
  }
  if (body.length === 1) {
    throw new WebSocketError(
      "Cannot read close frame: its body is a single byte",
      {
        code: "invalid_close_frame",
      },
    );
  }
  const closeCode = (body[0] << 8) | body[1];
  if (!isValidCloseCode(closeCode)) {
    throw new WebSocketError(
      `Cannot read close frame: ${closeCode} is not a valid close code`,
      {
        code: "invalid_close_frame",
      },
    );
  }
  let reason: string;
  try {
    reason = decodeUtf8(body.subarray(2));
  } catch (cause) {
    throw new WebSocketError(
      "Cannot read close frame: its reason is not valid UTF-8",
      {
        code: "invalid_utf8",
        cause,
      },
    );
  }
  return { closeCode, reason };
}
