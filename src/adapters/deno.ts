/**
 * WebSocket servers on `Deno.serve`. Deno never hands over the raw socket:
 * `Deno.upgradeWebSocket` gives a native, message-level WebSocket, which
 * this adapter bridges into the same shape as every other entry point
 * ({@linkcode WebSocketEndpoint}: `opened`, `closed`, `close()`,
 * `ping()`), after running this library's own handshake checks (origin
 * policy, subprotocols, the `accept` hook).
 *
 * What the bridge cannot give, compared with the full codec:
 *
 * - No read backpressure. Deno reads the socket as fast as it can and
 *   cannot be paused, so an unread `readable` cannot slow the peer down.
 *   Memory is bounded instead: once more than `maxQueuedBytes` (16 MiB)
 *   of messages wait to be read, the connection closes with 1009 and
 *   `closed` rejects with a `WebSocketError` (`message_too_big`). A peer
 *   that goes on sending after that Close has its connection reset by
 *   Deno, and sees 1006 rather than 1009.
 * - No `ping()`: Deno's server WebSocket has no ping API, so `ping()`
 *   rejects with a `TypeError`. Deno pings the peer itself every
 *   `idleTimeout` seconds (30 by default) and drops it if no pong comes.
 * - Deno's limits, not this library's: a frame over 64 MiB makes Deno drop
 *   the connection without a Close frame (the peer sees 1006, `closed`
 *   rejects), but a message in several frames has no limit at all: Deno
 *   holds the whole of it in memory before the bridge sees it. There is
 *   no `maxMessageSize`, `fragmentSize`, streamed messages or extensions
 *   (Deno does not offer permessage-deflate).
 * - Close codes are what Deno reports: a peer that drops the TCP
 *   connection after our Close can be reported as a clean 1005, and
 *   Deno's own close after a failure (a frame too large, a missed pong)
 *   reaches `closed` as a 1006 rejection. Deno's closing socket cannot be
 *   dropped: after `closeTimeout`, `closed` rejects but Deno keeps the
 *   connection until the peer goes.
 *
 * For the full codec on Deno, with backpressure both ways and every limit
 * and option, serve with `node:http` and its `'upgrade'` event instead
 * (the `./node` entry point): Deno hands over the raw socket there.
 *
 * @example An echo server on Deno.serve
 * ```ts
 * import { upgrade } from "./deno.ts";
 * import assert from "node:assert/strict";
 *
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   async (request) => {
 *     const { response, socket } = await upgrade(request, { origins: "*" });
 *     socket.opened.then(({ readable, writable }) => readable.pipeTo(writable))
 *       .catch(() => {});
 *     return response;
 *   },
 * );
 *
 * const client = new WebSocket(`ws://127.0.0.1:${server.addr.port}/`);
 * const reply = new Promise((resolve) => (client.onmessage = (e) => resolve(e.data)));
 * client.onopen = () => client.send("hello");
 * assert.equal(await reply, "hello");
 * const closed = new Promise<CloseEvent>((resolve) => (client.onclose = resolve));
 * client.close(1000);
 * assert.equal((await closed).code, 1000);
 * await server.shutdown();
 * ```
 *
 * @module
 */

import { CloseCode } from "../close_code.ts";
import {
  acceptUpgrade,
  type AcceptUpgradeOptions,
  HandshakeError,
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

/** Options for {@linkcode upgrade}: the handshake's, then the socket's. */
export interface DenoUpgradeOptions
  extends
    Omit<AcceptUpgradeOptions<Request>, "extensions">,
    NativeSocketOptions {
  /**
   * Deno pings the peer every this many seconds and drops the connection
   * if no pong comes in time; 0 turns it off (`Deno.upgradeWebSocket`'s
   * option).
   *
   * @default {30}
   */
  idleTimeout?: number;
  /**
   * Deno cannot stop reading the socket, so messages the application has
   * not read yet pile up: once more than this many bytes (UTF-16 code
   * units for text) wait, the connection is closed with 1009 and `closed`
   * rejects with a `WebSocketError` (`message_too_big`).
   *
   * @default {16777216} (16 MiB)
   */
  maxQueuedBytes?: number;
}

/** What {@linkcode upgrade} returns. */
export interface DenoUpgrade {
  /**
   * The response to return from the `Deno.serve` handler: the 101, or the
   * refusal (403 for a forbidden origin, the `accept` hook's response, 400
   * for a request that is no handshake, ...).
   */
  response: Response;
  /**
   * The connection. If the handshake was refused, its `opened` and
   * `closed` reject with a `HandshakeError`.
   */
  socket: WebSocketEndpoint;
}

// The parts of the Deno namespace used here, so that the file loads (and
// type-checks) without Deno's types.
interface DenoWebSocket {
  binaryType: string;
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string | Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: Event) => void) | null;
  onmessage: ((event: MessageEvent) => void) | null;
  onerror: ((event: Event) => void) | null;
  onclose: ((event: CloseEvent) => void) | null;
}

interface DenoNamespace {
  upgradeWebSocket(
    request: Request,
    options?: { protocol?: string; idleTimeout?: number },
  ): { socket: DenoWebSocket; response: Response };
}

const OPEN = 1;

