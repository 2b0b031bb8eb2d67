// A message framed once and sent to many connections (broadcast.ts), and
// each connection's share of them: the queue where they wait, in order
// with the connection's own writes, and its bound.
//
// Ordering. A connection's own messages reach its encoder one at a time,
// from its writable's queue (or a pipe into it). A shared message must go
// after every message the application had written when it was sent, and
// before every later one, and never between the fragments of one. So each
// connection counts the messages written to its writable and those handed
// on; a shared message that finds messages written but not yet handed on,
// one being sent, or the output full, waits here, tagged with the count
// written so far, and goes once that many have been handed on and sent.
//
// Compression. A connection that agreed on permessage-deflate without
// context takeover for what it sends gets a shared message compressed once
// for every such connection with the same zlib settings (deflated()); one
// with context takeover gets it uncompressed (RFC 7692 §6 allows any
// message to go so), since a message compressed apart from its context
// would leave the peer's window out of step with ours.
//
// Bound. What waits here for one connection is bounded in bytes
// (`limit`): a connection past it either skips the message ("drop") or is
// closed with 1013, Try Again Later ("close"). The bytes themselves are
// shared: a slow connection holds references to messages every other
// connection also holds, not copies.

import { concat } from "./_bytes.ts";
import { FrameEncoder } from "./frame_encoder.ts";
import type { Frame } from "./frame.ts";
import { messageBytes } from "./_message_frames.ts";
import { Opcode } from "./opcode.ts";
import { deflateMessage, type DeflateOptions } from "./_zlib.ts";

/** The method a broadcast target offers a shared message to. */
export const SEND_SHARED: unique symbol = Symbol("sendShared");

/** What a slow connection gets: see BroadcastOptions.whenFull. */
export type WhenFull = "close" | "drop";

/** What became of a shared message offered to a connection. */
export const Offered = {
  /** The connection does not get it: it is not open yet. */
  No: 0,
  /** Handed on to its output. */
  Sent: 1,
  /** It waits in the connection's outbox. */
  Waiting: 2,
  /** The connection is closing, for its own reasons. */
  Closing: 3,
  /**
   * The connection is past its bound: it does not get it, and with
   * `whenFull: "close"` it is closing now.
   */
  Full: 4,
} as const;
export type Offered = typeof Offered[keyof typeof Offered];

/** A connection a shared message can be offered to. */
export interface SharedTarget {
  [SEND_SHARED](
    message: SharedMessage,
    limit: number,
    whenFull: WhenFull,
  ): Offered;
}

/** A whole unfragmented data frame, also encoded once as a server sends it. */
export interface SharedFrame extends Frame {
  /**
   * The frame's bytes, unmasked, in one chunk: each connection writes it
   * with one socket write (a header and a payload would take two; one copy
   * per broadcast is cheaper than a write per connection).
   */
  readonly wire: Uint8Array;
  /** The message it is a frame of. */
  readonly shared: SharedMessage;
}

const serverEncoder = new FrameEncoder({ role: "server" });

/** One message, for many connections: its bytes encoded once. */
export class SharedMessage {
  /** As given: a native socket sends a text as a string. */
  readonly data: string | Uint8Array;
  readonly frame: SharedFrame;
  // Its compressed frames, by zlib settings (see deflated()).
  #deflated: Map<string, SharedFrame> | undefined;

  constructor(data: string | Uint8Array) {
    this.data = data;
    const opcode = typeof data === "string" ? Opcode.Text : Opcode.Binary;
    this.frame = this.#frame(opcode, false, messageBytes(data));
  }

  /** Its payload's size in bytes: what it counts towards a bound. */
  get size(): number {
    return this.frame.payload.length;
  }

  /**
   * Its frame compressed with an empty context (RSV1 set), made once per
   * zlib settings; its plain frame if compressing does not shrink it.
   */
  deflated(options: DeflateOptions): SharedFrame {
    const key = `${options.windowBits} ${options.level} ${options.memLevel}`;
    let frame = this.#deflated?.get(key);
    if (frame === undefined) {
      const plain = this.frame;
      const payload = deflateMessage(plain.payload, options);
      frame = payload.length < plain.payload.length
        ? this.#frame(plain.opcode, true, payload)
        : plain;
      (this.#deflated ??= new Map()).set(key, frame);
    }
    return frame;
  }

  #frame(opcode: Opcode, rsv1: boolean, payload: Uint8Array): SharedFrame {
    const frame = {
      fin: true,
      rsv1,
      rsv2: false,
      rsv3: false,
      opcode,
      payload,
    };
    const chunks: Uint8Array[] = [];
    serverEncoder.encode(frame, (chunk) => chunks.push(chunk));
    const wire = chunks.length === 1 ? chunks[0] : concat(chunks);
    // The payload as a view of the wire's bytes: the message holds its
    // bytes once.
    return {
      ...frame,
      payload: wire.subarray(wire.length - payload.length),
      wire,
      shared: this,
    };
  }
}

