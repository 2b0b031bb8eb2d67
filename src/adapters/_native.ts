// The bridge shared by the Deno.serve and Bun.serve adapters: a runtime's
// native, message-level server WebSocket in the shape every entry point of
// this library returns (`opened`, `closed`, `close()`, `ping()`).
//
// The runtime runs the protocol (framing, masking, UTF-8 checks, the close
// handshake, its own size limits); the bridge adds what the native API
// lacks: streams, write backpressure from the runtime's send buffer, read
// backpressure where the runtime can pause reading (else a bounded queue),
// the library's close-code checks, `closed` as a promise, and a timeout on
// the close handshake.

import { type Deferred, deferred } from "../_deferred.ts";
import { now } from "../_alarm.ts";
import { ProtocolHostBase } from "../_protocol_host.ts";
import {
  type CloseBody,
  DEFAULT_CLOSE_TIMEOUT,
  type Outcome,
  Protocol,
  type ProtocolHost,
  State,
} from "../_protocol.ts";
import { Opcode } from "../opcode.ts";
import { checkClose, pingPayload } from "../_endpoint.ts";
import { checkSize, checkTime } from "../_options.ts";
import type {
  WebSocketCloseInfo,
  WebSocketCloseOptions,
} from "../connection.ts";
import { connectionLost } from "../_connection_lost.ts";
import { WebSocketError } from "../errors.ts";
import type { Message } from "../message.ts";
import { CloseCode } from "../close_code.ts";
import {
  Offered,
  type OutboxHost,
  SEND_SHARED,
  type SharedMessage,
  SharedOutbox,
  type WhenFull,
} from "../_shared_message.ts";

/**
 * The request as the handshake should judge it. Deno.serve and Bun.serve
 * make the URL of a request that came without a `Host` header from the
 * server's own address (`http://localhost:PORT/`), and acceptUpgrade takes
 * a URL's authority where a Fetch request has no `Host`; here that would
 * be made up. Without its URL, the request is refused with 400 (RFC 9112
 * §3.2) before any hook sees it.
 */
export function asReceived(request: Request): Request {
  return request.headers.has("host")
    ? request
    : { method: request.method, headers: request.headers } as Request;
}

/**
 * What a bridged socket's `writable` accepts: text as a `string`, binary
 * as bytes. Not the codec's streamed `OutgoingMessage`: native WebSockets
 * only send whole messages.
 */
export type NativeMessageInput =
  | string
  | Uint8Array
  | ArrayBuffer
  | ArrayBufferView;

/** What {@linkcode WebSocketEndpoint.opened} gives once the connection is open. */
export interface WebSocketEndpointOpenInfo {
  /** Messages from the peer: text as `string`, binary as `Uint8Array`. */
  readable: ReadableStream<Message>;
  /** Messages to the peer. Closing or aborting it closes the connection. */
  writable: WritableStream<NativeMessageInput>;
  /** The subprotocol both sides agreed on, or "". */
  protocol: string;
  /** The extensions both sides agreed on, or "". */
  extensions: string;
}

/**
 * The WebSocketStream shape that every entry point returns: a
 * `WebSocketConnection` (the full codec) and the sockets bridged from
 * `Deno.serve` and `Bun.serve` alike, so application code can take either.
 */
export interface WebSocketEndpoint {
  /** The URL of the connection (a server's: the request URL). */
  readonly url: string;
  /** Resolves with the streams once the connection is open. */
  readonly opened: Promise<WebSocketEndpointOpenInfo>;
  /**
   * Resolves with the close code and reason after a clean close; rejects
   * with a `WebSocketError` after an unclean one.
   */
  readonly closed: Promise<WebSocketCloseInfo>;
  /**
   * Starts the close handshake.
   *
   * @throws {RangeError} if the code is not 1000 or 3000–4999, or the
   * reason is longer than 123 bytes of UTF-8.
   */
  close(options?: WebSocketCloseOptions): void;
  /**
   * Sends a ping and resolves when its pong arrives. Rejects with a
   * `TypeError` where the runtime cannot send pings (Deno's server
   * WebSocket), and with a `RangeError` for more than 125 bytes.
   */
  ping(data?: Uint8Array | string): Promise<void>;
}

