/**
 * A WebSocket client for any runtime: the WHATWG `WebSocketStream` over
 * `node:net` and `node:tls`, which Node, Deno and Bun all provide, so the
 * full codec runs everywhere.
 *
 * @module
 */

import net from "node:net";
import tls from "node:tls";
import {
  formatRequestHead,
  type HeadError,
  HeadReader,
  type HeadWithRest,
  parseResponseHead,
  type ResponseHead,
} from "./_http.ts";
import { type NodeSocket, nodeSocketDuplex } from "./_node_socket.ts";
import {
  type HandshakeResult,
  type WebSocketCloseOptions,
  WebSocketConnection,
  type WebSocketConnectionOptions,
} from "./connection.ts";
import { WebSocketError } from "./errors.ts";
import { checkTime } from "./_options.ts";
import {
  type ClientHandshake,
  clientHandshake,
  HandshakeError,
  type ServerAgreement,
  verifyResponse,
} from "./handshake.ts";
import { dialHttp2 } from "./_client_http2.ts";
import { connectTarget, deadline, openError } from "./_dial.ts";
import {
  acceptPerMessageDeflateResponse,
  checkPerMessageDeflateOptions,
  offerPerMessageDeflate,
  PERMESSAGE_DEFLATE,
  type PerMessageDeflateOptions,
} from "./permessage_deflate.ts";

/** TLS settings for `wss:` URLs, passed on to `tls.connect`. */
export interface WebSocketStreamTlsOptions {
  /**
   * The certificate authorities to trust instead of the runtime's own, as
   * PEM: a self-signed server's certificate, a private CA.
   *
   * @default {undefined} (the runtime's root certificates)
   */
  ca?: string | Uint8Array;
  /**
   * Refuse a server whose certificate does not verify. Turning this off
   * lets anyone in the middle read and change the connection.
   *
   * @default {true}
   */
  rejectUnauthorized?: boolean;
}

/**
 * Options for {@linkcode WebSocketStream}: the WHATWG ones (`protocols`,
 * `signal`), the handshake's, and the connection's.
 */
export interface WebSocketStreamOptions<S extends boolean = false>
  extends Omit<WebSocketConnectionOptions<S>, "role" | "url"> {
  /**
   * The subprotocols to offer, most preferred first. `opened` gives the one
   * the server chose.
   *
   * @default {[]}
   */
  protocols?: string | readonly string[];
  /**
   * Aborting it before the connection is open fails the connection:
   * `opened` and `closed` reject with the signal's reason. Once open, it
   * has no effect (as in the WHATWG proposal): use `close()`.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * More request headers: cookies, `Authorization`, `User-Agent`. Not the
   * handshake's own (`Host`, `Upgrade`, `Connection`, `Origin`,
   * `Sec-WebSocket-*`): setting one is a `TypeError`.
   *
   * @default {{}}
   */
  headers?: HeadersInit;
  /**
   * The `Origin` header to send, for servers that check it.
   *
   * @default {undefined} (none, as non-browser clients do)
   */
  origin?: string;
  /**
   * Milliseconds from the start of the connection (name lookup, TCP, TLS)
   * to the end of the server's response head; past them the socket is
   * dropped and `opened` rejects. 0 turns the limit off.
   *
   * @default {10000}
   */
  handshakeTimeout?: number;
  /**
   * TLS settings for `wss:` URLs.
   *
   * @default {{}}
   */
  tls?: WebSocketStreamTlsOptions;
  /**
   * Which HTTP the handshake goes over:
   *
   * - `"1.1"`: a connection of its own, upgraded (RFC 6455).
   * - `"2"`: an extended CONNECT (RFC 8441) on a stream of an HTTP/2
   *   connection to the origin, shared by every WebSocket to it from this
   *   process (`wss:` over TLS with ALPN h2; `ws:` over cleartext HTTP/2
   *   with prior knowledge). Fails if the server does not offer it.
   * - `"auto"`: for `wss:`, HTTP/2 when the server offers WebSockets over
   *   it, else HTTP/1.1 (on a connection of its own); for `ws:`, HTTP/1.1,
   *   as a cleartext server cannot say it speaks HTTP/2.
   *
   * The shared connection is closed when its last WebSocket closes.
   *
   * @default {"1.1"}
   */
  httpVersion?: "1.1" | "2" | "auto";
}

