/**
 * WebSocket servers on `Bun.serve`. Bun never hands over the raw socket:
 * `server.upgrade()` gives a native, message-level `ServerWebSocket`,
 * whose events go to the `websocket` handlers the server was created
 * with. {@linkcode createBunAdapter} makes both halves: the `websocket`
 * handlers to give `Bun.serve`, and an `upgrade` function for `fetch`
 * that runs this library's own handshake checks (origin policy,
 * subprotocols, the `accept` hook) and returns a socket in the same shape
 * as every other entry point ({@linkcode WebSocketEndpoint}).
 *
 * Backpressure works both ways: `write()` waits for Bun's `drain` while
 * Bun's send buffer holds more than `writeHighWaterMark` bytes, and Bun
 * stops reading the socket (`ws.pause()`) while more than
 * `readHighWaterMark` bytes wait unread in `readable`.
 *
 * What the bridge cannot give, compared with the full codec:
 *
 * - Bun's limits, not this library's: a message over `maxPayloadLength`
 *   (16 MiB) makes Bun close with 1009, which `closed` reports as a
 *   1006 rejection (Bun reports its own closes as 1006); no
 *   `maxMessageSize`, `fragmentSize` or streamed messages.
 * - When this side closes first, Bun ends the connection without waiting
 *   for the peer's answer, and `closed` resolves with the code and reason
 *   sent, not the peer's. `close()` without a code sends 1000 (Bun cannot
 *   send an empty Close frame).
 * - Bun answers pings itself and pings the peer every `idleTimeout`
 *   seconds (`sendPings`), closing idle connections.
 * - With `perMessageDeflate`, Bun negotiates compression itself and does
 *   not say what it agreed: `extensions` reads `"permessage-deflate"`
 *   when the client offered it, without parameters.
 * - Bun answers a client that offered subprotocols with its first one
 *   unless told otherwise (oven-sh/bun#18243), so when none is agreed the
 *   adapter deletes `Sec-WebSocket-Protocol` from the request before
 *   upgrading. Browsers (and Bun's own client) then fail the connection,
 *   as RFC 6455 lets a client do.
 * - The `websocket` handlers read their state from `ws.data`: every
 *   upgrade on that server must go through the adapter's `upgrade`.
 * - A Bun without `ws.pause()` cannot stop reading: then, as on Deno,
 *   once more than `maxQueuedBytes` wait unread the connection closes with
 *   1009.
 *
 * For the full codec on Bun, serve with `node:http` and its `'upgrade'`
 * event instead (the `./node` entry point): Bun hands over the raw socket
 * there.
 *
 * @example Serving on Bun (this part runs only on Bun)
 * ```ts
 * import { type BunServer, createBunAdapter } from "./bun.ts";
 * import assert from "node:assert/strict";
 *
 * const { websocket, upgrade } = createBunAdapter({ protocols: ["chat"] });
 * const options = {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   websocket,
 *   async fetch(request: Request, server: BunServer) {
 *     const { response, socket } = await upgrade(request, server);
 *     socket.opened.then(({ readable, writable }) => readable.pipeTo(writable))
 *       .catch(() => {});
 *     return response; // undefined once upgraded, as Bun wants
 *   },
 * };
 *
 * // Bun's own types are not needed: Bun.serve takes the options as they are.
 * const bun = (globalThis as {
 *   Bun?: { serve(o: typeof options): { port: number; stop(force?: boolean): void } };
 * }).Bun;
 * if (bun !== undefined) {
 *   const server = bun.serve(options);
 *   const client = new WebSocket(`ws://127.0.0.1:${server.port}/`, ["chat"]);
 *   const reply = new Promise((resolve) => (client.onmessage = (e) => resolve(e.data)));
 *   client.onopen = () => client.send("hello");
 *   assert.equal(await reply, "hello");
 *   assert.equal(client.protocol, "chat");
 *   const closed = new Promise<CloseEvent>((resolve) => (client.onclose = resolve));
 *   client.close(1000);
 *   assert.equal((await closed).code, 1000);
 *   server.stop(true);
 * }
 * ```
 *
 * @example A request that is no handshake is refused (runs anywhere)
 * ```ts
 * import { createBunAdapter } from "./bun.ts";
 * import { HandshakeError } from "../handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const { upgrade } = createBunAdapter();
 * const server = { upgrade: () => assert.fail("not a handshake: no upgrade") };
 * const { response, socket } = await upgrade(new Request("http://localhost/"), server);
 * assert.equal(response?.status, 400);
 * await assert.rejects(socket.opened, HandshakeError);
 * ```
 *
 * @module
 */

