// An HTTP/2 stream as a WebSocket's transport (RFC 8441 §5), for both the
// server's adapter and the client: END_STREAM stands for TCP's FIN, and a
// reset is "the RST_STREAM frame ... with the CANCEL error code".

import { type NodeSocket, nodeSocketDuplex } from "./_node_socket.ts";
import type { ByteDuplex } from "./connection.ts";

/** The parts of a `node:http2` stream the transport uses. */
export interface Http2StreamLike extends NodeSocket {
  /** Ends the stream with a RST_STREAM of `code`. */
  close(code?: number): void;
  /** Whether the peer's END_STREAM has been read. */
  readonly readableEnded?: boolean;
  /** Whether our END_STREAM has gone out. */
  readonly writableFinished?: boolean;
  /** Its session. */
  readonly session?: unknown;
}

// RFC 9113 §7: CANCEL, "the stream is no longer needed".
export const CANCEL = 8;

function reset(stream: Http2StreamLike): void {
  // A stream both sides have ended is closed: a RST_STREAM then is one RFC
  // 9113 §5.1 forbids (and one that Deno's node:http2 sends, and that
  // crashed Deno's nghttp2 in 8 of 16 runs of 300 connections).
  if (
    stream.destroyed || (stream.readableEnded && stream.writableFinished)
  ) return;
  stream.close(CANCEL);
}

/**
 * A `node:http2` headers object as names and values, alternating (as
 * `node:http`'s `rawHeaders`), pseudo-headers included.
 */
export function rawHeadersOf(
  headers: Readonly<Record<string, unknown>>,
): string[] {
  const raw: string[] = [];
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (value === undefined) continue;
    for (const each of Array.isArray(value) ? value : [value]) {
      raw.push(name, String(each));
    }
  }
  return raw;
}

/**
 * The header fields of `raw`, pseudo-headers left out, and any the Fetch
 * API cannot hold (the handshake's checks then refuse what is missing).
 */
export function fieldsOf(raw: readonly string[]): Headers {
  const fields = new Headers();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i].charCodeAt(0) === 0x3a) continue;
    try {
      fields.append(raw[i], raw[i + 1]);
    } catch {
      // left out
    }
  }
  return fields;
}

/** The stream as a byte duplex that a connection reads and writes. */
export function http2Duplex(stream: Http2StreamLike): ByteDuplex {
  if (BUN) flushAfterWrites(stream);
  return nodeSocketDuplex(stream, reset);
}

// Bun's node:http2 (1.4) sends what a stream writes outside its own event
// handlers only while no stream of the session waits on flow control: once
// one peer stops reading, every other stream's writes wait in the session
// until some frame arrives. (Measured: a write from setImmediate on one
// stream is not sent while another stream of the session is stalled; the
// same write made in a 'data' handler is.) Its session's native handle has a
// flush(): each session written to is flushed once, after the writes of the
// same turn.
const BUN = "Bun" in globalThis;
let nativeKey: symbol | undefined;
let written = new Set<{ flush(): void }>();

function flushWritten(): void {
  const sessions = written;
  written = new Set();
  for (const native of sessions) native.flush();
}

function nativeOf(session: object): { flush(): void } | undefined {
  nativeKey ??= Object.getOwnPropertySymbols(Object.getPrototypeOf(session))
    .find((key) => String(key) === "Symbol(::bunhttp2native::)");
  if (nativeKey === undefined) return undefined;
  const native = (session as Record<symbol, unknown>)[nativeKey];
  return typeof (native as { flush?: unknown })?.flush === "function"
    ? native as { flush(): void }
    : undefined;
}

function flushAfterWrites(stream: Http2StreamLike): void {
  const session = stream.session;
  if (typeof session !== "object" || session === null) return;
  const native = nativeOf(session);
  if (native === undefined) return;
  const schedule = () => {
    if (written.size === 0) queueMicrotask(flushWritten);
    written.add(native);
  };
  const { write, end } = stream as unknown as {
    write: (...args: unknown[]) => boolean;
    end: (...args: unknown[]) => unknown;
  };
  Object.assign(stream, {
    write(...args: unknown[]): boolean {
      schedule();
      return write.apply(stream, args);
    },
    end(...args: unknown[]): unknown {
      schedule();
      return end.apply(stream, args);
    },
  });
}
