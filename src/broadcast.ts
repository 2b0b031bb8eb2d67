/**
 * One message to many connections: framed once, each connection's share
 * bounded.
 *
 * @module
 */

import { checkSize } from "./_options.ts";
import { type BroadcastBus, instanceId, open, seal } from "./broadcast_bus.ts";
import { Opcode } from "./opcode.ts";
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
   * left. If it throws, the others past it are still called, and `send()`
   * throws the first error after them.
   */
  onFull?: (member: M) => void;
  /**
   * A messaging engine that joins this broadcast to the same `topic` on
   * other processes and machines: each message sent here is published once
   * (not once per member), and what other instances publish reaches the
   * members here. Without it, the broadcast is this process's alone.
   */
  bus?: BroadcastBus;
  /** The bus's topic: the same name on every instance. Required with `bus`. */
  topic?: string;
  /**
   * Called when the bus fails: a publish that rejects, a subscription that
   * fails, a message that is not a broadcast's. The members here still get
   * every message sent here.
   *
   * @default {console.error}
   */
  onBusError?: (error: unknown) => void;
}

/** Options for {@linkcode Broadcast.send}. */
export interface BroadcastSendOptions {
  /**
   * A member that does not get this message: its sender, say. (On other
   * instances, every member gets it.)
   */
  except?: BroadcastMember;
}

const MiB = 1024 * 1024;

// A broadcast's bus, once joined.
interface Bus {
  readonly bus: BroadcastBus;
  readonly topic: string;
  // This instance's id: its own messages coming back are skipped.
  readonly origin: Uint8Array;
  readonly onError: (error: unknown) => void;
  readonly subscribed: Promise<() => unknown>;
  readonly ready: Promise<void>;
  closed?: boolean;
}

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
  readonly #bus: Bus | null = null;
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
    if (options.bus !== undefined) this.#bus = this.#join(options);
  }

  // Subscribes to the bus's topic: messages from other instances go to
  // the members here.
  #join(options: BroadcastOptions<M>): Bus {
    const { bus, topic } = options;
    if (
      typeof bus?.publish !== "function" || typeof bus.subscribe !== "function"
    ) {
      throw new TypeError(
        "Cannot create Broadcast: bus must have publish() and subscribe()",
      );
    }
    if (typeof topic !== "string" || topic === "") {
      throw new TypeError("Cannot create Broadcast: a bus needs a topic");
    }
    const onError = options.onBusError ??
      ((error: unknown) => console.error("Broadcast bus:", error));
    const origin = instanceId();
    const heard = (envelope: Uint8Array) => {
      let data;
      try {
        data = open(origin, envelope);
      } catch (error) {
        onError(error);
        return;
      }
      if (data !== null) this.#deliver(new SharedMessage(data), undefined);
    };
    const subscribed = (async () => await bus.subscribe(topic, heard))();
    return {
      bus,
      topic,
      origin,
      onError,
      subscribed,
      ready: subscribed.then(() => {}, (error) => onError(error)),
    };
  }

  /**
   * Resolves once the bus's subscription is in place (at once without a
   * bus): from then on, what other instances send reaches the members
   * here. Never rejects: a failure goes to `onBusError`.
   */
  get ready(): Promise<void> {
    return this.#bus?.ready ?? Promise.resolve();
  }

  /**
   * Leaves the bus's topic; the members stay, and sends still reach them.
   * Resolves once the subscription has ended.
   */
  async close(): Promise<void> {
    const bus = this.#bus;
    if (bus === null || bus.closed) return;
    bus.closed = true;
    try {
      const stop = await bus.subscribed;
      await stop();
    } catch (error) {
      bus.onError(error);
    }
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
    // Published first: what onFull sends while it is delivered here goes
    // after it, here and on the other instances.
    const bus = this.#bus;
    if (bus !== null && !bus.closed) {
      const { frame } = message;
      const envelope = seal(
        bus.origin,
        frame.opcode === Opcode.Text,
        frame.payload,
      );
      try {
        const published = bus.bus.publish(bus.topic, envelope);
        if (published instanceof Promise) published.catch(bus.onError);
      } catch (error) {
        bus.onError(error);
      }
    }
    return this.#deliver(message, options.except);
  }

  // Offers a message to every member here but `except`; how many got it.
  #deliver(
    message: SharedMessage,
    except: BroadcastMember | undefined,
  ): number {
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
      // Each gets its call; the first to throw is thrown after them all.
      let failure: { error: unknown } | undefined;
      for (const member of full) {
        try {
          this.#onFull(member);
        } catch (error) {
          failure ??= { error };
        }
      }
      if (failure !== undefined) throw failure.error;
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