import { CloseCode } from "../close_code.ts";
import { checkSize } from "../_options.ts";
import {
  acceptUpgrade,
  type AcceptUpgradeOptions,
  HandshakeError,
  parseExtensions,
  refusalResponse,
} from "../handshake.ts";
import {
  asReceived,
  NativeBridge,
  type NativeDriver,
  type NativeSocketOptions,
  type WebSocketEndpoint,
} from "./_native.ts";

export type {
  NativeMessageInput,
  NativeSocketOptions,
  WebSocketEndpoint,
  WebSocketEndpointOpenInfo,
} from "./_native.ts";

/**
 * Options for each upgrade: the handshake's, then the socket's. Given to
 * {@linkcode createBunAdapter} for every upgrade, or to
 * {@linkcode BunAdapter.upgrade} for one (say, per route), over those.
 */
export interface BunUpgradeOptions
  extends
    Omit<AcceptUpgradeOptions<Request>, "extensions">,
    NativeSocketOptions {
  /**
   * Bun stops reading the socket (`ws.pause()`) while more than this many
   * bytes (UTF-16 code units for text) wait unread in `readable`, so the
   * peer is slowed down by TCP.
   *
   * @default {1048576} (1 MiB)
   */
  readHighWaterMark?: number;
  /**
   * Only for a Bun whose `ServerWebSocket` has no `pause()`: once more
   * than this many bytes wait unread, the connection is closed with 1009
   * and `closed` rejects with a `WebSocketError` (`message_too_big`).
   *
   * @default {16777216} (16 MiB)
   */
  maxQueuedBytes?: number;
}

/**
 * Options for {@linkcode createBunAdapter}: those of every upgrade, and
 * Bun's own for the server's WebSocket handlers.
 */
export interface BunAdapterOptions extends BunUpgradeOptions {
  /**
   * The largest message Bun accepts; beyond it Bun closes with 1009.
   *
   * @default {16777216} (16 MiB)
   */
  maxPayloadLength?: number;
  /**
   * Seconds without traffic before Bun closes the connection (it pings
   * first, with `sendPings`); 0 turns it off.
   *
   * @default {120}
   */
  idleTimeout?: number;
  /**
   * Bytes Bun may buffer for sending before `send()` drops messages; must
   * be above `writeHighWaterMark`, which keeps the bridge below it.
   *
   * @default {16777216} (16 MiB)
   */
  backpressureLimit?: number;
  /**
   * Whether Bun pings idle peers itself.
   *
   * @default {true}
   */
  sendPings?: boolean;
  /**
   * Whether Bun accepts permessage-deflate (it negotiates it itself).
   *
   * @default {false}
   */
  perMessageDeflate?: boolean;
}

/** The parts of Bun's `ServerWebSocket` this adapter uses. */
export interface BunServerWebSocket {
  /** What `server.upgrade()` was given as `data`. */
  readonly data: BunSocketData;
  /** 1 while open. */
  readonly readyState: number;
  /** "uint8array" makes binary messages plain `Uint8Array`s. */
  binaryType?: string;
  /** -1: buffered (backpressure), 0: dropped (or empty), more: bytes sent. */
  send(data: string | Uint8Array): number;
  /** Sends a Close frame and ends the connection. */
  close(code?: number, reason?: string): void;
  /** Drops the connection. */
  terminate(): void;
  /** Sends a ping; the same results as `send`. */
  ping(data?: Uint8Array): number;
  /** Bytes buffered for sending. */
  getBufferedAmount?(): number;
  /** Stops reading the socket. */
  pause?(): void;
  /** Reads the socket again. */
  resume?(): void;
}

/** The per-connection state the adapter keeps in `ws.data`. */
export interface BunSocketData {
  /** The adapter's own (internal). */
  readonly connection: unknown;
}

/** The parts of Bun's `Server` that `upgrade` uses. */
export interface BunServer {
  /** Upgrades the request; `false` if Bun refuses it. */
  upgrade(
    request: Request,
    options: { headers?: HeadersInit; data: BunSocketData },
  ): boolean;
}

