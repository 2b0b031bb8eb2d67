/**
 * One message to many connections: framed once, each connection's share
 * bounded.
 *
 * @module
 */

import { checkSize } from "./_options.ts";
import {
  Offered,
  SEND_SHARED,
  SharedMessage,
  type SharedTarget,
  type WhenFull,
} from "./_shared_message.ts";

/**
 * A connection a {@linkcode Broadcast} can hold: a
 * {@linkcode WebSocketConnection} (the `node:http` entry point, `serve()`,
 * the client), or what the `Deno.serve` and `Bun.serve` adapters return.
 */
export interface BroadcastMember {
  readonly closed: Promise<unknown>;
}

/** Options for {@linkcode Broadcast}. */
export interface BroadcastOptions<M extends BroadcastMember = BroadcastMember> {
  /**
   * Bytes of broadcasts that may wait for one connection: sent after
   * messages it has not taken yet, or while its socket is full. A
   * connection that would pass it is handled per `whenFull`.
   *
   * @default {1048576} (1 MiB)
   */
  maxQueued?: number;
  /**
   * What happens to a connection past `maxQueued`: `"close"` starts its
   * close handshake with 1013 (Try Again Later) and it gets no more
   * broadcasts; `"drop"` skips this message for it, and it stays.
   *
   * @default {"close"}
   */
  whenFull?: WhenFull;
  /**
   * Called with each connection that passed `maxQueued`, once `whenFull`
   * has been applied (it is closing, or skipped this message) and every
   * other member has the message: to log it, or to tell the others it
   * left.
   */
  onFull?: (member: M) => void;
}

/** Options for {@linkcode Broadcast.send}. */
export interface BroadcastSendOptions {
  /** A member that does not get this message: its sender, say. */
  except?: BroadcastMember;
}

const MiB = 1024 * 1024;

/**
 * A set of connections that messages are sent to all at once. A message is
 * encoded once (a text's UTF-8, the frame's header), and the same bytes go
 * to every connection: they are not copied per connection, except where a
 * socket batches small writes. On each connection a broadcast comes after
 * the messages written to its writable before it, and before those written
 * after; never between the fragments of one. A connection leaves by
 * itself when it closes.
 *
 * A slow reader cannot hold the others back, nor grow the server's memory
 * without bound. A broadcast that cannot go out at once waits, for that
 * connection only, up to `maxQueued` bytes; past them the connection is
 * closed with 1013, or, with `whenFull: "drop"`, skips the message (its
 * reader then misses messages, which is why closing is the default: a chat
 * client that silently misses lines is worse off than one that reconnects).
 * What a slow connection holds are references to messages every other
 * member holds too.
 *
 * With permessage-deflate, a connection that agreed on
 * `server_no_context_takeover` gets a broadcast compressed once for every
 * such connection (with the same window and zlib settings), if it is at
 * least the `threshold`. One with context takeover gets it uncompressed
 * (RFC 7692 allows any message to): compressed apart from that
 * connection's own context, it would put the peer's window out of step,
 * and compressing it per connection would undo framing it once. (A 4 KiB
 * JSON update deflates to a fifth in about 17 µs, once; per connection that
 * is 17 ms for 1,000 of them: `bench/fanout_deflate.ts`.) The `Deno.serve`
 * and `Bun.serve` adapters hand the message to the runtime, which
 * compresses as it does every send.
 *
 * @example A chat room
 * ```ts
 * import { Broadcast } from "./broadcast.ts";
 * import { WebSocketConnection } from "./connection.ts";
 * import assert from "node:assert/strict";
 *
 * // Two clients, each over an in-memory pipe to a server connection.
 * function pair() {
 *   const up = new TransformStream<Uint8Array, Uint8Array>();
 *   const down = new TransformStream<Uint8Array, Uint8Array>();
 *   return {
 *     client: new WebSocketConnection(
 *       { readable: down.readable, writable: up.writable },
 *       { role: "client" },
 *     ),
 *     server: new WebSocketConnection(
 *       { readable: up.readable, writable: down.writable },
 *       { role: "server" },
 *     ),
 *   };
 * }
 * const alice = pair();
 * const bob = pair();
 *
 * const room = new Broadcast();
 * room.add(alice.server).add(bob.server);
 * assert.equal(room.send("hello, everyone"), 2);
 * assert.equal(room.send("not to Alice", { except: alice.server }), 1);
 *
 * const bobReader = (await bob.client.opened).readable.getReader();
 * assert.equal((await bobReader.read()).value, "hello, everyone");
 * assert.equal((await bobReader.read()).value, "not to Alice");
 * const aliceReader = (await alice.client.opened).readable.getReader();
 * assert.equal((await aliceReader.read()).value, "hello, everyone");
 *
 * alice.client.close();
 * bob.client.close();
 * await Promise.all([alice.server.closed, bob.server.closed]);
 * assert.equal(room.size, 0); // closed connections leave
 * ```
 */
