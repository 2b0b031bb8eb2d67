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
// Once this many bytes wait to go out in a turn, writers wait for it, as
// they would for a corked socket at its high-water mark.
const BATCH_LIMIT = 16 * 1024;
// A turn's buffer starts this large and doubles as needed.
const TURN_SIZE = 1024;

/**
 * A connected socket as a byte duplex. A connection over it reads and
 * writes the socket directly (see _transport.ts), unless something has
 * asked for the streams first.
 */
export function nodeSocketDuplex(socket: NodeSocket): ByteDuplex {
  const transport = nodeSocketTransport(socket);
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

/**
 * Reads the socket until it ends, pausing it while the reader waits;
 * `write()` returns at once while the socket buffers below its high-water
 * mark, else a promise of `drain`. What is written in one turn of the event
 * loop goes out together, by `setImmediate`: small chunks copied into one
 * buffer, larger ones corked into one writev.
 */
function nodeSocketTransport(socket: NodeSocket): Transport {
  socket.setNoDelay?.(true);
  let events: TransportEvents | null = null;
  let failure: Error | null = null;
  let readDone = false;
  // Bytes handed on since the reader last caught up, and whether that
  // paused the socket.
  let unread = 0;
  let reads = 0;
  let paused = false;
  // Writers wait on `room` while the batch is full (until the turn's
  // writes) or the socket is (until 'drain').
  let room: Deferred<void> | null = null;
  let socketFull = false;
  // Small chunks written this turn, to go out in one socket write: the
  // bytes of `turn` from `start` to `start + batched`. Bytes before `start`
  // are the socket's (a larger chunk of this turn went out after them);
  // the rest of `turn` takes the next chunks.
  let turn: Uint8Array | null = null;
  let start = 0;
  let batched = 0;
  let flushing = false;
  let corked = false;

  const onData = (chunk: Uint8Array) => {
    if (readDone) return;
    // A plain Uint8Array view: applications get Uint8Arrays, not Buffers.
    const wait = events!.data(
      new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength),
    );
    if (wait === undefined) {
      unread = 0;
      return;
    }
    // The reader is behind. Pausing and resuming the socket for every
    // chunk costs more than the chunk, so up to READ_HIGH_WATER bytes
    // are handed on before the socket pauses until the reader catches up.
    unread += chunk.byteLength;
    const read = ++reads;
    wait.then(() => {
      if (read !== reads) return;
      unread = 0;
      if (paused && !readDone) socket.resume();
      paused = false;
    });
    if (unread > READ_HIGH_WATER && !paused) {
      paused = true;
      socket.pause();
    }
  };
  const onEnd = () => {
    if (readDone) return;
    readDone = true;
    events!.end();
  };
  const onError = (error: Error) => {
    failure = error;
  };
  const onDrain = () => {
    socketFull = false;
    const full = room;
    room = null;
    full?.resolve();
  };
  let closed = false;
  const onClose = () => {
    closed = true;
    socket.off("data", onData as never);
    socket.off("end", onEnd);
    socket.off("error", onError as never);
    socket.off("drain", onDrain);
    socket.off("close", onClose);
    if (events === null) return;
    const error = failure ?? new Error("The socket closed");
    if (!readDone) {
      readDone = true;
      events.readError(error);
    }
    if (room !== null) {
      onDrain();
      events.writeError(error);
    }
  };
  // Errors are listened for at once: an unheard 'error' event would crash
  // the process. Reading starts with start().
  socket.on("error", onError as never);
  socket.on("drain", onDrain);
  socket.on("close", onClose);
  // Copies a small chunk into the turn's buffer.
  const keep = (chunk: Uint8Array) => {
    const size = batched + chunk.length;
    if (turn === null || start + size > turn.length) {
      const grown = Buffer.allocUnsafe(Math.max(TURN_SIZE, 2 * size));
      if (batched > 0) grown.set(turn!.subarray(start, start + batched));
      turn = grown;
      start = 0;
    }
    turn.set(chunk, start + batched);
    batched = size;
  };
  // Writes the turn's bytes to the socket; false once the socket is over
  // its high-water mark.
  const flush = (): boolean => {
    if (batched === 0) return true;
    const out = turn!.subarray(start, start + batched);
    start += batched;
    batched = 0;
    return socket.write(out);
  };
  const flushTurn = () => {
    flushing = false;
    if (socket.destroyed) return;
    try {
      if (!flush()) socketFull = true;
      // The next turn gets a new buffer: an idle connection holds none
      // (nor the pool slab it came from), and the socket keeps what it
      // has not yet sent. (A socket whose write() wrote back into this
      // transport has batched more, and a flush is already scheduled.)
      if (batched === 0) turn = null;
      if (corked) {
        corked = false;
        socket.uncork?.();
      }
    } catch (error) {
      // Nothing may throw out of setImmediate: the socket fails instead.
      socket.destroy(error as Error);
      return;
    }
    if (!socketFull) onDrain();
  };

  return {
    start(handlers) {
      events = handlers;
      if (closed) return onClose();
      socket.on("data", onData as never);
      socket.on("end", onEnd);
      // A socket paused by its handshake (the client's) reads from here on.
      socket.resume();
    },
    write(chunk) {
      if (socket.destroyed) throw failure ?? new Error("The socket is closed");
      if (!flushing) {
        flushing = true;
        setImmediate(flushTurn);
      }
      if (chunk.length < COPY_LIMIT) {
        keep(chunk);
      } else {
        // Larger chunks of one turn go out together too, in one writev.
        if (!corked && socket.cork !== undefined) {
          corked = true;
          socket.cork();
        }
        const flushed = flush();
        if (!socket.write(chunk) || !flushed) socketFull = true;
      }
      if (!socketFull && batched < BATCH_LIMIT) return room?.promise;
      room ??= deferred<void>();
      return room.promise;
    },
    end() {
      if (socket.destroyed) return Promise.resolve();
      flushTurn();
      return new Promise<void>((resolve) => {
        socket.end(resolve);
        // A socket destroyed before it finishes ends the wait too.
        socket.on("close", resolve);
      });
    },
    destroy() {
      socket.destroy();
    },
  };
}
