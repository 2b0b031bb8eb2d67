// What every WebSocketStream-shaped endpoint (a connection over bytes, or a
// bridge to a runtime's native socket) checks of its caller, alike.

import { CloseCode } from "./close_code.ts";
import { encodeClose, isApplicationCloseCode } from "./close.ts";
import { MAX_CONTROL_PAYLOAD } from "./frame.ts";

/**
 * Checks the arguments of `close()`.
 *
 * @throws {RangeError} if the code is not 1000 or 3000–4999, or the reason
 * is longer than 123 bytes of UTF-8.
 */
export function checkClose(
  closeCode: number | undefined,
  reason: string,
): void {
  if (closeCode !== undefined && !isApplicationCloseCode(closeCode)) {
    throw new RangeError(
      `Cannot close: the close code must be 1000 or from 3000 to 4999, got ${closeCode}`,
    );
  }
  // Checks the reason's length.
  encodeClose({ closeCode: closeCode ?? CloseCode.NormalClosure, reason });
}

/**
 * The payload of `ping(data)`: `data` as bytes, or, without it, the next
 * number from `next()` in four bytes, so that each ping is told apart.
 *
 * @throws {RangeError} if the payload is more than 125 bytes.
 */
export function pingPayload(
  data: Uint8Array | string | undefined,
  next: () => number,
): Uint8Array {
  let payload: Uint8Array;
  if (typeof data === "string") payload = new TextEncoder().encode(data);
  else if (data !== undefined) payload = data;
  else {
    const n = next();
    payload = new Uint8Array([
      n >>> 24,
      (n >>> 16) & 0xff,
      (n >>> 8) & 0xff,
      n & 0xff,
    ]);
  }
  if (payload.length > MAX_CONTROL_PAYLOAD) {
    throw new RangeError("Cannot ping: the payload is more than 125 bytes");
  }
  return payload;
}