/** Whether `frame` is a SharedMessage's frame. */
export function isSharedFrame(frame: Frame): frame is SharedFrame {
  return (frame as Partial<SharedFrame>).wire !== undefined;
}

/** What a SharedOutbox needs of its connection. */
export interface OutboxHost {
  /** Hands one whole shared message on to the output. */
  sendShared(message: SharedMessage): void;
  /** Undefined while the output has room, else a promise of room. */
  outputRoom(): Promise<void> | undefined;
  /** Whether nothing more may be sent: our Close is out, or it is over. */
  closing(): boolean;
  /** Closes the connection: it is too slow for its shared messages. */
  closeTooSlow(): void;
}

const NONE: readonly Waiting[] = [];

interface Waiting {
  readonly message: SharedMessage;
  // The application's messages written before it.
  readonly after: number;
}

/** A connection's shared messages that cannot go yet (see the top). */
export class SharedOutbox {
  readonly #host: OutboxHost;
  // The application's messages written to the writable, and handed on.
  #written = 0;
  #taken = 0;
  // One of them is being sent.
  #sending = false;
  // Made when one first waits: most connections never have any waiting.
  #waiting = NONE as Waiting[];
  #head = 0;
  #bytes = 0;
  #waitingForRoom = false;

  constructor(host: OutboxHost) {
    this.#host = host;
  }

  /** An application message was queued in the writable. */
  written(): void {
    this.#written++;
  }

  /**
   * An application message is handed on (`direct`: by a pipe, never
   * queued): the shared messages sent before it was written go first.
   * Call `sent()` once it is.
   */
  taking(direct: boolean): void {
    if (direct) this.#written++;
    const before = this.#taken++;
    // Whatever the output's room: these were sent before this message.
    while (this.#head < this.#waiting.length) {
      const next = this.#waiting[this.#head];
      if (next.after > before) break;
      this.#shift();
      this.#host.sendShared(next.message);
    }
    this.#sending = true;
  }

  /** The application message handed on last is sent (or failed). */
  sent(): void {
    this.#sending = false;
    this.#drain();
  }

  /** Offers one shared message. */
  offer(message: SharedMessage, limit: number, whenFull: WhenFull): Offered {
    const host = this.#host;
    if (host.closing()) return Offered.Closing;
    if (
      this.#head === this.#waiting.length && !this.#sending &&
      this.#written === this.#taken && host.outputRoom() === undefined
    ) {
      host.sendShared(message);
      return Offered.Sent;
    }
    const size = message.size;
    if (this.#bytes + size > limit) {
      if (whenFull === "close") {
        this.#clear();
        host.closeTooSlow();
      }
      return Offered.Full;
    }
    if (this.#waiting === NONE) this.#waiting = [];
    this.#waiting.push({ message, after: this.#written });
    this.#bytes += size;
    this.#drain();
    return Offered.Waiting;
  }

  // Sends what may go now: while no application message is being sent,
  // the next one written is not due, and the output has room.
  #drain(): void {
    const host = this.#host;
    while (this.#head < this.#waiting.length && !this.#sending) {
      if (host.closing()) return this.#clear();
      const next = this.#waiting[this.#head];
      if (next.after > this.#taken) return;
      const room = host.outputRoom();
      if (room !== undefined) {
        if (this.#waitingForRoom) return;
        this.#waitingForRoom = true;
        const again = () => {
          this.#waitingForRoom = false;
          this.#drain();
        };
        room.then(again, again);
        return;
      }
      this.#shift();
      host.sendShared(next.message);
    }
  }

  #shift(): void {
    const waiting = this.#waiting;
    this.#bytes -= waiting[this.#head].message.size;
    waiting[this.#head++] = undefined!;
    if (this.#head === waiting.length) this.#clear();
    else if (this.#head > 1024 && this.#head * 2 > waiting.length) {
      this.#waiting = waiting.slice(this.#head);
      this.#head = 0;
    }
  }

  #clear(): void {
    this.#waiting = NONE as Waiting[];
    this.#head = 0;
    this.#bytes = 0;
  }
}
