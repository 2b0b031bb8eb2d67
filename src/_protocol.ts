// The protocol of one open connection, sans I/O: its state, the close
// handshake (RFC 6455 §5.5.1, §7), pings and pongs (§5.5.2, §5.5.3), and
// the verdicts of the heartbeat, idle and close timeouts.
//
// Events come in as method calls, with the time they happen at; what to send
// and what happened go out through the `ProtocolHost` it was made with. No
// timers, sockets or promises: the host keeps one timer, armed for
// `setDeadline(at)`, and calls `tick(now)` when it fires. Every kind of
// endpoint runs on it: the codec's connection (`_session.ts`) and the
// bridges to the runtimes' native sockets (`adapters/_native.ts`).
//
// What happens when a Close arrives while we are sending one: `#sendClose`
// sends at most one Close, whatever asks; `#maybeFinish` ends the
// connection once both have crossed and the transport has done its part.

import { CloseCode } from "./close_code.ts";
import { decodeClose } from "./close.ts";
import { pingPayload } from "./_endpoint.ts";
import { connectionLost } from "./_connection_lost.ts";
import { WebSocketError } from "./errors.ts";
import type { Role } from "./frame.ts";
import { Opcode } from "./opcode.ts";

/** How long a close handshake may take, by default, in milliseconds. */
export const DEFAULT_CLOSE_TIMEOUT = 5000;

/** Where a connection is in its life. */
export const State = {
  /** Messages flow both ways. */
  Open: "open",
  /**
   * The peer broke the protocol (§7.1.7). Nothing more is read; our Close,
   * with the code the RFC names, goes once the application has read the
   * messages before the violation (`delivered()`), or at the close timeout.
   */
  Failing: "failing",
  /** Our Close went first; the peer's answer is awaited. */
  ClosingByUs: "closing-by-us",
  /** The peer's Close came first, and ours answered it. */
  ClosingByPeer: "closing-by-peer",
  /** Over: the host's `finished()` has been called, once. */
  Closed: "closed",
} as const;
export type State = typeof State[keyof typeof State];

/** A Close to send: a code and reason, or neither. */
export interface CloseBody {
  closeCode?: number;
  reason?: string;
}

/** How a connection ended: the peer's Close after a clean close, else why not. */
export type Outcome = { closeCode: number; reason: string } | WebSocketError;

/** What the protocol asks of the connection around it. */
export interface ProtocolHost {
  /** Sends a ping, after what was sent before; false if it was dropped. */
  sendPing(payload: Uint8Array): boolean;
  /** Sends a pong, after what was sent before. */
  sendPong(payload: Uint8Array): void;
  /** Sends the Close; nothing is sent after it. */
  sendClose(body: CloseBody): void;
  /**
   * A pong is owed: call `sendOwedPong()` once the transport has taken
   * what was sent before (§5.5.3 lets newer pings replace it meanwhile).
   */
  pongOwed(): void;
  /**
   * Ends the sending direction (a TCP FIN): our Close is out and the close
   * handshake is over, or failed. The server does it first (§7.1.1).
   */
  endOutput(): void;
  /** Our `ping()`s, the oldest `count` of them, have their pongs. */
  pingsAnswered(count: number): void;
  /** Every `ping()` still waiting fails with `reason`. */
  pingsFailed(reason: unknown): void;
  /** Wake the protocol with `tick(now)` at `at` (Infinity: never). */
  setDeadline(at: number): void;
  /** The connection is over; called once. */
  finished(outcome: Outcome): void;
}

export interface ProtocolOptions {
  role: Role;
  /** How long a close handshake may take, and a failing connection wait. */
  closeTimeout: number;
  /** Ping every `interval` ms; no pong within `timeout` ms: 1006. */
  heartbeat?: { interval: number; timeout?: number };
  /** Close with 1001 after `idleTimeout` to twice that of silence. 0: off. */
  idleTimeout?: number;
  /** Answer pings (§5.5.2). Default true. */
  autoPong?: boolean;
}

// A ping of ours that waits for its pong: its payload, and whether the
// heartbeat sent it (else the application's ping()).
interface SentPing {
  key: string;
  heartbeat: boolean;
}

const NEVER = Infinity;

/** The close handshake, pings and timeouts of one connection. */
export class Protocol {
  #state: State = State.Open;
  readonly #host: ProtocolHost;
  readonly #options: ProtocolOptions;

