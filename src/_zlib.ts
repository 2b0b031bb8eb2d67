// Raw DEFLATE with context takeover, over node:zlib (built into Node, Deno
// and Bun). CompressionStream("deflate-raw") cannot flush without ending
// the stream, so it cannot keep a context between messages; zlib's
// Z_SYNC_FLUSH can (RFC 7692 §7.2.1).
//
// Each zlib stream is created on first use, so a connection that has not
// sent or received a compressed message holds no zlib memory; without
// context takeover it is reset after each message, as ws does.

import zlib from "node:zlib";
import { allocate, concat } from "./_bytes.ts";

/** The empty stored block Z_SYNC_FLUSH ends with (RFC 7692 §7.2.1). */
export const TAIL: Uint8Array = new Uint8Array([0x00, 0x00, 0xff, 0xff]);

const { Z_SYNC_FLUSH } = zlib.constants;

const EMPTY_BLOCK = new Uint8Array([0x00]);

// Payloads up to this size get the tail appended in one buffer.
const JOIN_LIMIT = 64 * 1024;

type Zlib = zlib.DeflateRaw | zlib.InflateRaw;

// Node's zlib hands out Buffers; the library hands out plain Uint8Arrays.
function view(chunk: Uint8Array): Uint8Array {
  return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
}

// One zlib stream, driven one write-and-flush at a time.
type OnData = (chunk: Uint8Array) => Promise<void> | undefined | void;

class Codec {
  readonly #create: () => Zlib;
  #zlib: Zlib | null = null;
  #onData: OnData | null = null;
  #reject: ((error: unknown) => void) | null = null;
  // Ends a run whose output zlib had made but not all handed out yet.
  #drained: (() => void) | null = null;

  constructor(create: () => Zlib) {
    this.#create = create;
  }

  // Writes `chunks`, each flushed (the streams are made with Z_SYNC_FLUSH
  // as their flush mode: one trip to zlib's thread per write, not one more
  // for a flush); `onData` gets the output as zlib makes it. It may throw
  // to stop zlib (the stream is then dropped), or return a promise to pause
  // it until the promise settles: zlib then stops working once its own
  // small buffer is full, on all three runtimes. Resolves with the number
  // of input bytes zlib took, which falls short of the input only once a
  // raw inflate has passed a final block (BFINAL): zlib leaves what follows
  // unread, as it leaves every later write.
  run(chunks: readonly Uint8Array[], onData: OnData): Promise<number> {
    const stream = this.#zlib ??= this.#open();
    const before = stream.bytesWritten;
    return new Promise<number>((resolve, reject) => {
      this.#onData = onData;
      this.#reject = reject;
      const last = chunks.length - 1;
      for (let i = 0; i < last; i++) stream.write(chunks[i]);
      // Called once zlib has made everything the writes make.
      stream.write(chunks[last], () => {
        if (this.#reject !== reject) return;
        // Deno calls back before it emits the error that ended the stream.
        if (stream.destroyed) {
          this.#fail(stream.errored ?? new Error("zlib stream destroyed"));
          return;
        }
        const taken = stream.bytesWritten - before;
        // A stream paused for a reader that is behind may still hold the
        // last chunks zlib made (up to 48 KiB seen, on all three runtimes):
        // the run ends once the data listener has handed them out, or they
        // would come out with no one to take them.
        if (stream.readableLength > 0) {
          this.#drained = () => {
            this.#end();
            resolve(taken);
          };
          return;
        }
        this.#end();
        resolve(taken);
      });
    });
  }

