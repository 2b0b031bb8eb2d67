// How a connection reads and writes the bytes under it.
//
// A byte duplex of WHATWG streams is read with a reader and written with a
// writer. A node:net socket (the node:http upgrade path on Node, Deno and
// Bun) offers itself directly: its connection then has none of the four
// streams and two pipes that would sit between the socket and the codec,
// which cost memory on every idle connection and a stream hop on every
// chunk each way.

import type { ByteDuplex } from "./connection.ts";

/** What a transport tells its reader. Each is called at most once, but `data`. */
export interface TransportEvents {
  /** Bytes read. Reading waits while a promise it returns is pending. */
  data(chunk: Uint8Array): void | Promise<void>;
  /** The input ended (a TCP FIN). */
  end(): void;
  /** Reading failed: the transport is gone. */
  readError(error: unknown): void;
  /** Writing failed: the transport is gone. */
  writeError(error: unknown): void;
}

/** A byte transport, as a connection uses it. */
export interface Transport {
  /** Starts reading. Called once. */
  start(events: TransportEvents): void;
  /**
   * Queues bytes to send. Returns a promise when the transport is full,
   * which resolves when it has room (or has failed: `writeError` says so).
   *
   * @throws if the transport has failed.
   */
  write(chunk: Uint8Array): void | Promise<void>;
  /** Ends the sending direction once everything written is out. Never rejects. */
  end(): Promise<void>;
  /** Drops the transport at once. */
  destroy(reason: unknown): void;
}

const noop = () => {};
const offers = new WeakMap<ByteDuplex, () => Transport | null>();

/**
 * Lets a connection over `duplex` read and write through `direct()`
 * instead of the streams; `direct()` returns null once the streams are in
 * use.
 */
export function offerTransport(
  duplex: ByteDuplex,
  direct: () => Transport | null,
): void {
  offers.set(duplex, direct);
}

/** The transport to use for `duplex`: its own, or one over its streams. */
export function transportOf(duplex: ByteDuplex): Transport {
  return offers.get(duplex)?.() ?? streamTransport(duplex);
}

function streamTransport(duplex: ByteDuplex): Transport {
  const reader = duplex.readable.getReader();
  const writer = duplex.writable.getWriter();
  return {
    start(events) {
      writer.closed.catch((error) => events.writeError(error));
      (async () => {
        while (true) {
          const { done, value } = await reader.read();
          if (done) return events.end();
          const waiting = events.data(value);
          if (waiting !== undefined) await waiting;
        }
      })().catch((error) => events.readError(error));
    },
    write(chunk) {
      writer.write(chunk).catch(noop);
      // Full once a chunk waits behind the high-water mark, as for a pipe
      // with its source's one-chunk queue. A failure is reported by
      // writer.closed.
      if (writer.desiredSize === null || writer.desiredSize >= 0) return;
      return writer.ready.catch(noop);
    },
    end() {
      return writer.close().catch(noop);
    },
    destroy(reason) {
      reader.cancel(reason).catch(noop);
      writer.abort(reason).catch(noop);
    },
  };
}

/**
 * Streams over a transport, for a caller that wants the streams: reading
 * waits once `highWaterMark` bytes wait unread.
 */
export function transportStreams(
  transport: Transport,
  highWaterMark: number,
): ByteDuplex {
  let resume: (() => void) | null = null;
  // Cancelled: what the transport still reports goes nowhere.
  let cancelled = false;
  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      transport.start({
        data(chunk) {
          if (cancelled) return;
          controller.enqueue(chunk);
          if (controller.desiredSize! > 0) return;
          return new Promise<void>((resolve) => resume = resolve);
        },
        end() {
          if (!cancelled) controller.close();
        },
        readError(error) {
          if (!cancelled) controller.error(error);
        },
        writeError: (error) => writableController.error(error),
      });
    },
    pull() {
      const waiting = resume;
      resume = null;
      waiting?.();
    },
    cancel(reason) {
      cancelled = true;
      transport.destroy(reason);
    },
  }, new ByteLengthQueuingStrategy({ highWaterMark }));
  let writableController!: WritableStreamDefaultController;
  const writable = new WritableStream<Uint8Array>({
    start(controller) {
      writableController = controller;
    },
    write: (chunk) => transport.write(chunk),
    close: () => transport.end(),
    abort: (reason) => transport.destroy(reason),
  });
  return { readable, writable };
}
