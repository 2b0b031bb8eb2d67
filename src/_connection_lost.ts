import { WebSocketError } from "./errors.ts";

/** The error for a transport that went away without a Close frame (1006). */
export function connectionLost(what: string, cause?: unknown): WebSocketError {
  return new WebSocketError(`The connection was lost: ${what}`, {
    code: "connection_lost",
    cause,
  });
}
