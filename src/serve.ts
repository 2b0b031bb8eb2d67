/**
 * A WebSocket server in one call, with limits safe for the open internet,
 * on Node, Deno and Bun alike: a `node:http` (or `node:https`) server whose
 * `'upgrade'` event runs {@linkcode upgrade}, and with `http2`, a
 * `node:http2` server that also takes WebSockets over HTTP/2 (RFC 8441,
 * {@linkcode upgradeStream}), so the full codec runs on all three.
 *
 * @example An echo server
 * ```ts
 * import { serve } from "./serve.ts";
 * import { WebSocketStream } from "./client.ts";
 * import assert from "node:assert/strict";
 *
 * const server = serve({ port: 0 }, async (ws) => {
 *   const { readable, writable } = await ws.opened;
 *   await readable.pipeTo(writable);
 * });
 * const { url } = await server.listening;
 *
 * const client = new WebSocketStream(url);
 * const { readable, writable } = await client.opened;
 * await writable.getWriter().write("hello");
 * assert.equal((await readable.getReader().read()).value, "hello");
 * await server.close();
 * assert.deepEqual(await client.closed, { closeCode: 1001, reason: "" });
 * ```
 *
 * @module
 */

import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { createServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import {
  createSecureServer as createHttp2SecureServer,
  createServer as createHttp2Server,
} from "node:http2";
import {
  DEFAULT_HANDSHAKE_TIMEOUT,
  type NodeRequest,
  type NodeUpgradeOptions,
  upgrade,
} from "./adapters/node.ts";
import { rawHeadersOf } from "./_http2_stream.ts";
import {
  type NodeHttp2Headers,
  type NodeHttp2Stream,
  upgradeStream,
} from "./adapters/node_http2.ts";
import type { NodeSocket } from "./_node_socket.ts";
import { goAway, type WebSocketConnection } from "./connection.ts";
import { checkTime } from "./_options.ts";

/** Options for {@linkcode serve}: where to listen, then every upgrade option. */
export interface ServeOptions<S extends boolean = false>
  extends NodeUpgradeOptions<S> {
  /**
   * The port to listen on; 0 picks a free one.
   *
   * @default {0}
   */
  port?: number;
  /**
   * The address to listen on. Loopback unless told otherwise: a server
   * reachable from other machines is a choice to make on purpose
   * (`"0.0.0.0"`, `"::"`).
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Lets several processes listen on the same port (`SO_REUSEPORT`, on
   * Linux and the BSDs): the kernel spreads the connections among them, so
   * one process per core can serve one port. Node and Deno have it on
   * `node:http`; Bun's `node:http` does not (listening then fails with
   * EADDRINUSE): on Bun, `Bun.serve({ reusePort: true })` with the Bun
   * adapter does it, or each process takes a port of its own behind a proxy.
   *
   * @default {false}
   */
  reusePort?: boolean;
  /**
   * Answers the requests that are not WebSocket handshakes (a page, a
   * health check). Without it they get 426 Upgrade Required.
   *
   * @default {undefined}
   */
  request?(request: NodeRequest, response: NodeResponse): void;
  /**
   * Milliseconds a peer has to send its whole request head, and the
   * `accept` hook to decide, each; a handshake still unfinished is dropped
   * (408 while the head is arriving, 503 while a hook runs). Bounds
   * slowloris peers, which otherwise hold a connection for `node:http`'s
   * 60 seconds (90 on Deno). 0 turns it off.
   *
   * @default {10000}
   */
  handshakeTimeout?: number;
  /**
   * A certificate and its private key, PEM: the server speaks TLS, and its
   * URL is `wss:`. A certificate or key that does not parse, or a key that
   * is not the certificate's, is a `TypeError` from `serve()`.
   *
   * @default {undefined} (cleartext)
   */
  tls?: ServeTlsOptions;
  /**
   * Takes WebSockets over HTTP/2 as well (RFC 8441): the server is a
   * `node:http2` one that advertises `SETTINGS_ENABLE_CONNECT_PROTOCOL`, so
   * a browser that loaded a page from it opens its WebSockets as streams
   * of the same connection. With `tls`, HTTP/1.1 is still served on the
   * same port (ALPN chooses), unless `allowHTTP1` is false; without `tls`,
   * it speaks cleartext HTTP/2 only, to clients that know it does (prior
   * knowledge), as browsers do not.
   *
   * @default {false}
   */
  http2?: boolean;
  /**
   * With `http2` and `tls`: whether HTTP/1.1 clients are served too.
   *
   * @default {true}
   */
  allowHTTP1?: boolean;
}

/** The certificate a {@linkcode serve}d server presents. */
export interface ServeTlsOptions {
  /** The certificate chain, PEM. */
  cert: string | Uint8Array;
  /** Its private key, PEM. */
  key: string | Uint8Array;
}

/** Where a {@linkcode serve}d server listens. */
export interface ServeAddress {
  /** The address it listens on. */
  hostname: string;
  /** The port it listens on. */
  port: number;
  /** `ws://hostname:port/`, or `wss:` with `tls`. */
  url: string;
}

// Structural types keep this file's declarations free of @types/node: an
// application with them passes node:http's own objects where these appear.

/** The parts of a `node:http` `ServerResponse` named here. */
export interface NodeResponse {
  /** Sets the status and headers. */
  writeHead(status: number, headers?: Record<string, string>): NodeResponse;
  /** Ends the response, with a last piece of the body. */
  end(body?: string | Uint8Array): unknown;
}

/** The parts of a `node:http` `Server` named here. */
export interface NodeHttpServer {
  /** Where it listens. */
  address(): unknown;
  /** Adds a listener. */
  // deno-lint-ignore no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
}

/** A server made by {@linkcode serve}. */
export interface WebSocketServer {
  /** The `node:http`, `node:https` or `node:http2` server underneath. */
  readonly server: NodeHttpServer;
  /** Resolves once the server listens; rejects if it cannot (a port in use). */
  readonly listening: Promise<ServeAddress>;
  /**
   * Stops listening and closes every connection with 1001 (going away),
   * those still in their handshake once they open; resolves once every
   * connection has closed (each within its `closeTimeout`, once open) and
   * every socket is gone.
   */
  close(): Promise<void>;
}

// The heartbeat a served connection gets unless told otherwise: a peer that
// vanishes, or goes silent in the middle of a frame (its pong cannot pass
// the frame), is dropped within a minute.
const DEFAULT_HEARTBEAT = { interval: 30_000, timeout: 30_000 } as const;

/**
 * Starts a WebSocket server and calls `handler` with each connection,
 * before its handshake has finished (`opened` settles once it has; a
 * refused handshake rejects it). A promise `handler` returns that rejects
 * is the connection's end, not the server's: a peer that is refused, or
 * breaks the protocol, must not take the process down (`closed` says what
 * happened). Every {@linkcode upgrade} option applies; unless given, these
 * defaults hold:
 *
 * - the request head must arrive, and the `accept` hook decide, within
 *   `handshakeTimeout` (10 s) each;
 * - a heartbeat pings every 30 s and drops a peer that has not answered
 *   within 30 s more (`heartbeat: undefined` turns it off);
 * - the codec's own limits (16 MiB frames and messages, 16 MiB send
 *   queue, same-origin handshakes).
 *
 * @example A page on `/` and WebSockets on `/chat` only
 * ```ts
 * import { serve } from "./serve.ts";
 * import { WebSocketStream } from "./client.ts";
 * import assert from "node:assert/strict";
 *
 * const server = serve({
 *   request: (_request, response) => response.end("hello"),
 *   accept: (request) =>
 *     new URL(request.url!).pathname === "/chat" ||
 *     new Response("not found", { status: 404 }),
 * }, (ws) => ws.closed.catch(() => {}));
 * const { url } = await server.listening;
 * assert.equal(await (await fetch(url.replace("ws:", "http:"))).text(), "hello");
 *
 * const client = new WebSocketStream(new URL("/chat", url).href);
 * await client.opened;
 * client.close({ closeCode: 1000 });
 * await client.closed;
 * await server.close();
 * ```
 */
export function serve<
  S extends boolean = false,
  R extends NodeRequest = NodeRequest,
>(
  options: ServeOptions<S>,
  handler: (ws: WebSocketConnection<S>, request: R) => unknown,
): WebSocketServer {
  const {
    port = 0,
    hostname = "127.0.0.1",
    reusePort = false,
    request: onRequest,
    tls,
    http2 = false,
    allowHTTP1 = true,
    ...upgradeOptions
  } = options;
  const handshakeTimeout = checkTime(
    "handshakeTimeout",
    options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
  );
  if (!("heartbeat" in upgradeOptions)) {
    upgradeOptions.heartbeat = DEFAULT_HEARTBEAT;
  }
  const server = makeServer(
    tls,
    http2,
    allowHTTP1,
    handshakeTimeout,
    onRequest ?? upgradeRequired,
  );
  const connections = new Set<WebSocketConnection<S>>();
  let closing = false;
  const opened = (ws: WebSocketConnection<S>, request: R) => {
    connections.add(ws);
    const forget = () => connections.delete(ws);
    ws.closed.then(forget, forget);
    // A handshake that was under way when close() began.
    if (closing) goAway(ws);
    const handled = handler(ws, request);
    if (handled instanceof Promise) handled.catch(() => {});
  };
  server.on(
    "upgrade",
    (request: R, socket: NodeSocket, head: Uint8Array) => {
      opened(upgrade(request, socket, head, upgradeOptions), request);
    },
  );
  // Sockets, for close(): an HTTP/2 server has no closeAllConnections().
  const sockets = new Set<NodeSocket>();
  if (http2) {
    // node:http2's request API (the 'request' event) is a 'stream'
    // listener that makes a request and a response object for every stream,
    // CONNECTs included (handed to 'connect'), kept as long as the stream
    // lives: 3.5 KiB more per WebSocket (Node, measured). serve() takes the
    // streams first: a CONNECT goes to upgradeStream, the others on to it.
    // (An HTTP/1.1 CONNECT, with allowHTTP1, finds no 'connect' listener:
    // node:http drops its socket.)
    const requestApi = server.listeners("stream");
    for (const listener of requestApi) server.off("stream", listener);
    server.on("stream", function (
      this: unknown,
      stream: NodeHttp2Stream,
      headers: NodeHttp2Headers,
      ...rest: unknown[]
    ) {
      if (headers[":method"] !== "CONNECT") {
        for (const listener of requestApi) {
          listener.call(this, stream, headers, ...rest);
        }
        return;
      }
      opened(
        upgradeStream(stream, headers, upgradeOptions),
        connectRequest(stream, headers) as unknown as R,
      );
    });
    server.on("connection", (socket: NodeSocket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    server.on(
      "session",
      (session: Http2Session) => closeWhenIdle(session, handshakeTimeout),
    );
    if (tls !== undefined && allowHTTP1) {
      closeIdleHttp1(server, handshakeTimeout);
    }
  }
  const listening = new Promise<ServeAddress>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host: hostname, reusePort }, () => {
      server.off("error", reject);
      // Once listening, an error is a connection the server could not
      // accept (too many open files, under a flood): node:http goes on
      // listening, and an 'error' with no listener would end the process.
      server.on("error", () => {});
      const address = server.address() as { port: number };
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      resolve({
        hostname,
        port: address.port,
        url: `${tls ? "wss" : "ws"}://${host}:${address.port}/`,
      });
    });
  });
  return {
    server,
    listening,
    async close() {
      closing = true;
      const stopped = new Promise<void>((resolve) =>
        server.close(() => resolve())
      );
      // Until none is left: a handshake under way may still open one.
      while (connections.size > 0) {
        await Promise.allSettled(
          [...connections].map((ws) => {
            goAway(ws);
            return ws.closed;
          }),
        );
      }
      // Keep-alive sockets, and handshakes still arriving.
      if (server.closeAllConnections !== undefined) {
        server.closeAllConnections();
      } else {
        for (const socket of sockets) socket.destroy();
      }
      await stopped;
    },
  };
}