  // The peer's Close, once it has come.
  #peerClose: { closeCode: number; reason: string } | null = null;
  // How the peer broke the protocol, if it did: our Close carries its code,
  // and `closed` rejects with it.
  #violation: WebSocketError | null = null;
  // The transport's part: everything up to our Close is with it; the
  // peer's bytes have ended; we have asked it to end our side.
  #closeFlushed = false;
  #inputEnded = false;
  #outputEnded = false;

  // Our pings waiting for pongs, oldest first (made with the first ping).
  #pings: SentPing[] | null = null;
  // Pings sent without data carry this count.
  #pingCount = 0;
  // The payload of the pong owed, if one is.
  #pong: Uint8Array | null = null;
  // Whether anything came from the peer since the last idle check.
  #active = false;

  // Deadlines, as times given by the host (NEVER: none).
  #closeBy = NEVER;
  #failAt = NEVER;
  #heartbeatAt = NEVER;
  #pongBy = NEVER;
  #idleAt = NEVER;
  #deadline = NEVER;

  constructor(host: ProtocolHost, options: ProtocolOptions, now: number) {
    this.#host = host;
    this.#options = options;
    const { heartbeat, idleTimeout = 0 } = options;
    if (heartbeat !== undefined && heartbeat.interval > 0) {
      this.#heartbeatAt = now + heartbeat.interval;
    }
    if (idleTimeout > 0) this.#idleAt = now + idleTimeout;
    this.#deadlineChanged();
  }

  get state(): State {
    return this.#state;
  }

  /** Whether our Close is out, or the connection is over: nothing more may be sent. */
  get closing(): boolean {
    return this.#state !== State.Open && this.#state !== State.Failing;
  }

  /** Whether the peer's Close has come. */
  get closeReceived(): boolean {
    return this.#peerClose !== null;
  }

  /** The application closes (or the server goes away, or a stream ends). */
  close(now: number, body: CloseBody): void {
    this.#sendClose(now, body);
  }

  /**
   * The application pings, with `data` or, without it, the next number in
   * four bytes; `pingsAnswered` or `pingsFailed` tells when its pong came.
   *
   * @throws {RangeError} if the payload is more than 125 bytes.
   * @throws {TypeError} if the connection is closing.
   */
  ping(data?: Uint8Array | string): void {
    const payload = this.#pingPayload(data);
    if (this.closing) {
      throw new TypeError("Cannot ping: the connection is closing");
    }
    this.#sendPing(payload, false);
  }

  /** Something came from the peer: it is not idle. */
  activity(): void {
    this.#active = true;
  }

