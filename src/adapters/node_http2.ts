/**
 * WebSocket servers on `node:http2` (RFC 8441): a WebSocket is an extended
 * CONNECT on one stream of an HTTP/2 connection, so a browser that already
 * holds an HTTP/2 connection to the origin opens its WebSockets on it. The
 * stream is the transport, and the full codec runs over it on Node, Deno
 * and Bun alike, with HTTP/2's flow control as its backpressure.
 *
 * The server must advertise `SETTINGS_ENABLE_CONNECT_PROTOCOL` (RFC 8441
 * §3): `settings: { enableConnectProtocol: true }`. Without it, browsers
 * fall back to a WebSocket on a connection of its own (HTTP/1.1).
 *
 * @example An echo server over HTTP/2 (cleartext, prior knowledge)
 * ```ts
 * import { createServer, type ServerHttp2Stream } from "node:http2";
 * import { upgradeStream } from "./node_http2.ts";
 * import { WebSocketStream } from "../client.ts";
 * import assert from "node:assert/strict";
 *
 * const server = createServer({ settings: { enableConnectProtocol: true } });
 * server.on("stream", async (stream: ServerHttp2Stream, headers) => {
 *   if (headers[":method"] !== "CONNECT") {
 *     return stream.respond({ ":status": 404 }, { endStream: true });
 *   }
 *   const { readable, writable } = await upgradeStream(stream, headers).opened;
 *   await readable.pipeTo(writable);
 * });
 * await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
 * const { port } = server.address() as { port: number };
 *
 * const client = new WebSocketStream(`ws://127.0.0.1:${port}`, { httpVersion: "2" });
 * const { readable, writable } = await client.opened;
 * await writable.getWriter().write("hello");
 * assert.equal((await readable.getReader().read()).value, "hello");
 * client.close({ closeCode: 1000 });
 * await client.closed;
 * server.close();
 * ```
 *
 * @module
 */

import {
  CANCEL,
  fieldsOf,
  http2Duplex,
  type Http2StreamLike,
  rawHeadersOf,
} from "../_http2_stream.ts";
import {
  DEFAULT_CLOSE_TIMEOUT,
  type HandshakeResult,
  WebSocketConnection,
} from "../connection.ts";
import type {
  UpgradeRefused,
  UpgradeRequest,
  UpgradeResult,
} from "../handshake.ts";
import {
  checkHead,
  closedDuringHandshake,
  decide,
  type HandshakeOptions,
  handshakeOptions,
  hookFailed,
  ignoreError,
  sendRefusal,
} from "./_handshake.ts";
import type { NodeUpgradeOptions } from "./node.ts";

/** The parts of a `node:http2` `ServerHttp2Stream` this adapter uses. */
export interface NodeHttp2Stream extends Http2StreamLike {
  /** Sends the response's headers. */
  respond(
    headers: Record<string, string | string[] | number>,
    options?: { endStream?: boolean },
  ): void;
  /** Bytes received and not yet read. */
  readonly readableLength: number;
}

/**
 * A `node:http2` request's headers, pseudo-headers (`:method`,
 * `:protocol`, ...) included, as its `'stream'` event gives them.
 */
export type NodeHttp2Headers = Readonly<
  Record<string, string | string[] | number | undefined>
>;

// HTTP/2 forbids connection-specific headers (RFC 9113 §8.2.2), and
// node:http2 throws on them: a refusal from the accept hook goes without.
const CONNECTION_HEADERS = new Set([
  "connection",
  "http2-settings",
  "keep-alive",
  "proxy-connection",
  "te",
  "transfer-encoding",
  "upgrade",
]);

// A response's status and headers as node:http2 takes them: every
// Set-Cookie kept (Headers joins the others), none of HTTP/1.1's own.
function responseHeaders(
  status: number,
  headers: Headers,
): Record<string, string | string[] | number> {
  const out: Record<string, string | string[] | number> = { ":status": status };
  for (const [name, value] of headers) {
    if (!CONNECTION_HEADERS.has(name)) out[name] = value;
  }
  const cookies = headers.getSetCookie();
  if (cookies.length > 0) out["set-cookie"] = cookies;
  return out;
}