/**
 * What a {@linkcode serve} handler gets as the request of a WebSocket over
 * HTTP/2: the extended CONNECT's headers and its stream, in the shape of
 * `node:http`'s request (`url` is the `:path`).
 */
export interface Http2ConnectRequest extends NodeRequest {
  /** "CONNECT". */
  readonly method: string;
  /** The `:path`. */
  readonly url: string;
  /** "2.0". */
  readonly httpVersion: string;
  /** 2. */
  readonly httpVersionMajor: number;
  /** The headers, pseudo-headers included, as `node:http2` gives them. */
  readonly headers: NodeHttp2Headers;
  /** The stream the WebSocket runs over. */
  readonly stream: NodeHttp2Stream;
  /** The connection's socket (its addresses), as `node:http2` gives it. */
  readonly socket: Peer | undefined;
}

function connectRequest(
  stream: NodeHttp2Stream,
  headers: NodeHttp2Headers,
): Http2ConnectRequest {
  const path = headers[":path"];
  return {
    method: "CONNECT",
    url: typeof path === "string" ? path : "",
    httpVersion: "2.0",
    httpVersionMajor: 2,
    headers,
    rawHeaders: rawHeadersOf(headers),
    stream,
    socket: (stream.session as { socket?: Peer } | undefined)?.socket,
  };
}

