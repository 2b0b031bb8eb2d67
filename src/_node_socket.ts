// A node:net (or node:tls) socket as a transport, and as a ByteDuplex.
// node:net exists on Node, Deno and Bun alike, so this is the path to the
// full codec on all three.
//
// Structural types keep this file free of @types/node.

import { Buffer } from "node:buffer";
import type { ByteDuplex } from "./connection.ts";
import { type Deferred, deferred } from "./_deferred.ts";
import {
  offerTransport,
  type Transport,
  type TransportEvents,
  transportStreams,
} from "./_transport.ts";

/** The parts of a `net.Socket` this file uses. */
export interface NodeSocket {
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean;
  end(callback?: () => void): unknown;
  destroy(error?: Error): unknown;
  pause(): unknown;
  resume(): unknown;
  cork?(): void;
  uncork?(): void;
  setNoDelay?(noDelay?: boolean): unknown;
  // deno-lint-ignore no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
  // deno-lint-ignore no-explicit-any
  off(event: string, listener: (...args: any[]) => void): unknown;
  readonly destroyed: boolean;
  readonly writableEnded?: boolean;
}

// Reading pauses once this many bytes wait unread.
const READ_HIGH_WATER = 64 * 1024;

// Chunks below this size written in one turn are copied into one buffer as
// they are written (the caller may reuse its buffer at once), and the
// buffer is written at the end of the turn: a socket write per chunk,
// corked or not, costs more than the copy. Larger chunks are written as
// they are.
const COPY_LIMIT = 4 * 1024;
// Bun's node:net joins the chunks of a corked write into one new buffer
// (its Socket._writev concatenates them), a copy of every byte: there,
// chunks this large go out uncorked, after what the turn has before them.
const UNCORKED = "Bun" in globalThis ? 64 * 1024 : Infinity;
// node:net makes a Buffer of every Uint8Array written to it. A broadcast
// writes the same chunk to every connection in a row: the last one made is
// kept, and its Buffer serves them all, until the turn's flush (flushDue).
let lastChunk: Uint8Array | null = null;
let lastBuffer: Uint8Array | null = null;

function asBuffer(chunk: Uint8Array): Uint8Array {
  if (chunk === lastChunk) return lastBuffer!;
  if (chunk instanceof Buffer) return chunk;
  lastChunk = chunk;
  return lastBuffer = Buffer.from(
    chunk.buffer,
    chunk.byteOffset,
    chunk.byteLength,
  );
}

// Once this many bytes wait to go out in a turn, writers wait for it, as
// they would for a corked socket at its high-water mark. (At 16 KiB, four
// 4,000-byte messages filled a turn, and they went out at half the rate of
// 4 KiB ones, which are written as they are.)
const BATCH_LIMIT = 64 * 1024;
// A turn's buffer starts this large, or as large as the last turn needed,
// and doubles as needed.
const TURN_SIZE = 1024;
// Once handing on reads has taken READ_BUDGET_MS within READ_WINDOW_MS
// (since the window began, or reading last paused), reading pauses until a
// timer of the next turn of the event loop, so that one peer that floods
// the connection cannot hold the loop for long: other connections' reads
// and timers come between its reads. A read of tiny messages takes a few
// milliseconds (Bun reads up to 512 KiB at once); a read of large ones
// well under one, and a connection that is not flooded never yields.
const READ_BUDGET_MS = 4;
const READ_WINDOW_MS = 20;

/**
 * A connected socket as a byte duplex. A connection over it reads and
 * writes the socket directly (see _transport.ts), unless something has
 * asked for the streams first. `reset` drops it when the connection fails
 * (an HTTP/2 stream's is a RST_STREAM); by default, `destroy()`.
 */
export function nodeSocketDuplex<T extends NodeSocket>(
  socket: T,
  reset?: (socket: T) => void,
): ByteDuplex {
  const transport = new NodeSocketTransport(
    socket,
    reset as ((socket: NodeSocket) => void) | undefined,
  );
  let streams: ByteDuplex | null = null;
  const made = () => streams ??= transportStreams(transport, READ_HIGH_WATER);
  const duplex: ByteDuplex = {
    get readable() {
      return made().readable;
    },
    get writable() {
      return made().writable;
    },
  };
  offerTransport(duplex, () => streams === null ? transport : null);
  return duplex;
}

// The socket's listeners, shared by every transport: node:events calls a
// listener with the socket as `this`, and the socket carries its transport.
// A connection that lasts for hours holds no closures of its own for them.
const TRANSPORT = Symbol("transport");

interface Listened extends NodeSocket {
  [TRANSPORT]: NodeSocketTransport;
}

function onData(this: Listened, chunk: Uint8Array): void {
  this[TRANSPORT].onData(chunk);
}