/**
 * Answers a WebSocket handshake in a `Deno.serve` handler: checks it as
 * every adapter does (origin, version, subprotocols, the `accept` hook),
 * then upgrades with `Deno.upgradeWebSocket`. Return `response` from the
 * handler; use `socket` as any connection of this library. Binary
 * messages arrive as `Uint8Array`; `write()` resolves once Deno's send
 * buffer (`bufferedAmount`) is at most `writeHighWaterMark` bytes.
 *
 * @throws {RangeError} if an option is out of range.
 * @throws {TypeError} if not running on Deno.
 *
 * @example Choosing a subprotocol and refusing strangers
 * ```ts
 * import { upgrade } from "./deno.ts";
 * import assert from "node:assert/strict";
 *
 * const server = Deno.serve(
 *   { hostname: "127.0.0.1", port: 0, onListen() {} },
 *   async (request) => {
 *     const { response, socket } = await upgrade(request, {
 *       protocols: ["chat.v2", "chat.v1"],
 *       accept: (request) => new URL(request.url).searchParams.has("token"),
 *     });
 *     socket.opened.then(async ({ writable, protocol }) => {
 *       const writer = writable.getWriter();
 *       await writer.write(`speaking ${protocol}`);
 *       socket.close({ closeCode: 4000, reason: "that is all" });
 *     }).catch(() => {});
 *     return response;
 *   },
 * );
 * const url = `ws://127.0.0.1:${server.addr.port}/`;
 *
 * // Refused by the accept hook (403): the client never opens.
 * const stranger = new WebSocket(url);
 * stranger.onopen = () => assert.fail("a refused client never opens");
 * const failed = await new Promise<CloseEvent>((resolve) => (stranger.onclose = resolve));
 * assert.equal(failed.wasClean, false);
 *
 * const client = new WebSocket(`${url}?token=1`, ["chat.v1", "chat.v2"]);
 * const message = await new Promise<MessageEvent>((resolve) => (client.onmessage = resolve));
 * assert.equal(message.data, "speaking chat.v1"); // the client's first choice
 * const closed = await new Promise<CloseEvent>((resolve) => (client.onclose = resolve));
 * assert.equal(closed.code, 4000);
 * assert.equal(closed.reason, "that is all");
 * await server.shutdown();
 * ```
 */
export async function upgrade(
  request: Request,
  options: DenoUpgradeOptions = {},
): Promise<DenoUpgrade> {
  const deno = (globalThis as { Deno?: Partial<DenoNamespace> }).Deno;
  if (typeof deno?.upgradeWebSocket !== "function") {
    throw new TypeError(
      "Cannot upgrade: Deno.upgradeWebSocket is missing; outside Deno, use the node:http adapter",
    );
  }
  const bridge = new NativeBridge(request.url, {
    writeHighWaterMark: options.writeHighWaterMark,
    maxQueuedBytes: options.maxQueuedBytes,
    closeTimeout: options.closeTimeout,
    noPing: "Deno's server WebSocket cannot send pings (idleTimeout does)",
  });
  const result = await acceptUpgrade(asReceived(request), {
    origins: options.origins,
    protocols: options.protocols,
    accept: options.accept,
  });
  if (!result.ok) {
    const response = refusalResponse(result);
    bridge.refuse(
      new HandshakeError(`Refused the WebSocket handshake: ${result.reason}`, {
        code: result.code,
        status: response.status,
      }),
    );
    return { response, socket: bridge };
  }
  let upgraded: { socket: DenoWebSocket; response: Response };
  try {
    upgraded = deno.upgradeWebSocket(request, {
      protocol: result.protocol === "" ? undefined : result.protocol,
      idleTimeout: options.idleTimeout,
    });
  } catch (error) {
    // What Deno checks beyond RFC 6455: a request it cannot upgrade (over
    // HTTP/2, or whose body was read).
    const refusal = new HandshakeError(
      "Cannot upgrade: Deno cannot upgrade this request",
      { code: "refused", status: 400, cause: error },
    );
    bridge.refuse(refusal);
    return {
      response: new Response(refusal.message, { status: 400 }),
      socket: bridge,
    };
  }
  const { socket, response } = upgraded;
  socket.binaryType = "arraybuffer";
  const driver: NativeDriver = {
    send(data) {
      if (socket.readyState !== OPEN) return false;
      socket.send(data);
      return true;
    },
    bufferedAmount: () => socket.bufferedAmount,
    drainEvents: false,
    close: (code, reason) => socket.close(code, reason),
  };
  let failure: unknown;
  socket.onopen = () => bridge.open(driver, result.protocol, "");
  socket.onmessage = (event) => {
    const data = event.data;
    bridge.message(
      typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer),
    );
  };
  socket.onerror = (event) => {
    failure = (event as ErrorEvent).error ??
      new Error((event as ErrorEvent).message);
  };
  socket.onclose = (event) => {
    // Deno reports a dropped connection as code 0 or 1006, not clean.
    const clean = event.wasClean && event.code !== CloseCode.AbnormalClosure &&
      event.code !== 0;
    bridge.closeEvent(event.code, event.reason, clean, failure);
  };
  return { response, socket: bridge };
}