/** The parts of a connection's socket that say who its peer is. */
export interface Peer {
  /** The peer's address. */
  readonly remoteAddress?: string;
  /** The peer's port. */
  readonly remotePort?: number;
}

// The streams one HTTP/2 connection may have open: WebSockets and requests.
const HTTP2_MAX_STREAMS = 1000;

// node:http2 bounds neither the time to a connection's first request
// (node:http's headersTimeout) nor how long it keeps one with nothing in
// progress (keepAliveTimeout), over HTTP/2 or over the HTTP/1.1 it serves
// with allowHTTP1 (Bun keeps an idle HTTP/1.1 connection for good; Node and
// Deno close it after about 6 s). Here a connection with nothing in progress
// is dropped `first` ms (handshakeTimeout; 0: never) after it opened, and
// closed HTTP2_IDLE_TIMEOUT after its last stream or response ended.
const HTTP2_IDLE_TIMEOUT = 5_000;

interface Http2Session {
  close(): void;
  destroy(): void;
  // deno-lint-ignore no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
  once(event: string, listener: () => void): unknown;
}

// An HTTP/2 connection: in progress while a stream is open.
function closeWhenIdle(session: Http2Session, first: number): void {
  let open = 0;
  let timer = first > 0
    ? setTimeout(() => session.destroy(), first)
    : undefined;
  session.on(
    "stream",
    (stream: { once(event: string, f: () => void): void }) => {
      open++;
      clearTimeout(timer);
      stream.once("close", () => {
        if (--open === 0) {
          timer = setTimeout(() => session.close(), HTTP2_IDLE_TIMEOUT);
        }
      });
    },
  );
  session.once("close", () => clearTimeout(timer));
}