  #end(): void {
    this.#onData = null;
    this.#reject = null;
    this.#drained = null;
  }

  // Made apart from run(), so that the stream's listeners, which live as
  // long as it, do not keep the first run's chunks and handler alive.
  #open(): Zlib {
    const created = this.#create();
    created.on("data", (chunk: Uint8Array) => {
      const handler = this.#onData;
      if (handler === null) return;
      let waiting;
      try {
        waiting = handler(view(chunk));
      } catch (error) {
        this.#fail(error);
        return;
      }
      // The stream has taken this chunk off its buffer before handing it
      // out: an empty buffer now means the run's output is all out.
      if (this.#drained !== null && created.readableLength === 0) {
        this.#drained();
      }
      if (waiting === undefined) return;
      created.pause();
      waiting.then(() => {
        if (this.#zlib === created) created.resume();
      }, (error) => this.#fail(error));
    });
    created.on("error", (error: Error) => this.#fail(error));
    return created;
  }

  // Empties the stream's context (a message with no context takeover has
  // ended): cheaper than a new stream, which costs a zlib allocation.
  reset(): void {
    this.#zlib?.reset();
  }

  // Drops the stream, and its memory.
  close(): void {
    const stream = this.#zlib;
    if (stream === null) return;
    const reject = this.#reject;
    this.#zlib = null;
    this.#onData = null;
    this.#reject = null;
    this.#drained = null;
    reject?.(new Error("The compression stream was closed"));
    stream.removeAllListeners("data");
    // A late error from a stream being torn down concerns no one.
    stream.on("error", () => {});
    stream.close();
  }

  #fail(error: unknown): void {
    const reject = this.#reject;
    this.#onData = null;
    this.#reject = null;
    this.#drained = null;
    const stream = this.#zlib;
    this.#zlib = null;
    if (stream !== null) {
      stream.removeAllListeners("data");
      stream.on("error", () => {});
      stream.destroy();
    }
    reject?.(error);
  }
}

/** Compresses messages, frame by frame, for permessage-deflate. */
export class Deflater {
  readonly #codec: Codec;
  readonly #noContextTakeover: boolean;

  constructor(options: {
    windowBits: number;
    noContextTakeover: boolean;
    level: number;
    memLevel: number;
  }) {
    const { windowBits, level, memLevel } = options;
    this.#noContextTakeover = options.noContextTakeover;
    this.#codec = new Codec(() =>
      zlib.createDeflateRaw({
        windowBits,
        level,
        memLevel,
        flush: Z_SYNC_FLUSH,
      })
    );
  }

  /**
   * Compresses one frame's payload. The message's last frame loses the
   * 00 00 ff ff that the flush ends it with (§7.2.1).
   */
  async deflate(data: Uint8Array, last: boolean): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    await this.#codec.run([data], (chunk) => {
      parts.push(chunk);
    });
    let out = parts.length === 1 ? parts[0] : concat(parts);
    if (last) {
      if (endsWithTail(out)) out = out.subarray(0, out.length - 4);
      // zlib writes no second flush marker when nothing came in since the
      // last: an empty message then deflates to nothing, which the peer
      // would read as the start of a stored block once it appends the
      // tail. A lone 00 (§7.2.3.6) is an empty block that reads right.
      else if (out.length === 0) out = EMPTY_BLOCK;
      if (this.#noContextTakeover) this.#codec.reset();
    }
    return out;
  }

  /** Frees zlib's memory. */
  close(): void {
    this.#codec.close();
  }
}

/** zlib's settings for compressing. */
export interface DeflateOptions {
  windowBits: number;
  level: number;
  memLevel: number;
}

/**
 * Compresses one whole message at once, with an empty context, as a
 * connection without context takeover would (§7.2.1): for a message that
 * many connections get, compressed once for all of them. Synchronous: one
 * message, once.
 */
export function deflateMessage(
  data: Uint8Array,
  options: DeflateOptions,
): Uint8Array {
  let out = view(
    zlib.deflateRawSync(data, { ...options, finishFlush: Z_SYNC_FLUSH }),
  );
  if (endsWithTail(out)) out = out.subarray(0, out.length - 4);
  else if (out.length === 0) out = EMPTY_BLOCK;
  return out;
}

/**
 * Thrown by {@linkcode Inflater.inflate} when a message's DEFLATE data goes
 * on after its final block.
 */
export class TrailingDataError extends Error {}

/** Decompresses messages, frame by frame, for permessage-deflate. */
export class Inflater {
  readonly #codec: Codec;
  readonly #noContextTakeover: boolean;
  // Input bytes zlib has taken of the message so far.
  #taken = 0;
  // Once the message's data has passed a final block: the payload bytes
  // seen after it. -1 before.
  #after = -1;

