/**
 * A WebSocket connection over any byte duplex, in the shape of the WHATWG
 * WebSocketStream: the frame and message streams wired together with the
 * close handshake, pings and pongs, heartbeats and timeouts.
 *
 * @module
 */

import type { Role } from "./frame.ts";
import type { DecodedMessage } from "./message_decoder_stream.ts";
import type { MessageInput } from "./message_encoder_stream.ts";
import type { PerMessageDeflateOptions } from "./permessage_deflate.ts";
import { Session } from "./_session.ts";
import {
  type Offered,
  SEND_SHARED,
  type SharedMessage,
  type WhenFull,
} from "./_shared_message.ts";

export { DEFAULT_CLOSE_TIMEOUT } from "./_protocol.ts";

/** A two-way byte stream: a TCP or TLS socket, an HTTP/2 stream, a pipe. */
export interface ByteDuplex {
  /** Bytes from the peer. */
  readonly readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer. Closing it ends the sending direction (a TCP FIN). */
  readonly writable: WritableStream<Uint8Array>;
}

/** A byte duplex with what its opening handshake settled. */
export interface HandshakeResult extends ByteDuplex {
  /** The subprotocol both sides agreed on, or "". */
  protocol?: string;
  /** The extensions both sides agreed on, as a header value, or "". */
  extensions?: string;
  /** Bytes that arrived after the handshake, before `readable` starts. */
  head?: Uint8Array;
}

/** A heartbeat: a ping every `interval` ms, and no pong within `timeout` ms drops the connection. */
export interface HeartbeatOptions {
  /** Milliseconds between pings. */
  interval: number;
  /**
   * Milliseconds to wait for the pong before the peer counts as gone.
   *
   * @default {the interval}
   */
  timeout?: number;
}

/** Options for {@linkcode WebSocketConnection}. */
export interface WebSocketConnectionOptions<S extends boolean = false> {
  /** Which end this is. */
  role: Role;
  /**
   * The URL of the connection, for reference.
   *
   * @default {""}
   */
  url?: string;
  /**
   * The largest frame payload accepted, in bytes (1009 beyond).
   *
   * @default {16777216} (16 MiB)
   */
  maxFrameSize?: number;
  /**
   * The largest message accepted, in bytes (1009 beyond).
   *
   * @default {16777216} (16 MiB), or no limit in streaming mode
   */
  maxMessageSize?: number;
  /**
   * Outgoing messages larger than this are sent in fragments of this size.
   *
   * @default {1048576} (1 MiB)
   */
  fragmentSize?: number;
  /**
   * The most bytes of messages that may wait in `writable`'s queue, behind
   * the one being sent, while the transport is full. An application that
   * writes without waiting for `write()` to resolve, to a peer that does
   * not read, reaches it, and the connection is dropped (1006) instead of
   * buffering without end. Strings count one byte per UTF-16 code unit,
   * streamed messages nothing. Infinity turns it off.
   *
   * @default {16777216} (16 MiB)
   */
  maxSendQueue?: number;
  /**
   * Deliver each message as an {@linkcode IncomingMessage} whose data
   * streams in, instead of as a whole `string` or `Uint8Array`.
   *
   * @default {false}
   */
  streaming?: S;
  /**
   * Compress messages with permessage-deflate (RFC 7692), if the peer
   * agrees: a client offers it, a server accepts an offer of it. The
   * connection compresses whenever the handshake agreed on it; these
   * options also set the threshold and zlib's level and memory. Then
   * `maxMessageSize` counts inflated bytes as they are inflated, and
   * `maxFrameSize` defaults to 17 MiB: a peer's largest message, if it does
   * not compress, comes as a slightly larger frame.
   *
   * @default {false}
   */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /**
   * Answer every ping with a pong automatically (RFC 6455 §5.5.2).
   *
   * @default {true}
   */
  autoPong?: boolean;
  /**
   * Ping the peer regularly and drop the connection (1006) if it stops
   * answering.
   *
   * @default {undefined} (no heartbeat)
   */
  heartbeat?: HeartbeatOptions;
  /**
   * Close the connection (1001) when nothing has arrived from the peer for
   * between this many milliseconds and twice as many. 0 turns it off.
   *
   * @default {0}
   */
  idleTimeout?: number;
  /**
   * Milliseconds to wait, once the close handshake starts, for it and the
   * transport to finish before the transport is dropped.
   *
   * @default {5000}
   */
  closeTimeout?: number;
  /**
   * Where a client's masking keys come from (tests make them fixed).
   *
   * @default {crypto.getRandomValues}
   */
  maskKey?: () => Uint8Array;
}

/** What {@linkcode WebSocketConnection.opened} gives once the connection is open. */
export interface WebSocketOpenInfo<S extends boolean = false> {
  /** Messages from the peer. Cancelling it closes the connection. */
  readable: ReadableStream<DecodedMessage<S>>;
  /**
   * Messages to the peer. `write()` resolves when the transport has taken
   * the message; closing it closes the connection.
   */
  writable: WritableStream<MessageInput>;
  /** The subprotocol both sides agreed on, or "". */
  protocol: string;
  /** The extensions both sides agreed on, or "". */
  extensions: string;
}