/** The `websocket` handlers to give `Bun.serve`, with Bun's options. */
export interface BunWebSocketHandler {
  /** Bun's limit on an incoming message. */
  maxPayloadLength: number;
  /** Bun's idle timeout, in seconds. */
  idleTimeout: number;
  /** Bun's limit on buffered outgoing bytes. */
  backpressureLimit: number;
  /** Always false: the bridge keeps below `backpressureLimit` itself. */
  closeOnBackpressureLimit: boolean;
  /** Whether Bun pings idle peers. */
  sendPings: boolean;
  /** Whether Bun accepts permessage-deflate. */
  perMessageDeflate: boolean;
  /** Bun's `open` event. */
  open(ws: BunServerWebSocket): void;
  /** Bun's `message` event. */
  message(ws: BunServerWebSocket, message: string | Uint8Array): void;
  /** Bun's `drain` event. */
  drain(ws: BunServerWebSocket): void;
  /** Bun's `pong` event. */
  pong(ws: BunServerWebSocket, data: Uint8Array): void;
  /** Bun's `close` event. */
  close(ws: BunServerWebSocket, code: number, reason: string): void;
}

/** What {@linkcode BunAdapter.upgrade} returns. */
export interface BunUpgrade {
  /**
   * What `fetch` returns: `undefined` once upgraded (Bun has answered),
   * or the refusal (403 for a forbidden origin, the `accept` hook's
   * response, 400 for a request that is no handshake, ...).
   */
  response: Response | undefined;
  /**
   * The connection. If the handshake was refused, its `opened` and
   * `closed` reject with a `HandshakeError`.
   */
  socket: WebSocketEndpoint;
}

/** What {@linkcode createBunAdapter} returns. */
export interface BunAdapter {
  /** The handlers to give `Bun.serve` as `websocket`. */
  websocket: BunWebSocketHandler;
  /**
   * Answers a WebSocket handshake in `fetch`: checks it, upgrades with
   * `server.upgrade()`, and returns the response for `fetch` to return
   * and the connection. `options` override the adapter's for this one.
   */
  upgrade(
    request: Request,
    server: BunServer,
    options?: BunUpgradeOptions,
  ): Promise<BunUpgrade>;
}

const MiB = 1024 * 1024;
const OPEN = 1;

// What one connection needs between upgrade() and Bun's handlers.
interface Connection {
  bridge: NativeBridge;
  protocol: string;
  extensions: string;
  // send() returned -1 and no drain came since (for a Bun without
  // getBufferedAmount()).
  pressured: boolean;
}

function connectionOf(ws: BunServerWebSocket): Connection {
  return ws.data.connection as Connection;
}

/**
 * Makes the two halves of a WebSocket server on `Bun.serve`: the
 * `websocket` handlers to create the server with, and `upgrade` for its
 * `fetch`. Binary messages arrive as `Uint8Array`.
 *
 * @throws {RangeError} if an option is out of range, or
 * `writeHighWaterMark` is not below `backpressureLimit`.
 *
 * @example Per-route subprotocols, with one server
 * ```ts
 * import { createBunAdapter, type BunServer } from "./bun.ts";
 *
 * const { websocket, upgrade } = createBunAdapter({ origins: "same-origin" });
 * const fetch = async (request: Request, server: BunServer) => {
 *   const path = new URL(request.url).pathname;
 *   const { response, socket } = await upgrade(request, server, {
 *     protocols: path === "/chat" ? ["chat.v1"] : ["feed.v1"],
 *   });
 *   socket.opened.then(({ readable, writable }) => readable.pipeTo(writable))
 *     .catch(() => {});
 *   return response;
 * };
 * // On Bun: Bun.serve({ fetch, websocket });
 * void fetch;
 * void websocket;
 * ```
 */