  constructor(options: { windowBits: number; noContextTakeover: boolean }) {
    const { windowBits } = options;
    this.#noContextTakeover = options.noContextTakeover;
    this.#codec = new Codec(() =>
      zlib.createInflateRaw({ windowBits, flush: Z_SYNC_FLUSH })
    );
  }

  /**
   * Decompresses a piece of a message, handing the output to `onData` as
   * zlib produces it (at most 16 KiB at a time); `onData` may throw to stop
   * (a message over its size limit), or return a promise to pause zlib
   * until it settles (a reader that is behind). The message's last piece
   * gets the 00 00 ff ff back first (§7.2.2). Throws a
   * {@linkcode TrailingDataError} for data after a final block.
   */
  async inflate(
    data: Uint8Array,
    last: boolean,
    onData: OnData,
  ): Promise<void> {
    if (this.#after >= 0) {
      // The final block is behind: zlib would take nothing more.
      this.#trailing(data, data.length);
    } else {
      const chunks = !last ? [data] : data.length <= JOIN_LIMIT
        // One write instead of two: a copy costs less than a trip to zlib.
        ? [withTail(data)]
        : [data, TAIL];
      const size = data.length + (last ? TAIL.length : 0);
      let taken = await this.#codec.run(chunks, onData);
      if (taken === 0 && this.#taken === 0 && size > 0) {
        // A final block that the last message's 00 00 ff ff completed (a
        // peer that ends its messages with 01 00 00 ff ff, minus the tail)
        // leaves no byte unread to show it: zlib takes nothing of the next
        // message. A fresh stream takes it whole.
        this.#codec.close();
        taken = await this.#codec.run(chunks, onData);
      }
      this.#taken += taken;
      if (taken < size) {
        // RFC 7692 §7.2.3.4: "implementors can choose to flush data using
        // DEFLATE blocks with "BFINAL" set to 1". The DEFLATE stream ends
        // there (RFC 1951 §3.2.3), and so does its LZ77 window: the next
        // message starts a new stream, in a new zlib context (as ws does).
        // zlib's readable side has ended, so reset() cannot revive it.
        this.#codec.close();
        this.#after = 0;
        const unread = size - taken;
        if (last && unread < TAIL.length) {
          // The final block ended inside the 00 00 ff ff appended here.
          this.#fail();
        }
        this.#trailing(data, unread - (last ? TAIL.length : 0));
      }
    }
    if (!last) return;
    this.#taken = 0;
    this.#after = -1;
    if (this.#noContextTakeover) this.#codec.reset();
  }

  // Checks the last `count` bytes of `data`, which follow the final block.
  // §7.2.1 has the sender append an empty stored block to data that does
  // not end in one, and then drop its last four octets: a final block is
  // followed by one 0x00, or by nothing from a sender that skips the step
  // (one that sends what a one-shot deflateRawSync makes). Anything else
  // is not this message's DEFLATE data.
  #trailing(data: Uint8Array, count: number): void {
    for (let i = data.length - count; i < data.length; i++) {
      if (data[i] !== 0x00 || ++this.#after > 1) this.#fail();
    }
  }

  #fail(): never {
    this.#codec.close();
    this.#taken = 0;
    this.#after = -1;
    throw new TrailingDataError("DEFLATE data follows the final block");
  }

  /** Frees zlib's memory. */
  close(): void {
    this.#codec.close();
  }
}

// `data` and the tail in one transient buffer: zlib's input. (Buffer.concat
// costs 1.5 µs a call on Deno.)
function withTail(data: Uint8Array): Uint8Array {
  const out = allocate(data.length + TAIL.length);
  out.set(data);
  out.set(TAIL, data.length);
  return out;
}

function endsWithTail(bytes: Uint8Array): boolean {
  const n = bytes.length;
  return n >= 4 && bytes[n - 4] === 0x00 && bytes[n - 3] === 0x00 &&
    bytes[n - 2] === 0xff && bytes[n - 1] === 0xff;
}