// An HTTP/1.1 connection through node:http2: in progress from a request to
// its response's end, and for good once upgraded (a WebSocket).
function closeIdleHttp1(server: Server, first: number): void {
  const idle = new Map<NodeSocket, ReturnType<typeof setTimeout>>();
  const wait = (socket: NodeSocket, ms: number) => {
    idle.set(socket, setTimeout(() => socket.destroy(), ms));
  };
  const busy = (socket: NodeSocket) => {
    clearTimeout(idle.get(socket));
    idle.delete(socket);
  };
  server.on("secureConnection", (socket: TlsSocket) => {
    if (socket.alpnProtocol === "h2") return;
    if (first > 0) wait(socket, first);
    socket.on("close", () => busy(socket));
  });
  server.on(
    "request",
    (
      request: { httpVersionMajor?: number; socket?: NodeSocket },
      response: { once?(event: string, listener: () => void): unknown },
    ) => {
      const socket = request.socket;
      if (request.httpVersionMajor !== 1 || socket === undefined) return;
      busy(socket);
      response.once?.("finish", () => {
        if (!socket.destroyed) wait(socket, HTTP2_IDLE_TIMEOUT);
      });
    },
  );
  server.on("upgrade", (request: { socket?: NodeSocket }) => {
    if (request.socket !== undefined) busy(request.socket);
  });
}

interface TlsSocket extends NodeSocket {
  readonly alpnProtocol?: string | false;
}

