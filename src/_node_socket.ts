// A node:net (or node:tls) socket as a ByteDuplex. node:net exists on Node,
// Deno and Bun alike, so this is the path to the full codec on all three.
//
// Structural types keep this file free of @types/node at runtime.

import type { ByteDuplex } from "./connection.ts";

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

/**
 * Wraps a connected socket. Reading stops (the socket is paused) while
 * more than 64 KiB wait unread; `write()` resolves at once while the socket
 * buffers below its high-water mark, else on `drain`. Everything written in
 * one turn of the event loop goes out in one system call: the socket is
 * corked on the first write and uncorked by `setImmediate`.
 */
export function nodeSocketDuplex(socket: NodeSocket): ByteDuplex {
  socket.setNoDelay?.(true);
  let failure: Error | null = null;
  let readController!: ReadableStreamDefaultController<Uint8Array>;
  let readDone = false;
  const waiters = new Set<
    { resolve: () => void; reject: (e: unknown) => void }
  >();

  const onData = (chunk: Uint8Array) => {
    if (readDone) return;
    // A plain Uint8Array view: applications get Uint8Arrays, not Buffers.
    readController.enqueue(
      new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength),
    );
    if (readController.desiredSize! <= 0) socket.pause();
  };
  const onEnd = () => {
    if (readDone) return;
    readDone = true;
    readController.close();
  };
  const onError = (error: Error) => {
    failure = error;
  };
  const onDrain = () => settle(null);
  const onClose = () => {
    const error = failure ?? new Error("The socket closed");
    if (!readDone) {
      readDone = true;
      readController.error(error);
    }
    settle(error);
    socket.off("data", onData as never);
    socket.off("end", onEnd);
    socket.off("error", onError as never);
    socket.off("drain", onDrain);
    socket.off("close", onClose);
  };
  function settle(error: Error | null) {
    for (const waiter of waiters) {
      if (error === null) waiter.resolve();
      else waiter.reject(error);
    }
    waiters.clear();
  }
  socket.on("data", onData as never);
  socket.on("end", onEnd);
  socket.on("error", onError as never);
  socket.on("drain", onDrain);
  socket.on("close", onClose);

  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork?.();
  };

  const readable = new ReadableStream<Uint8Array>({
    start(controller) {
      readController = controller;
    },
    pull() {
      socket.resume();
    },
    cancel() {
      readDone = true;
      socket.destroy();
    },
  }, new ByteLengthQueuingStrategy({ highWaterMark: READ_HIGH_WATER }));

  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      if (socket.destroyed) throw failure ?? new Error("The socket is closed");
      if (!corked && socket.cork !== undefined) {
        corked = true;
        socket.cork();
        setImmediate(uncork);
      }
      if (socket.write(chunk)) return;
      return new Promise<void>((resolve, reject) =>
        waiters.add({ resolve, reject })
      );
    },
    close() {
      if (socket.destroyed) return;
      if (corked) uncork();
      return new Promise<void>((resolve) => {
        socket.end(resolve);
        // A socket destroyed before it finishes ends the wait too.
        socket.on("close", resolve);
      });
    },
    abort() {
      socket.destroy();
    },
  });
  return { readable, writable };
}