/** Options every bridged socket takes. */
export interface NativeSocketOptions {
  /**
   * `write()` resolves once at most this many bytes wait in the runtime's
   * send buffer (and, until then, the next message waits).
   *
   * @default {1048576} (1 MiB)
   */
  writeHighWaterMark?: number;
  /**
   * Milliseconds to wait, once `close()` has sent a Close frame, for the
   * runtime to report the connection closed; past them `closed` rejects
   * with a `WebSocketError` (`close_timeout`, 1006).
   *
   * @default {5000}
   */
  closeTimeout?: number;
}

// What the bridge needs from a runtime's native socket.
export interface NativeDriver {
  // false: the runtime dropped the message (the socket is closing).
  send(data: string | Uint8Array): boolean;
  // Bytes sent but not yet handed to the operating system.
  bufferedAmount(): number;
  // Whether the runtime calls NativeBridge.drain(); else the bridge polls.
  readonly drainEvents: boolean;
  close(code?: number, reason?: string): void;
  // Drops the connection without a handshake, where the runtime can.
  terminate?(): void;
  // false: dropped. Absent: the runtime cannot ping.
  ping?(payload: Uint8Array): boolean;
  // Read backpressure, where the runtime can stop reading the socket.
  pause?(): void;
  resume?(): void;
}

export interface NativeBridgeOptions extends NativeSocketOptions {
  // Reading pauses above this many queued bytes (drivers with pause()).
  readHighWaterMark?: number;
  // Without pause(): more queued than this fails the connection with 1009.
  maxQueuedBytes?: number;
  // Why ping() cannot work, for a driver without ping().
  noPing?: string;
}

// Queued size: bytes for binary, UTF-16 code units for text (each one to
// three bytes on the wire). Bun's types let the chunk be undefined.
function messageSize(message: Message | undefined): number {
  if (message === undefined) return 0;
  return typeof message === "string" ? message.length : message.byteLength;
}

function toNative(message: unknown): string | Uint8Array {
  if (typeof message === "string" || message instanceof Uint8Array) {
    return message;
  }
  if (message instanceof ArrayBuffer) return new Uint8Array(message);
  if (ArrayBuffer.isView(message)) {
    return new Uint8Array(
      message.buffer,
      message.byteOffset,
      message.byteLength,
    );
  }
  throw new TypeError(
    "Cannot send message: a native WebSocket sends a string or bytes; a streamed message needs the full codec (the node:http adapter)",
  );
}

const MiB = 1024 * 1024;

/**
 * A native socket as a {@linkcode WebSocketEndpoint}. The adapter creates
 * it, then feeds it the runtime's events: `open`, `message`, `drain`,
 * `pong` and `closeEvent` (or `refuse` if the handshake is refused). The
 * runtime runs the close handshake; the bridge's protocol (`_protocol.ts`,
 * as for the codec's connections) decides when to start it, which pings a
 * pong answers, and when the close has taken too long.
 */