/** How a connection closed cleanly. */
export interface WebSocketCloseInfo {
  /** The code the peer's Close frame carried (1005 if none). */
  closeCode: number;
  /** The reason it gave. */
  reason: string;
}

/** What an application may pass to {@linkcode WebSocketConnection.close}. */
export interface WebSocketCloseOptions {
  /**
   * 1000, or 3000–4999.
   *
   * @default {undefined} (a Close frame with no code: the peer sees 1005)
   */
  closeCode?: number;
  /**
   * At most 123 bytes of UTF-8.
   *
   * @default {""}
   */
  reason?: string;
}

// Set by WebSocketConnection, which alone reaches its session.
let closeGoingAway: (ws: WebSocketConnection<boolean>) => void;

/**
 * A WebSocket connection over a byte duplex, in either role: the object
 * every entry point of this library returns. Its shape is the WHATWG
 * WebSocketStream's (`opened`, `closed`, `close()`), plus `ping()`.
 *
 * - Messages flow with backpressure both ways: an unread `readable` stops
 *   the transport being read; `write()` resolves when the transport has room.
 * - Pings are answered (`autoPong`); `ping()` resolves on its pong;
 *   `heartbeat` and `idleTimeout` drop dead or idle peers.
 * - The close handshake (RFC 6455 §7): codes and reasons checked both ways,
 *   the Close answered once, nothing sent after it, `closeTimeout` bounding
 *   it, and the server closing the transport first.
 * - A peer that breaks the protocol gets a Close with the code the RFC
 *   names, and `closed` rejects with the {@linkcode WebSocketError}; a
 *   transport that dies rejects it with 1006. A normal close resolves it.
 * - Once closed, nothing is left behind: no timer, no listener, no promise.
 *
 * @example A client and a server over an in-memory duplex
 * ```ts
 * import { WebSocketConnection } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * const up = new TransformStream<Uint8Array, Uint8Array>();
 * const down = new TransformStream<Uint8Array, Uint8Array>();
 * const client = new WebSocketConnection(
 *   { readable: down.readable, writable: up.writable },
 *   { role: "client" },
 * );
 * const server = new WebSocketConnection(
 *   { readable: up.readable, writable: down.writable },
 *   { role: "server" },
 * );
 *
 * const { writable } = await client.opened;
 * const { readable } = await server.opened;
 * const writer = writable.getWriter();
 * await writer.write("hello");
 * const reader = readable.getReader();
 * assert.equal((await reader.read()).value, "hello");
 *
 * client.close({ closeCode: 1000, reason: "done" });
 * assert.deepEqual(await server.closed, { closeCode: 1000, reason: "done" });
 * // The client gets the server's answer: the same code, no reason.
 * assert.deepEqual(await client.closed, { closeCode: 1000, reason: "" });
 * ```
 */
export class WebSocketConnection<S extends boolean = false> {
  /** The URL given in the options, or "". */
  readonly url: string;
  /** Resolves with the streams once the connection is open. */
  readonly opened: Promise<WebSocketOpenInfo<S>>;
  /**
   * Resolves with the peer's code and reason after a clean close; rejects
   * with a {@linkcode WebSocketError} after an unclean one.
   */
  readonly closed: Promise<WebSocketCloseInfo>;
  readonly #session: Session<S>;

  /**
   * Wires a connection over `transport`: a byte duplex whose opening
   * handshake is done, or a promise of one (with what the handshake
   * settled) for a client that is still connecting.
   */
  constructor(
    transport: ByteDuplex | Promise<HandshakeResult>,
    options: WebSocketConnectionOptions<S>,
  ) {
    const session = this.#session = new Session(transport, options);
    this.url = options.url ?? "";
    this.opened = session.opened;
    this.closed = session.closed;
  }

  /**
   * Starts the close handshake, if it has not started. The peer will see
   * `closeCode` and `reason`; `closed` settles when the handshake is done.
   *
   * @throws {RangeError} if the code is not 1000 or 3000–4999, or the reason
   * is longer than 123 bytes of UTF-8.
   */
  close(options: WebSocketCloseOptions = {}): void {
    this.#session.close(options);
  }

  /**
   * Sends a ping and resolves when its pong arrives (RFC 6455 §5.5.2).
   * Rejects if the connection closes first.
   *
   * @throws {RangeError} if `data` is more than 125 bytes.
   */
  ping(data?: Uint8Array | string): Promise<void> {
    return this.#session.ping(data);
  }

  /** Offers a broadcast (broadcast.ts). */
  [SEND_SHARED](
    message: SharedMessage,
    limit: number,
    whenFull: WhenFull,
  ): Offered {
    return this.#session.offerShared(message, limit, whenFull);
  }

  static {
    closeGoingAway = (ws) => ws.#session.goAway();
  }
}

/**
 * Starts the close handshake with 1001 (going away), as a server that shuts
 * down does. `close()` takes only the codes an application may send (1000
 * and 3000–4999, as in the WHATWG API); this is the server's own.
 */
export function goAway(ws: WebSocketConnection<boolean>): void {
  closeGoingAway(ws);
}