export class Broadcast<M extends BroadcastMember = BroadcastMember>
  implements Iterable<M> {
  readonly #members = new Set<M>();
  readonly #maxQueued: number;
  readonly #whenFull: WhenFull;
  readonly #onFull: ((member: M) => void) | undefined;
  #writable: WritableStream<string | Uint8Array> | null = null;
  // Whether the last send left the message waiting for some member.
  #waiting = false;

  /** Creates an empty set. */
  constructor(options: BroadcastOptions<M> = {}) {
    this.#maxQueued = checkSize("maxQueued", options.maxQueued ?? MiB, {
      infinite: true,
    });
    const whenFull = options.whenFull ?? "close";
    if (whenFull !== "close" && whenFull !== "drop") {
      throw new TypeError(
        `Cannot create Broadcast: whenFull must be "close" or "drop", got ${
          String(whenFull)
        }`,
      );
    }
    this.#whenFull = whenFull;
    if (options.onFull !== undefined && typeof options.onFull !== "function") {
      throw new TypeError(
        "Cannot create Broadcast: onFull must be a function",
      );
    }
    this.#onFull = options.onFull;
  }

  /** How many connections it holds. */
  get size(): number {
    return this.#members.size;
  }

  /**
   * Adds a connection, until it closes or is deleted.
   *
   * @throws {TypeError} if it is not a connection of this library.
   */
  add(member: M): this {
    if (typeof (member as Partial<SharedTarget>)[SEND_SHARED] !== "function") {
      throw new TypeError(
        "Cannot add to Broadcast: not a connection of this library",
      );
    }
    if (this.#members.has(member)) return this;
    this.#members.add(member);
    const leave = () => this.#members.delete(member);
    member.closed.then(leave, leave);
    return this;
  }

  /** Removes a connection; false if it was not there. */
  delete(member: M): boolean {
    return this.#members.delete(member);
  }

  /** Whether it holds `member`. */
  has(member: M): boolean {
    return this.#members.has(member);
  }

  /** The connections, in the order they were added. */
  [Symbol.iterator](): IterableIterator<M> {
    return this.#members.values();
  }

  /**
   * Sends one message (a text, or bytes, which must not change afterwards)
   * to every member but `options.except`. Returns how many got it:
   * connections that are closing, and those past `maxQueued`, do not.
   */
  send(data: string | Uint8Array, options: BroadcastSendOptions = {}): number {
    if (typeof data !== "string" && !(data instanceof Uint8Array)) {
      throw new TypeError(
        "Cannot broadcast message: expected a string or a Uint8Array",
      );
    }
    const message = new SharedMessage(data);
    const except = options.except;
    const limit = this.#maxQueued;
    const whenFull = this.#whenFull;
    let sent = 0;
    let waiting = false;
    let full: M[] | undefined;
    for (const member of this.#members) {
      if (member === except) continue;
      const target = member as unknown as SharedTarget;
      const offered = target[SEND_SHARED](message, limit, whenFull);
      if (offered === Offered.Sent) sent++;
      else if (offered === Offered.Waiting) sent++, waiting = true;
      // It gets no more: it leaves now, not once its close is done.
      else if (offered === Offered.Closing) this.#members.delete(member);
      else if (offered === Offered.Full) {
        if (whenFull === "close") this.#members.delete(member);
        (full ??= []).push(member);
      }
    }
    this.#waiting = waiting;
    // After the loop: every member has this message before any message
    // onFull sends.
    if (full !== undefined && this.#onFull !== undefined) {
      for (const member of full) this.#onFull(member);
    }
    return sent;
  }

  /**
   * A stream of messages, each sent to every member as it is written:
   * `source.pipeTo(room.writable)` broadcasts a stream. A write that
   * leaves its message waiting for some member resolves on a timer, once
   * the event loop has had a turn to let sockets drain: a fast source is
   * held to the pace of members that keep up, and one that does not
   * reaches `maxQueued`.
   */
  get writable(): WritableStream<string | Uint8Array> {
    return this.#writable ??= new WritableStream({
      write: (data) => {
        this.send(data);
        if (!this.#waiting) return;
        return new Promise((resolve) => setTimeout(resolve, 0));
      },
    });
  }
}