export class NativeBridge extends ProtocolHostBase
  implements WebSocketEndpoint, ProtocolHost, OutboxHost {
  readonly url: string;
  readonly opened: Promise<WebSocketEndpointOpenInfo>;
  readonly closed: Promise<WebSocketCloseInfo>;

  readonly #opened = deferred<WebSocketEndpointOpenInfo>();
  readonly #closed = deferred<WebSocketCloseInfo>();
  readonly #writeHighWaterMark: number;
  readonly #readHighWaterMark: number;
  readonly #maxQueuedBytes: number;
  readonly #closeTimeout: number;
  readonly #noPing: string;

  // Made when the runtime opens the socket.
  // Refused, or closed before it opened.
  #failedToOpen = false;
  #pendingClose: WebSocketCloseOptions | null = null;

  #driver: NativeDriver | null = null;
  #readable!: ReadableStreamDefaultController<Message>;
  #writable: WritableStreamDefaultController | null = null;
  #paused = false;
  #cancelled = false;

  // A write waiting for the send buffer to drain below the mark.
  #room: Deferred<void> | null = null;
  // Broadcasts that wait for this connection (_shared_message.ts).
  readonly #outbox = new SharedOutbox(this);
  #pollTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(url: string, options: NativeBridgeOptions = {}) {
    super();
    this.url = url;
    this.#writeHighWaterMark = checkSize(
      "writeHighWaterMark",
      options.writeHighWaterMark ?? MiB,
    );
    this.#readHighWaterMark = checkSize(
      "readHighWaterMark",
      options.readHighWaterMark ?? MiB,
    );
    this.#maxQueuedBytes = checkSize(
      "maxQueuedBytes",
      options.maxQueuedBytes ?? 16 * MiB,
      { infinite: true },
    );
    this.#closeTimeout = checkTime(
      "closeTimeout",
      options.closeTimeout ?? DEFAULT_CLOSE_TIMEOUT,
    );
    this.#noPing = options.noPing ?? "the runtime cannot send pings";
    this.opened = this.#opened.promise;
    this.closed = this.#closed.promise;
  }

  // Nothing more may be sent: our Close is out, or the connection is over.
  #closing(): boolean {
    return this.#failedToOpen || this.core?.closing === true;
  }

  #over(): boolean {
    return this.#failedToOpen || this.core?.state === State.Closed;
  }

  /** The handshake was refused: `opened` and `closed` reject with `error`. */
  refuse(error: unknown): void {
    this.#failOpen(error);
  }

  #failOpen(error: unknown): void {
    this.#failedToOpen = true;
    this.#opened.reject(error);
    this.#closed.reject(error);
  }

  /** The runtime opened the socket. */
  open(driver: NativeDriver, protocol: string, extensions: string): void {
    if (this.#failedToOpen) return;
    this.#driver = driver;
    // The runtime answers pings, runs its own heartbeat, and ends the
    // socket itself (no closeFlushed(), so the role changes nothing).
    this.core = new Protocol(this, {
      role: "server",
      closeTimeout: this.#closeTimeout,
      autoPong: false,
    }, now());
    const readable = new ReadableStream<Message>({
      start: (controller) => {
        this.#readable = controller;
      },
      pull: () => {
        if (this.#paused) {
          this.#paused = false;
          this.#driver?.resume?.();
        }
      },
      cancel: () => {
        this.#cancelled = true;
        if (this.#paused) this.#driver?.resume?.();
        this.core!.close(now(), {});
      },
    }, { highWaterMark: this.#readHighWaterMark, size: messageSize });
    const writable = new WritableStream<NativeMessageInput>({
      start: (controller) => {
        this.#writable = controller;
      },
      write: (message) => this.#write(message),
      close: () => this.core!.close(now(), {}),
      abort: () => this.core!.close(now(), {}),
    }, {
      size: () => {
        this.#outbox.written();
        return 1;
      },
    });
    this.#opened.resolve({ readable, writable, protocol, extensions });
    const pending = this.#pendingClose;
    if (pending !== null) this.close(pending);
  }

  /** A message arrived. */
  message(data: Message): void {
    if (this.#over() || this.#cancelled || this.#driver === null) return;
    const controller = this.#readable;
    controller.enqueue(data);
    const desired = controller.desiredSize ?? 0;
    if (this.#driver.pause !== undefined) {
      if (desired <= 0 && !this.#paused) {
        this.#paused = true;
        this.#driver.pause();
      }
    } else if (this.#readHighWaterMark - desired > this.#maxQueuedBytes) {
      this.#fail(
        new WebSocketError(
          `Cannot receive message: more than ${this.#maxQueuedBytes} bytes of messages wait to be read, and the runtime cannot pause reading`,
          { code: "message_too_big" },
        ),
        "too many messages waiting to be read",
      );
    }
  }

  /** The runtime's send buffer drained some. */
  drain(): void {
    this.#checkRoom();
  }

  /** A pong arrived. */
  pong(payload: Uint8Array): void {
    this.core?.control(now(), Opcode.Pong, payload);
  }

  /**
   * The runtime closed the socket: cleanly, with the close code and
   * reason it reports, or not (`cause`: what it said went wrong).
   */
  closeEvent(
    code: number,
    reason: string,
    clean: boolean,
    cause?: unknown,
  ): void {
    if (this.#over()) return;
    const protocol = this.core;
    if (!clean || protocol === null) {
      const detail = reason === "" ? "" : `: ${reason}`;
      const error = connectionLost(
        `the runtime closed the socket uncleanly${detail}`,
        cause,
      );
      if (protocol === null) this.#failOpen(error);
      else protocol.abort(error);
    } else {
      protocol.closedByRuntime({ closeCode: code, reason });
    }
  }

  close(options: WebSocketCloseOptions = {}): void {
    const { closeCode, reason = "" } = options;
    checkClose(closeCode, reason);
    if (this.#closing()) return;
    const protocol = this.core;
    if (protocol === null) {
      // Still opening: close as soon as it opens.
      this.#pendingClose ??= options;
      return;
    }
    protocol.close(now(), closeCode === undefined ? {} : { closeCode, reason });
  }

  async ping(data?: Uint8Array | string): Promise<void> {
    await this.opened;
    if (this.#driver!.ping === undefined) {
      // A payload that is too long is a RangeError, as everywhere.
      pingPayload(data, () => 0);
      throw new TypeError(`Cannot ping: ${this.#noPing}`);
    }
    return this.applicationPing(data);
  }

  async #write(message: NativeMessageInput): Promise<void> {
    const outbox = this.#outbox;
    outbox.taking(false);
    try {
      await this.#send(message);
    } finally {
      outbox.sent();
    }
  }

  async #send(message: NativeMessageInput): Promise<void> {
    const data = toNative(message);
    if (this.#closing()) {
      throw new TypeError("Cannot send message: the connection is closing");
    }
    if (!this.#driver!.send(data)) {
      throw new TypeError(
        "Cannot send message: the runtime dropped it (the connection is closing)",
      );
    }
    await this.outputRoom();
  }

  /** Offers a broadcast (broadcast.ts). */
  [SEND_SHARED](
    message: SharedMessage,
    limit: number,
    whenFull: WhenFull,
  ): Offered {
    if (this.#driver === null) return Offered.No;
    return this.#outbox.offer(message, limit, whenFull);
  }

  // What the outbox asks (OutboxHost).

  sendShared(message: SharedMessage): void {
    // The runtime frames it: on these sockets nothing else can.
    this.#driver!.send(message.data);
  }

  outputRoom(): Promise<void> | undefined {
    if (this.#room !== null) return this.#room.promise;
    if (this.#driver!.bufferedAmount() <= this.#writeHighWaterMark) return;
    this.#room = deferred();
    if (!this.#driver!.drainEvents) this.#poll(1);
    return this.#room.promise;
  }

  closing(): boolean {
    return this.#closing();
  }

  closeTooSlow(): void {
    this.core!.close(now(), {
      closeCode: CloseCode.TryAgainLater,
      reason: "too slow: broadcasts went unread",
    });
  }

  // Without drain events, polls the send buffer while it is above the
  // mark, backing off from 1 ms to 16 ms.
  #poll(delay: number): void {
    this.#pollTimer = setTimeout(() => {
      this.#pollTimer = undefined;
      if (!this.#checkRoom()) this.#poll(Math.min(delay * 2, 16));
    }, delay);
  }

  #checkRoom(): boolean {
    const room = this.#room;
    if (room === null) return true;
    if (this.#driver!.bufferedAmount() > this.#writeHighWaterMark) return false;
    this.#room = null;
    room.resolve();
    return true;
  }

  // The bridge fails the connection: everything ends with `error`, and the
  // runtime sends `error.closeCode`.
  #fail(error: WebSocketError, reason: string): void {
    this.core!.abort(error);
    try {
      this.#driver!.close(error.closeCode, reason);
    } catch {
      // The runtime refused the code: nothing more can be sent.
      this.#driver!.terminate?.();
    }
  }

  // What the protocol asks (ProtocolHost).

  sendPing(payload: Uint8Array): boolean {
    return this.#driver!.ping!(payload);
  }

  sendPong(): void {
    // The runtime answers pings itself (autoPong is off).
  }

  pongOwed(): void {
    // As sendPong().
  }

  sendClose(body: CloseBody): void {
    const { closeCode } = body;
    // Bun reports the close at once, from inside close().
    this.#driver!.close(
      closeCode,
      closeCode === undefined ? undefined : body.reason,
    );
  }

  endOutput(): void {
    // The runtime ends the socket when its close handshake is done.
  }

  finished(outcome: Outcome): void {
    const error = outcome instanceof WebSocketError ? outcome : null;
    // The close handshake took too long: the runtime is still in it.
    if (error?.code === "close_timeout") this.#driver!.terminate?.();
    clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    // A write waiting for room: its message went out if the close was clean.
    const room = this.#room;
    this.#room = null;
    if (error === null) room?.resolve();
    else room?.reject(error);
    try {
      if (error === null) this.#readable.close();
      else this.#readable.error(error);
    } catch {
      // Cancelled by the application.
    }
    this.#writable?.error(error ?? new TypeError("The connection is closed"));
    if (error === null) this.#closed.resolve(outcome as WebSocketCloseInfo);
    else this.#closed.reject(error);
  }
}