// The parts of net.Socket and tls.TLSSocket used here besides the duplex's.
interface ClientSocket extends NodeSocket {
  once(event: string, listener: () => void): unknown;
}

interface Dial {
  result: Promise<HandshakeResult>;
  // Fails the attempt with `reason`, unless it has succeeded.
  fail(reason: unknown): boolean;
}

function connectSocket(
  url: URL,
  tlsOptions: WebSocketStreamTlsOptions,
): ClientSocket {
  const { secure, host, port, tls: settings } = connectTarget(url, tlsOptions);
  if (!secure) return net.connect({ host, port });
  return tls.connect({ host, port, ...settings, ALPNProtocols: ["http/1.1"] });
}

const NOT_FAILED = Symbol("not failed");

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// Sends the request head and reads the response head from the socket's
// events. The socket is paused at the end of the head: what follows waits
// in it for the connection (bytes of the same read come back as `rest`).
function exchangeHeads(
  socket: ClientSocket,
  request: Uint8Array,
  address: string,
): Promise<HeadWithRest<ResponseHead> | HeadError> {
  return new Promise((resolve, reject) => {
    const heads = new HeadReader(parseResponseHead);
    const settle = () => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", reject);
      socket.off("close", onClose);
    };
    const onData = (chunk: Uint8Array) => {
      const head = heads.push(
        new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength),
      );
      if (head.kind === "incomplete") return;
      settle();
      socket.pause();
      resolve(head);
    };
    const onEnd = () => {
      settle();
      reject(
        openError(
          `${address} closed the connection before answering the handshake`,
        ),
      );
    };
    const onClose = () => {
      settle();
      reject(new Error("The socket closed"));
    };
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("error", reject);
    socket.on("close", onClose);
    socket.write(request);
  });
}

// Checks the server's answer (RFC 6455 §4.1, RFC 8441 §5 with `http2`), and
// RFC 7692 §7: that the response's parameters fit the deflate offer.
function checkResponse(
  response: { status: number; headers: Headers },
  offer: ClientHandshake & { http2?: boolean },
  perMessageDeflate: PerMessageDeflateOptions | null,
): ServerAgreement {
  const agreed = verifyResponse(response, offer);
  const deflate = agreed.accepted.find((e) => e.name === PERMESSAGE_DEFLATE);
  if (deflate !== undefined) {
    acceptPerMessageDeflateResponse(
      deflate,
      perMessageDeflate ?? {},
      response.status,
    );
  }
  return agreed;
}

// Over HTTP/2; with `fallback`, over HTTP/1.1 when the server offers no
// WebSockets over HTTP/2, within what is left of the same timeout.
function dialEither(
  handshake: ClientHandshake,
  options: DialOptions,
  fallback: boolean,
): Dial {
  const started = performance.now();
  const first = dialHttp2(handshake, {
    tls: options.tls,
    timeout: options.timeout,
    signal: options.signal,
    fallback,
    check: (response) =>
      checkResponse(
        response,
        { ...handshake, http2: true },
        options.perMessageDeflate,
      ),
  });
  let current: Dial | null = null;
  // Failed between the two attempts: the fallback does not start.
  let failure: unknown = NOT_FAILED;
  const result = first.result.then((opened) => {
    if (opened !== null) return opened;
    if (failure !== NOT_FAILED) throw failure;
    const spent = Math.ceil(performance.now() - started);
    current = dial(handshake, {
      ...options,
      timeout: options.timeout === 0 ? 0 : Math.max(1, options.timeout - spent),
    });
    return current.result;
  });
  return {
    result,
    fail(reason) {
      if (current !== null) return current.fail(reason);
      if (first.fail(reason)) return true;
      if (failure !== NOT_FAILED) return false;
      failure = reason;
      return true;
    },
  };
}

interface DialOptions {
  timeout: number;
  tls: WebSocketStreamTlsOptions;
  signal?: AbortSignal;
  perMessageDeflate: PerMessageDeflateOptions | null;
}