function onEnd(this: Listened): void {
  this[TRANSPORT].onEnd();
}

function onError(this: Listened, error: Error): void {
  this[TRANSPORT].onError(error);
}

function onDrain(this: Listened): void {
  this[TRANSPORT].onDrain();
}

function onClose(this: Listened): void {
  this[TRANSPORT].onClose();
}

// The transports written to this turn: one setImmediate flushes them all.
// (One each cost an Immediate per connection per turn: for a broadcast to
// 1,000 connections of small messages, most of what it allocated.) Those
// written to while these flush wait for the next one.
let due: NodeSocketTransport[] = [];

function flushDue(): void {
  const transports = due;
  due = [];
  // The turn is over: the cache must not keep a chunk alive past it.
  lastChunk = lastBuffer = null;
  // flushTurn() does not throw: a failed write destroys its socket.
  for (let i = 0; i < transports.length; i++) transports[i].flushTurn();
}

function endYield(transport: NodeSocketTransport): void {
  transport.endYield();
}

/**
 * A socket as a transport. Reads the socket until it ends, pausing it while
 * the reader waits; `write()` returns at once while the socket buffers
 * below its high-water mark, else a promise of `drain`. What is written in
 * one turn of the event loop goes out together, by `setImmediate`: small
 * chunks copied into one buffer, larger ones corked into one writev.
 */
class NodeSocketTransport implements Transport {
  readonly #socket: Listened;
  #events: TransportEvents | null = null;
  #failure: Error | null = null;
  #readDone = false;
  #closed = false;
  // Bytes handed on since the reader last caught up, and whether that
  // paused the socket.
  #unread = 0;
  #reads = 0;
  #paused = false;
  // Milliseconds spent handing on reads in the window that began at
  // `#window`, and whether reading is yielding now (see READ_BUDGET_MS).
  #spent = 0;
  #window = 0;
  #yielding = false;
  // Writers wait on `#room` while the batch is full (until the turn's
  // writes) or the socket is (until 'drain').
  #room: Deferred<void> | null = null;
  #socketFull = false;
  // Small chunks written this turn, to go out in one socket write: the
  // bytes of `#turn` from `#start` to `#start + #batched`. Bytes before
  // `#start` are the socket's (a larger chunk of this turn went out after
  // them); the rest of `#turn` takes the next chunks.
  #turn: Uint8Array | null = null;
  #start = 0;
  #batched = 0;
  // The bytes kept this turn, and in the last turn that kept any: a turn's
  // buffer starts as large as the last one needed, so that a connection
  // under steady load allocates one per turn, not one per doubling.
  #kept = 0;
  #lastKept = 0;
  #flushing = false;
  #corked = false;
  readonly #reset: ((socket: NodeSocket) => void) | undefined;

  constructor(socket: NodeSocket, reset?: (socket: NodeSocket) => void) {
    this.#socket = socket as Listened;
    this.#reset = reset;
    this.#socket[TRANSPORT] = this;
    socket.setNoDelay?.(true);
    // Errors are listened for at once: an unheard 'error' event would crash
    // the process. Reading starts with start().
    socket.on("error", onError);
    socket.on("drain", onDrain);
    socket.on("close", onClose);
  }