/**
 * Answers an HTTP/2 extended CONNECT (RFC 8441) on a `node:http2` server's
 * `'stream'` event, as {@linkcode upgrade} answers an HTTP/1.1 upgrade:
 * checks the handshake (`:protocol` websocket, `:scheme`, `:path`,
 * `:authority`, `Sec-WebSocket-Version` 13, then origin, subprotocols and
 * the `accept` hook), responds 200 or refuses, and returns the connection,
 * with every option {@linkcode upgrade} takes. Route every CONNECT here:
 * one without `:protocol` is refused with 400, another protocol with 501,
 * a wrong version with 400 and `Sec-WebSocket-Version: 13`, and DATA that
 * has arrived by the time the handshake is decided (the client must wait
 * for the response, RFC 6455 §4.1) with 400. (DATA that comes after the
 * decision, even if the client sent it early, is read as frames.)
 *
 * Over the stream, END_STREAM stands for TCP's FIN and RST_STREAM (CANCEL)
 * for a reset (RFC 8441 §5): the close handshake ends the stream, and a
 * connection that fails, or whose closing times out, resets it; a peer's
 * reset closes the connection with 1006. A peer that stops reading stops
 * this stream's writes (HTTP/2 flow control) and no other stream's.
 */
export function upgradeStream<S extends boolean = false>(
  stream: NodeHttp2Stream,
  headers: NodeHttp2Headers,
  options: NodeUpgradeOptions<S> = {},
): WebSocketConnection<S> {
  const request = requestOf(headers);
  const tooLarge = checkHead(
    request.method,
    request.url,
    request.raw,
    options,
  );
  const handshakeOpts = handshakeOptions(options);
  // Until the transport listens for errors itself.
  stream.on("error", ignoreError);
  const transport = handshake(request, stream, handshakeOpts, tooLarge);
  return new WebSocketConnection(transport, {
    ...options,
    role: "server",
    url: request.url ?? "",
  });
}

// The request as the handshake reads it, and the raw headers for the limits.
function requestOf(
  headers: NodeHttp2Headers,
): UpgradeRequest & { raw: string[] } {
  const raw = rawHeadersOf(headers);
  const pseudo = (name: string) => {
    const value = headers[name];
    return typeof value === "string" ? value : undefined;
  };
  const scheme = pseudo(":scheme");
  const authority = pseudo(":authority");
  const path = pseudo(":path");
  // RFC 8441 §4: an extended CONNECT carries :scheme and :path as well as
  // :authority; without one, no URL, and the handshake refuses it.
  const url = scheme && authority && path?.startsWith("/")
    ? `${scheme}://${authority}${path}`
    : undefined;
  return {
    method: pseudo(":method") ?? "",
    headers: fieldsOf(raw),
    url,
    httpVersion: "2.0",
    protocol: pseudo(":protocol"),
    raw,
  };
}

async function handshake(
  request: UpgradeRequest,
  stream: NodeHttp2Stream,
  options: HandshakeOptions & { closeTimeout?: number },
  refused: UpgradeRefused | null,
): Promise<HandshakeResult> {
  let result: UpgradeResult;
  try {
    result = await decide(request, options, refused);
  } catch (error) {
    // A hook threw: the client gets a 500, and `opened` the hook's error.
    await refuse(stream, hookFailed(), options.closeTimeout).catch(() => {});
    throw error;
  }
  // The client "MUST wait for a response from the server before sending any
  // further data" (RFC 6455 §4.1); data here now was sent before it.
  if (result.ok && stream.readableLength > 0) {
    result = {
      ok: false,
      code: "invalid_connect",
      status: 400,
      reason: "Cannot upgrade: data arrived before the response",
      headers: new Headers(),
    };
  }
  if (!result.ok) return refuse(stream, result, options.closeTimeout);
  if (stream.destroyed) throw closedDuringHandshake();
  stream.respond(responseHeaders(200, result.headers));
  const duplex = http2Duplex(stream);
  stream.off("error", ignoreError);
  return Object.assign(duplex, {
    protocol: result.protocol,
    extensions: result.extensions,
    head: new Uint8Array(0),
  });
}

// Sends the refusal and ends the stream; throws what `opened` rejects with.
// The request side may still be open: one the client never ends is reset.
function refuse(
  stream: NodeHttp2Stream,
  refused: UpgradeRefused,
  closeTimeout = DEFAULT_CLOSE_TIMEOUT,
): Promise<never> {
  return sendRefusal(stream, refused, closeTimeout, respondRefusal, cancel);
}

function respondRefusal(
  stream: NodeHttp2Stream,
  response: Response,
  body: Uint8Array,
): void {
  const headers = responseHeaders(response.status, response.headers);
  headers["content-length"] = body.length;
  try {
    stream.respond(headers);
  } catch {
    // A header node:http2 refuses (one it checks that this file does not):
    // the status alone.
    stream.respond({ ":status": response.status });
  }
  stream.write(body);
  stream.end();
}

function cancel(stream: NodeHttp2Stream): void {
  if (!stream.destroyed) stream.close(CANCEL);
}
