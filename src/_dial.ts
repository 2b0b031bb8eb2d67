// What the client's two ways of opening (src/client.ts over HTTP/1.1,
// src/_client_http2.ts over HTTP/2) share: their errors and their deadline.

import net from "node:net";
import { WebSocketError, type WebSocketErrorCode } from "./errors.ts";

/** The error `opened` rejects with when the connection cannot open. */
export function openError(
  message: string,
  cause?: unknown,
  code: WebSocketErrorCode = "connection_lost",
): WebSocketError {
  return new WebSocketError(`Cannot open WebSocket: ${message}`, {
    code,
    cause,
  });
}

/**
 * Fails the attempt once `timeout` ms (0: never) have passed, or `signal`
 * aborts. Returns what stops both.
 */
export function deadline(
  address: string,
  timeout: number,
  signal: AbortSignal | undefined,
  fail: (reason: unknown) => unknown,
): () => void {
  const onAbort = () => fail(signal!.reason);
  signal?.addEventListener("abort", onAbort);
  const timer = timeout > 0
    ? setTimeout(() => {
      fail(
        openError(
          `no handshake response from ${address} within ${timeout} ms`,
          undefined,
          "handshake_timeout",
        ),
      );
    }, timeout)
    : undefined;
  return () => {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  };
}

/** Where a WebSocket to `url` connects, and the TLS settings for `wss:`. */
export function connectTarget(
  url: URL,
  tls: { ca?: string | Uint8Array; rejectUnauthorized?: boolean },
) {
  const secure = url.protocol === "wss:";
  // URL keeps the brackets of an IPv6 literal; sockets want it bare.
  const host = url.hostname.startsWith("[")
    ? url.hostname.slice(1, -1)
    : url.hostname;
  const ca = tls.ca;
  return {
    secure,
    host,
    port: url.port === "" ? (secure ? 443 : 80) : Number(url.port),
    tls: {
      ca: ca instanceof Uint8Array ? new TextDecoder().decode(ca) : ca,
      rejectUnauthorized: tls.rejectUnauthorized ?? true,
      // RFC 6066 §3: SNI carries host names only, never an address.
      servername: net.isIP(host) === 0 ? host : undefined,
    },
  };
}