// Connects, sends the handshake request and reads the response head. On
// failure the socket is destroyed and every listener and timer removed; on
// success the socket belongs to the duplex returned.
function dial(handshake: ClientHandshake, options: DialOptions): Dial {
  let socket: ClientSocket | null = null;
  let failure: unknown = NOT_FAILED;
  let done = false;
  const fail = (reason: unknown): boolean => {
    if (done || failure !== NOT_FAILED) return false;
    failure = reason;
    socket?.destroy();
    return true;
  };

  const result = (async (): Promise<HandshakeResult> => {
    const { url, target, headers } = handshake;
    const address = url.host;
    const signal = options.signal;
    // WHATWG: "If signal is aborted, then reject this's opened promise and
    // closed promise with signal's abort reason and return."
    if (signal?.aborted) throw signal.reason;
    let current: ClientSocket;
    try {
      current = connectSocket(url, options.tls);
    } catch (error) {
      throw openError(
        `cannot connect to ${address}: ${messageOf(error)}`,
        error,
        "connect_failed",
      );
    }
    socket = current;

    const secure = url.protocol === "wss:";
    let connected = false;
    let secured = !secure;
    const onConnect = () => {
      connected = true;
    };
    const onSecure = () => {
      connected = true;
      secured = true;
    };
    current.once("connect", onConnect);
    if (secure) current.once("secureConnect", onSecure);
    const stop = deadline(address, options.timeout, signal, fail);

    // The connection reads and writes the socket directly (see
    // _node_socket.ts): the handshake reads it by its events, so no stream
    // is made.
    const duplex = nodeSocketDuplex(current);
    try {
      const head = await exchangeHeads(
        current,
        formatRequestHead("GET", target, headers),
        address,
      );
      if (head.kind === "error") {
        throw new HandshakeError(
          `Cannot open WebSocket: the response from ${address} is not valid HTTP: ${head.reason}`,
          { code: "invalid_response", status: 0 },
        );
      }
      if (failure !== NOT_FAILED) throw failure;
      const agreed = checkResponse(head, handshake, options.perMessageDeflate);
      done = true;
      // The duplex itself, not a copy: it carries the socket's transport.
      return Object.assign(duplex, {
        protocol: agreed.protocol,
        extensions: agreed.extensions,
        head: head.rest,
      });
    } catch (error) {
      current.destroy();
      if (failure !== NOT_FAILED) throw failure;
      if (error instanceof HandshakeError || error instanceof WebSocketError) {
        throw error;
      }
      const reason = messageOf(error);
      if (!connected) {
        throw openError(
          `cannot connect to ${address}: ${reason}`,
          error,
          "connect_failed",
        );
      }
      if (!secured) {
        throw openError(
          `the TLS handshake with ${address} failed: ${reason}`,
          error,
          "tls_failed",
        );
      }
      throw openError(
        `the connection to ${address} failed during the handshake: ${reason}`,
        error,
      );
    } finally {
      done = true;
      stop();
      current.off("connect", onConnect);
      current.off("secureConnect", onSecure);
    }
  })();
  return { result, fail };
}

/**
 * A WebSocket client, in the shape of the WHATWG `WebSocketStream`
 * proposal, on Node, Deno and Bun alike: it connects with `node:net`
 * (`ws:`) or `node:tls` (`wss:`, with SNI and ALPN "http/1.1"), sends the
 * opening handshake, checks the answer (RFC 6455 §4.1) and then speaks the
 * protocol with the full codec (see {@linkcode WebSocketConnection}).
 *
 * - `http:` and `https:` URLs are read as `ws:` and `wss:`, as browsers
 *   read them; `url` is the normalized URL, its fragment dropped.
 * - `opened` and `closed` reject with a {@linkcode HandshakeError} when the
 *   server answers wrongly (`status` is the status it sent, 0 if the answer
 *   is not HTTP), and with a {@linkcode WebSocketError} with close code
 *   1006 when the name lookup, the connection, TLS or the
 *   `handshakeTimeout` fails; the `cause` is the runtime's error.
 * - Aborting `signal`, or calling `close()`, before the connection is open
 *   drops it. `signal` does nothing once it is open.
 *
 * @example Talking to an echo server
 * ```ts
 * import { createServer } from "node:http";
 * import { upgrade } from "./adapters/node.ts";
 * import { WebSocketStream } from "./client.ts";
 * import assert from "node:assert/strict";
 *
 * // An echo server on a free port.
 * const server = createServer();
 * server.on("upgrade", async (request, socket, head) => {
 *   const { readable, writable } = await upgrade(request, socket, head).opened;
 *   await readable.pipeTo(writable).catch(() => {});
 * });
 * await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
 * const { port } = server.address() as { port: number };
 *
 * const client = new WebSocketStream(`ws://127.0.0.1:${port}/echo`);
 * assert.equal(client.url, `ws://127.0.0.1:${port}/echo`);
 * const { readable, writable, protocol } = await client.opened;
 * assert.equal(protocol, "");
 * const writer = writable.getWriter();
 * const reader = readable.getReader();
 * await writer.write("hello");
 * assert.equal((await reader.read()).value, "hello");
 * await writer.write(new Uint8Array([1, 2, 3]));
 * assert.deepEqual((await reader.read()).value, new Uint8Array([1, 2, 3]));
 *
 * client.close({ closeCode: 1000, reason: "done" });
 * assert.deepEqual(await client.closed, { closeCode: 1000, reason: "" });
 * await new Promise((resolve) => server.close(resolve));
 * ```
 *
 * @example A connection that cannot open
 * ```ts
 * import { createServer } from "node:net";
 * import { WebSocketStream } from "./client.ts";
 * import { WebSocketError } from "./errors.ts";
 * import assert from "node:assert/strict";
 *
 * // A port nobody listens on: take a free one, then free it.
 * const server = createServer();
 * await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
 * const { port } = server.address() as { port: number };
 * await new Promise((resolve) => server.close(resolve));
 *
 * const client = new WebSocketStream(`ws://127.0.0.1:${port}`);
 * await assert.rejects(
 *   client.opened,
 *   (error) => error instanceof WebSocketError && error.closeCode === 1006,
 * );
 * await assert.rejects(client.closed, WebSocketError);
 * ```
 */