export function createBunAdapter(options: BunAdapterOptions = {}): BunAdapter {
  const maxPayloadLength = checkSize(
    "maxPayloadLength",
    options.maxPayloadLength ?? 16 * MiB,
  );
  const backpressureLimit = checkSize(
    "backpressureLimit",
    options.backpressureLimit ?? 16 * MiB,
  );
  const idleTimeout = options.idleTimeout ?? 120;
  if (!Number.isInteger(idleTimeout) || idleTimeout < 0) {
    throw new RangeError(
      `Cannot use idleTimeout: expected whole seconds, got ${idleTimeout}`,
    );
  }
  const perMessageDeflate = options.perMessageDeflate === true;
  const checkMark = (mark: number | undefined) => {
    if ((mark ?? MiB) >= backpressureLimit) {
      throw new RangeError(
        `Cannot use writeHighWaterMark: ${
          mark ?? MiB
        } is not below backpressureLimit (${backpressureLimit})`,
      );
    }
  };
  checkMark(options.writeHighWaterMark);

  const websocket: BunWebSocketHandler = {
    maxPayloadLength,
    idleTimeout,
    backpressureLimit,
    closeOnBackpressureLimit: false,
    sendPings: options.sendPings ?? true,
    perMessageDeflate,
    open(ws) {
      ws.binaryType = "uint8array";
      const connection = connectionOf(ws);
      const driver: NativeDriver = {
        send(data) {
          if (ws.readyState !== OPEN) return false;
          const sent = ws.send(data);
          if (sent === -1) connection.pressured = true;
          // An empty message sent is 0 bytes sent, too.
          return sent !== 0 || data.length === 0;
        },
        bufferedAmount: () =>
          ws.getBufferedAmount?.() ?? (connection.pressured ? Infinity : 0),
        drainEvents: true,
        close: (code, reason) => ws.close(code, reason),
        terminate: () => ws.terminate(),
        ping: (payload) =>
          ws.readyState === OPEN &&
          (ws.ping(payload) !== 0 || payload.length === 0),
        pause: ws.pause === undefined ? undefined : () => ws.pause!(),
        resume: ws.resume === undefined ? undefined : () => ws.resume!(),
      };
      connection.bridge.open(
        driver,
        connection.protocol,
        connection.extensions,
      );
    },
    message(ws, message) {
      connectionOf(ws).bridge.message(
        typeof message === "string" ? message : new Uint8Array(
          message.buffer,
          message.byteOffset,
          message.byteLength,
        ),
      );
    },
    drain(ws) {
      const connection = connectionOf(ws);
      connection.pressured = false;
      connection.bridge.drain();
    },
    pong(ws, data) {
      connectionOf(ws).bridge.pong(data);
    },
    close(ws, code, reason) {
      // Bun reports a connection it dropped, or closed itself after a
      // failure (a message too big), as 1006.
      connectionOf(ws).bridge.closeEvent(
        code,
        reason,
        code !== CloseCode.AbnormalClosure,
      );
    },
  };

  const upgrade = async (
    request: Request,
    server: BunServer,
    overrides: BunUpgradeOptions = {},
  ): Promise<BunUpgrade> => {
    const settings: BunUpgradeOptions = { ...options, ...overrides };
    checkMark(settings.writeHighWaterMark);
    const bridge = new NativeBridge(request.url, {
      writeHighWaterMark: settings.writeHighWaterMark,
      readHighWaterMark: settings.readHighWaterMark,
      maxQueuedBytes: settings.maxQueuedBytes,
      closeTimeout: settings.closeTimeout,
    });
    const result = await acceptUpgrade(asReceived(request), {
      origins: settings.origins,
      protocols: settings.protocols,
      accept: settings.accept,
    });
    if (!result.ok) {
      const response = refusalResponse(result);
      bridge.refuse(
        new HandshakeError(
          `Refused the WebSocket handshake: ${result.reason}`,
          { code: result.code, status: response.status },
        ),
      );
      return { response, socket: bridge };
    }
    const offered = request.headers.get("sec-websocket-extensions");
    const extensions = perMessageDeflate && offered !== null &&
        parseExtensions(offered).some((offer) =>
          offer.name === "permessage-deflate"
        )
      ? "permessage-deflate"
      : "";
    const connection: Connection = {
      bridge,
      protocol: result.protocol,
      extensions,
      pressured: false,
    };
    let headers: HeadersInit | undefined;
    if (result.protocol !== "") {
      headers = { "sec-websocket-protocol": result.protocol };
    } else {
      // Without a Sec-WebSocket-Protocol of ours, Bun answers with the
      // client's first offer (oven-sh/bun#18243), unless the request no
      // longer has it. (Browsers then fail the connection, as RFC 6455
      // §4.1 lets them, rather than speak a protocol the server does not.)
      try {
        request.headers.delete("sec-websocket-protocol");
      } catch {
        // Immutable headers: Bun picks the client's first.
      }
    }
    // Bun runs the open handler from inside upgrade().
    if (!server.upgrade(request, { headers, data: { connection } })) {
      const refusal = new HandshakeError(
        "Cannot upgrade: Bun cannot upgrade this request",
        { code: "refused", status: 400 },
      );
      bridge.refuse(refusal);
      return {
        response: new Response(refusal.message, { status: 400 }),
        socket: bridge,
      };
    }
    return { response: undefined, socket: bridge };
  };

  return { websocket, upgrade };
}