// The parts of the server used here, whichever module made it.
interface Server {
  address(): unknown;
  // deno-lint-ignore no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
  // deno-lint-ignore no-explicit-any
  once(event: string, listener: (...args: any[]) => void): unknown;
  // deno-lint-ignore no-explicit-any
  off(event: string, listener: (...args: any[]) => void): unknown;
  // deno-lint-ignore no-explicit-any
  listeners(event: string): ((...args: any[]) => void)[];
  listen(
    options: { port: number; host: string; reusePort: boolean },
    listening: () => void,
  ): unknown;
  close(callback: () => void): unknown;
  closeAllConnections?(): void;
}

function makeServer(
  tls: ServeTlsOptions | undefined,
  http2: boolean,
  allowHTTP1: boolean,
  handshakeTimeout: number,
  onRequest: (request: NodeRequest, response: NodeResponse) => void,
): Server {
  // node:http's own bound on the request head, checked every second rather
  // than every 30 (its default), so that it holds to the second.
  const timeouts = handshakeTimeout === 0 ? {} : {
    headersTimeout: handshakeTimeout,
    requestTimeout: Math.max(handshakeTimeout, 300_000),
    connectionsCheckingInterval: Math.min(1000, handshakeTimeout),
  };
  // The TLS handshake's own bound (node:tls's default is 120 s).
  const secure = tls === undefined ? undefined : {
    ...checkTls(tls),
    ...(handshakeTimeout === 0 ? {} : { handshakeTimeout }),
  };
  // RFC 8441 §3: the server says it takes extended CONNECTs.
  // And a bound on the streams of one connection, as a browser opens them
  // (node:http2's default is 2^32 - 1): each WebSocket is one.
  const settings = {
    enableConnectProtocol: true,
    maxConcurrentStreams: HTTP2_MAX_STREAMS,
  };
  // The casts: @types/node types each server's listeners its own way.
  if (http2 && secure !== undefined) {
    return createHttp2SecureServer(
      { ...secure, allowHTTP1, settings },
      onRequest as never,
    ) as unknown as Server;
  }
  if (http2) {
    return createHttp2Server(
      { settings },
      onRequest as never,
    ) as unknown as Server;
  }
  if (secure !== undefined) {
    return createHttpsServer(
      { ...secure, ...timeouts },
      onRequest as never,
    ) as unknown as Server;
  }
  return createServer(timeouts, onRequest as never) as unknown as Server;
}

function pem(text: string | Uint8Array): string {
  return typeof text === "string" ? text : new TextDecoder().decode(text);
}

// A certificate and its key, checked before listening: Deno's node:https and
// node:http2 listen with anything, then fail every TLS handshake.
function checkTls(tls: ServeTlsOptions): { cert: string; key: string } {
  const cert = pem(tls.cert);
  const key = pem(tls.key);
  // Every certificate of the chain, the first (the server's) against the key.
  const certificates: X509Certificate[] = [];
  for (const block of cert.match(CERTIFICATE_BLOCK) ?? [cert]) {
    try {
      certificates.push(new X509Certificate(block));
    } catch (error) {
      throw new TypeError("serve: tls.cert is not a PEM certificate chain", {
        cause: error,
      });
    }
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(key);
  } catch (error) {
    throw new TypeError("serve: tls.key is not a PEM private key", {
      cause: error,
    });
  }
  if (!certificates[0].checkPrivateKey(privateKey)) {
    throw new TypeError("serve: tls.key is not the key of tls.cert");
  }
  return { cert, key };
}

const CERTIFICATE_BLOCK =
  /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----/g;

function upgradeRequired(
  request: NodeRequest & { httpVersionMajor?: number },
  response: NodeResponse,
): void {
  // A 426 must name the protocol to upgrade to (RFC 9110 §15.5.22), in
  // headers HTTP/2 forbids: there, a WebSocket is a CONNECT (RFC 8441).
  if ((request.httpVersionMajor ?? 1) >= 2) {
    response.writeHead(405, { "content-type": "text/plain", allow: "CONNECT" })
      .end("This is a WebSocket server\n");
    return;
  }
  response.writeHead(426, {
    "content-type": "text/plain",
    upgrade: "websocket",
    connection: "Upgrade",
  }).end("This is a WebSocket server\n");
}