  start(events: TransportEvents): void {
    this.#events = events;
    if (this.#closed) return this.onClose();
    const socket = this.#socket;
    socket.on("data", onData);
    socket.on("end", onEnd);
    // A socket paused by its handshake (the client's) reads from here on.
    socket.resume();
  }

  write(chunk: Uint8Array): void | Promise<void> {
    const socket = this.#socket;
    if (socket.destroyed) {
      throw this.#failure ?? new Error("The socket is closed");
    }
    if (!this.#flushing) {
      this.#flushing = true;
      if (due.push(this) === 1) setImmediate(flushDue);
    }
    if (chunk.length < COPY_LIMIT) {
      this.#keep(chunk);
    } else if (chunk.length >= UNCORKED) {
      if (this.#corked) {
        this.#corked = false;
        socket.uncork?.();
      }
      const flushed = this.#flush();
      if (!socket.write(asBuffer(chunk)) || !flushed) this.#socketFull = true;
    } else {
      // Larger chunks of one turn go out together too, in one writev.
      if (!this.#corked && socket.cork !== undefined) {
        this.#corked = true;
        socket.cork();
      }
      const flushed = this.#flush();
      if (!socket.write(asBuffer(chunk)) || !flushed) this.#socketFull = true;
    }
    if (!this.#socketFull && this.#batched < BATCH_LIMIT) {
      return this.#room?.promise;
    }
    this.#room ??= deferred<void>();
    return this.#room.promise;
  }

  end(): Promise<void> {
    const socket = this.#socket;
    if (socket.destroyed) return Promise.resolve();
    this.flushTurn();
    return new Promise<void>((resolve) => {
      socket.end(resolve);
      // A socket destroyed before it finishes ends the wait too.
      socket.on("close", resolve);
    });
  }

  destroy(): void {
    if (this.#reset === undefined) this.#socket.destroy();
    else this.#reset(this.#socket);
  }

  onData(chunk: Uint8Array): void {
    if (this.#readDone) return;
    const started = performance.now();
    if (started - this.#window > READ_WINDOW_MS) {
      this.#window = started;
      this.#spent = 0;
    }
    // A plain Uint8Array view: applications get Uint8Arrays, not Buffers.
    const wait = this.#events!.data(
      new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength),
    );
    this.#spent += performance.now() - started;
    if (this.#spent > READ_BUDGET_MS && !this.#yielding && !this.#readDone) {
      this.#yielding = true;
      this.#socket.pause();
      // A timer, not setImmediate: on Deno the socket that just paused is
      // otherwise read again before other sockets are polled.
      setTimeout(endYield, 0, this);
    }
    if (wait === undefined) {
      this.#unread = 0;
      return;
    }
    // The reader is behind. Pausing and resuming the socket for every
    // chunk costs more than the chunk, so up to READ_HIGH_WATER bytes
    // are handed on before the socket pauses until the reader catches up.
    this.#unread += chunk.byteLength;
    const read = ++this.#reads;
    wait.then(() => {
      if (read !== this.#reads) return;
      this.#unread = 0;
      const paused = this.#paused;
      this.#paused = false;
      if (paused) this.#resume();
    });
    if (this.#unread > READ_HIGH_WATER && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  // The next turn has come: reading goes on, unless the reader is behind.
  endYield(): void {
    this.#yielding = false;
    this.#spent = 0;
    this.#resume();
  }

  #resume(): void {
    if (!this.#paused && !this.#yielding && !this.#readDone) {
      this.#socket.resume();
    }
  }

  onEnd(): void {
    if (this.#readDone) return;
    this.#readDone = true;
    this.#events!.end();
  }

  onError(error: Error): void {
    this.#failure = error;
  }

  onDrain(): void {
    this.#socketFull = false;
    const full = this.#room;
    this.#room = null;
    full?.resolve();
  }

  onClose(): void {
    this.#closed = true;
    const socket = this.#socket;
    socket.off("data", onData);
    socket.off("end", onEnd);
    socket.off("error", onError);
    socket.off("drain", onDrain);
    socket.off("close", onClose);
    const events = this.#events;
    if (events === null) return;
    const error = this.#failure ?? new Error("The socket closed");
    if (!this.#readDone) {
      this.#readDone = true;
      events.readError(error);
    }
    if (this.#room !== null) {
      this.onDrain();
      events.writeError(error);
    }
  }

  // Writes the turn's bytes to the socket: called by setImmediate (flushDue).
  flushTurn(): void {
    this.#flushing = false;
    const socket = this.#socket;
    if (socket.destroyed) return;
    try {
      if (!this.#flush()) this.#socketFull = true;
      // The next turn gets a new buffer: an idle connection holds none
      // (nor the pool slab it came from), and the socket keeps what it
      // has not yet sent. (A socket whose write() wrote back into this
      // transport has batched more, and a flush is already scheduled.)
      if (this.#batched === 0) this.#turn = null;
      if (this.#kept > 0) this.#lastKept = Math.min(this.#kept, BATCH_LIMIT);
      this.#kept = 0;
      if (this.#corked) {
        this.#corked = false;
        socket.uncork?.();
      }
    } catch (error) {
      // Nothing may throw out of setImmediate: the socket fails instead.
      socket.destroy(error as Error);
      return;
    }
    if (!this.#socketFull) this.onDrain();
  }

  // Copies a small chunk into the turn's buffer.
  #keep(chunk: Uint8Array): void {
    const size = this.#batched + chunk.length;
    let turn = this.#turn;
    if (turn === null || this.#start + size > turn.length) {
      const grown = Buffer.allocUnsafe(
        Math.max(TURN_SIZE, 2 * size, turn === null ? this.#lastKept : 0),
      );
      if (this.#batched > 0) {
        grown.set(turn!.subarray(this.#start, this.#start + this.#batched));
      }
      turn = this.#turn = grown;
      this.#start = 0;
    }
    turn.set(chunk, this.#start + this.#batched);
    this.#batched = size;
    this.#kept += chunk.length;
  }

  // Writes the turn's bytes to the socket; false once the socket is over
  // its high-water mark.
  #flush(): boolean {
    if (this.#batched === 0) return true;
    const out = this.#turn!.subarray(this.#start, this.#start + this.#batched);
    this.#start += this.#batched;
    this.#batched = 0;
    return this.#socket.write(out);
  }
}