export class WebSocketStream<S extends boolean = false>
  extends WebSocketConnection<S> {
  // The attempt, until it has settled: then nothing (a connection that
  // lasts for hours holds none of its closures).
  #dial: Dial | null;

  /**
   * Starts connecting to `url`.
   *
   * @throws {TypeError} if the URL is not `ws:`, `wss:`, `http:` or
   * `https:`, a subprotocol is not a token or is offered twice, or a header
   * is the handshake's own.
   * @throws {RangeError} if an option is out of range.
   */
  constructor(url: string | URL, options: WebSocketStreamOptions<S> = {}) {
    const {
      protocols,
      signal,
      headers,
      origin,
      handshakeTimeout = 10000,
      tls: tlsOptions = {},
      httpVersion = "1.1",
      ...connectionOptions
    } = options;
    if (
      httpVersion !== "1.1" && httpVersion !== "2" && httpVersion !== "auto"
    ) {
      throw new TypeError(
        `Cannot open WebSocket: httpVersion must be "1.1", "2" or "auto", got ${
          String(httpVersion)
        }`,
      );
    }
    const deflate = checkPerMessageDeflateOptions(
      connectionOptions.perMessageDeflate,
    );
    const handshake = clientHandshake(url, {
      protocols,
      headers,
      origin,
      extensions: deflate === null ? "" : offerPerMessageDeflate(deflate),
    });
    const timeout = checkTime("handshakeTimeout", handshakeTimeout);
    // Connecting starts once the options have passed the connection's
    // checks, so that a bad option leaves no socket behind.
    let start!: (dial: Dial) => void;
    const transport = new Promise<HandshakeResult>((resolve, reject) => {
      start = (dial) => dial.result.then(resolve, reject);
    });
    super(transport, {
      ...connectionOptions,
      role: "client",
      url: handshake.url.href,
    });
    const dialOptions = {
      timeout,
      tls: tlsOptions,
      signal,
      perMessageDeflate: deflate,
    };
    const http2 = httpVersion === "2" ||
      (httpVersion === "auto" && handshake.url.protocol === "wss:");
    this.#dial = http2
      ? dialEither(handshake, dialOptions, httpVersion === "auto")
      : dial(handshake, dialOptions);
    start(this.#dial);
    const settled = () => (this.#dial = null);
    this.#dial.result.then(settled, settled);
  }

  /**
   * Starts the close handshake, as {@linkcode WebSocketConnection.close}
   * does. Before the connection is open, drops it instead: `opened` and
   * `closed` reject with a {@linkcode WebSocketError} (1006).
   *
   * @throws {RangeError} if the code is not 1000 or 3000–4999, or the reason
   * is longer than 123 bytes of UTF-8.
   */
  override close(options: WebSocketCloseOptions = {}): void {
    // Checks the arguments, and closes at once if the handshake is done.
    super.close(options);
    this.#dial?.fail(
      openError("the connection was closed before it opened"),
    );
  }
}