  /**
   * A control frame from the peer.
   *
   * @throws {WebSocketError} for a malformed Close (1002, 1007): the caller
   * fails the connection with it, through `violation()`.
   */
  control(
    now: number,
    opcode: typeof Opcode.Ping | typeof Opcode.Pong | typeof Opcode.Close,
    payload: Uint8Array,
  ): void {
    this.#active = true;
    if (this.#state === State.Closed) return;
    switch (opcode) {
      case Opcode.Ping:
        // §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
        // frame in response, unless it already received a Close frame."
        // Nor after ours: nothing follows a Close.
        if (this.#options.autoPong !== false && !this.closing) {
          const owed = this.#pong !== null;
          // A copy: the decoder may reuse the payload's buffer.
          this.#pong = payload.slice();
          if (!owed) this.#host.pongOwed();
        }
        break;
      case Opcode.Pong:
        this.#answered(now, payload);
        break;
      case Opcode.Close: {
        if (this.#peerClose !== null) return;
        const info = this.#peerClose = decodeClose(payload);
        // §5.5.1: "If an endpoint receives a Close frame and did not
        // previously send a Close frame, the endpoint MUST send a Close
        // frame in response. [...] it typically echos the status code it
        // received."
        this.#sendClose(
          now,
          info.closeCode === CloseCode.NoStatusReceived
            ? {}
            : { closeCode: info.closeCode },
        );
        this.#maybeFinish();
        break;
      }
      default:
        opcode satisfies never;
    }
  }

  /** The transport has room: the pong owed, if still owed, goes now. */
  sendOwedPong(): void {
    const pong = this.#pong;
    this.#pong = null;
    if (pong !== null && !this.closing) this.#host.sendPong(pong);
  }

  /**
   * The peer broke the protocol. The messages before the violation reach
   * the application first; `delivered()` says they have.
   */
  violation(now: number, error: WebSocketError): void {
    if (this.#state === State.Closed || this.#violation !== null) return;
    // §5.5.1: nothing counts after the peer's Close, not even bytes that
    // break the protocol: reading stops there.
    if (this.#peerClose !== null) return this.inputEnded();
    this.#violation = error;
    this.#inputEnded = true;
    // No heartbeat or idle verdict may stand in for the violation.
    this.#stopKeepalive();
    if (this.closing) {
      // Our Close is already out: the close ends as soon as it can.
      this.#maybeFinish();
    } else {
      this.#state = State.Failing;
      this.#failAt = now + this.#options.closeTimeout;
      this.#deadlineChanged();
    }
  }

  /**
   * The application has read every message before the violation: our
   * Close goes now (the host's timer gives the application a few turns of
   * the event loop to answer the last message first).
   */
  delivered(now: number): void {
    if (this.#state !== State.Failing) return;
    this.#failAt = now;
    this.#deadlineChanged();
  }

  /** The peer's bytes ended (and were all decoded). */
  inputEnded(): void {
    if (this.#state === State.Closed || this.#violation !== null) return;
    this.#inputEnded = true;
    if (this.#peerClose === null) {
      // §7.1.5: closed without a Close frame: 1006.
      this.#finish(
        connectionLost("the transport closed without a Close frame"),
      );
    } else if (this.#closeFlushed) {
      this.#endOutput();
      this.#finish(null);
    }
  }

  /** Reading the transport failed (`error` is a 1006 WebSocketError). */
  inputFailed(error: WebSocketError): void {
    if (this.#state === State.Closed || this.#violation !== null) return;
    if (this.#peerClose !== null) this.inputEnded();
    else this.#finish(error);
  }

  /** Everything up to our Close is with the transport. */
  closeFlushed(): void {
    this.#closeFlushed = true;
    this.#maybeFinish();
  }

  /** Writing to the transport failed (`error` is a 1006 WebSocketError). */
  outputFailed(error: WebSocketError): void {
    // Once both Close frames have crossed, the close was clean.
    this.#finish(this.#handshakeDone() ? null : error);
  }

  /** The connection is over at once, failed with `error` (a limit was hit). */
  abort(error: WebSocketError): void {
    this.#finish(error);
  }

  /**
   * A runtime that runs the close handshake itself (a native socket) says
   * it is done: the peer closed with `info`.
   */
  closedByRuntime(info: { closeCode: number; reason: string }): void {
    if (this.#state === State.Closed) return;
    this.#peerClose = info;
    this.#finish(null);
  }

  /** Time has come to `now`: the verdicts of every deadline passed. */
  tick(now: number): void {
    if (now >= this.#closeBy) {
      // Once both Close frames have crossed, the close was clean however
      // long the transport takes to end.
      this.#finish(
        this.#handshakeDone() ? null : new WebSocketError(
          "The close handshake timed out",
          { code: "close_timeout" },
        ),
      );
      return;
    }
    if (now >= this.#failAt) {
      this.#failAt = NEVER;
      this.#sendClose(now, {});
      this.#maybeFinish();
    }
    if (now >= this.#pongBy) {
      this.#finish(
        new WebSocketError("The peer did not answer a heartbeat ping in time", {
          code: "heartbeat_timeout",
        }),
      );
      return;
    }
    if (now >= this.#heartbeatAt) {
      const { interval, timeout = interval } = this.#options.heartbeat!;
      this.#heartbeatAt = NEVER;
      this.#pongBy = now + timeout;
      this.#sendPing(this.#pingPayload(undefined), true);
    }
    if (now >= this.#idleAt) {
      if (this.#active) {
        this.#active = false;
        this.#idleAt = now + this.#options.idleTimeout!;
      } else {
        this.#idleAt = NEVER;
        this.#sendClose(now, {
          closeCode: CloseCode.GoingAway,
          reason: "idle timeout",
        });
      }
    }
    this.#deadlineChanged();
  }

  #pingPayload(data: Uint8Array | string | undefined): Uint8Array {
    return pingPayload(data, () => ++this.#pingCount);
  }

  #sendPing(payload: Uint8Array, heartbeat: boolean): void {
    (this.#pings ??= []).push({ key: payload.join(), heartbeat });
    if (!this.#host.sendPing(payload) && this.#state !== State.Closed) {
      // Dropped: its pong will not come, nor those of the pings before it.
      this.#failPings(
        new TypeError(
          "Cannot ping: the ping was dropped (the connection is closing)",
        ),
      );
    }
  }

  // A pong arrived. §5.5.3: "If an endpoint receives a Ping frame and has
  // not yet sent Pong frame(s) in response to previous Ping frame(s), the
  // endpoint MAY elect to send a Pong frame for only the most recently
  // processed Ping frame." So a pong answers its ping and every ping sent
  // before it; of pings with the same data, the latest. A pong that answers
  // none (unsolicited, §5.5.3) settles nothing.
  #answered(now: number, payload: Uint8Array): void {
    const pings = this.#pings;
    if (pings === null) return;
    const key = payload.join();
    const at = pings.findLastIndex((ping) => ping.key === key);
    if (at < 0) return;
    let count = 0;
    for (const ping of pings.splice(0, at + 1)) {
      if (!ping.heartbeat) count++;
      else if (!this.closing && this.#pongBy !== NEVER) {
        this.#pongBy = NEVER;
        this.#heartbeatAt = now + this.#options.heartbeat!.interval;
        this.#deadlineChanged();
      }
    }
    if (count > 0) this.#host.pingsAnswered(count);
  }

  // Sends our Close, if it has not gone: the one place a Close is sent.
  #sendClose(now: number, body: CloseBody): void {
    if (this.closing) return;
    // Once the peer has broken the protocol, whoever closes sends the code
    // the RFC names for what it did.
    const violation = this.#violation;
    if (violation !== null) body = { closeCode: violation.closeCode };
    this.#state = this.#peerClose === null
      ? State.ClosingByUs
      : State.ClosingByPeer;
    this.#failAt = NEVER;
    this.#stopKeepalive();
    this.#failPings(
      new TypeError("The connection closed before the pong arrived"),
    );
    // Set first: sending the Close may end the connection at once.
    this.#closeBy = now + this.#options.closeTimeout;
    this.#deadlineChanged();
    // The last ping before the close is still owed its pong (§5.5.2).
    const pong = this.#pong;
    this.#pong = null;
    if (pong !== null) this.#host.sendPong(pong);
    this.#host.sendClose(body);
  }

  // Both Close frames have crossed, or we failed the connection and ours is
  // out: the server ends the transport first (§7.1.1); the client waits for
  // the server to.
  #maybeFinish(): void {
    if (!this.#closeFlushed || !this.closing || this.#state === State.Closed) {
      return;
    }
    const failed = this.#violation !== null;
    if (this.#peerClose === null && !failed) return;
    if (this.#options.role === "server" || failed) this.#endOutput();
    if (this.#inputEnded) this.#finish(null);
  }

  #handshakeDone(): boolean {
    return this.#peerClose !== null && this.#closeFlushed &&
      this.closing && this.#violation === null;
  }

  #endOutput(): void {
    if (this.#outputEnded) return;
    this.#outputEnded = true;
    this.#host.endOutput();
  }

  #finish(error: WebSocketError | null): void {
    if (this.#state === State.Closed) return;
    this.#state = State.Closed;
    this.#pong = null;
    this.#stopKeepalive();
    this.#closeBy = this.#failAt = NEVER;
    this.#deadlineChanged();
    // A violation is why the connection ended, whatever ended it after.
    const outcome = this.#violation ?? error ?? this.#peerClose ??
      connectionLost("the connection closed without a Close frame");
    this.#failPings(
      outcome instanceof WebSocketError
        ? outcome
        : new TypeError("The connection closed"),
    );
    this.#host.finished(outcome);
  }

  #failPings(reason: unknown): void {
    const pings = this.#pings;
    if (pings === null || pings.length === 0) return;
    this.#pings = [];
    if (pings.some((ping) => !ping.heartbeat)) this.#host.pingsFailed(reason);
  }

  #stopKeepalive(): void {
    this.#heartbeatAt = this.#pongBy = this.#idleAt = NEVER;
  }

  // Tells the host when to wake us, if that changed.
  #deadlineChanged(): void {
    const at = Math.min(
      this.#closeBy,
      this.#failAt,
      this.#heartbeatAt,
      this.#pongBy,
      this.#idleAt,
    );
    if (at === this.#deadline) return;
    this.#deadline = at;
    this.#host.setDeadline(at);
  }
}
