// The pieces of a message being assembled, whatever the peer's
// fragmentation: memory stays proportional to the message's bytes.
//
// A piece kept as a view costs about 100 bytes of heap whatever it holds,
// and holds its whole underlying buffer (a socket read, up to 64 KiB). So a
// peer that sends a message as millions of one-byte fragments, or as small
// fragments each in a read of its own padded with other frames, would make
// a message within maxMessageSize cost tens or hundreds of times its size.
// Small pieces, and pieces whose buffers would hold more than the message's
// bytes unused, are copied into a shared run instead; empty ones cost
// nothing. A large message arriving in socket reads is kept as views of
// them, and copied once, when joined.

import { allocateOwn, concat } from "./_bytes.ts";

// Pieces from this size up may be kept as views: a view's overhead is then
// at most a tenth of its bytes.
const KEEP = 1024;
// The bytes that views may hold unused: as many as the message has so far,
// plus this much (the partial reads at a large message's two ends).
const SLACK = 64 * 1024;
// The run small pieces are copied into.
const RUN = 16 * 1024;

/** A message's bytes, piece by piece; `take()` returns them joined. */
export class Pieces {
  #parts: Uint8Array[] = [];
  // Small pieces are copied into `#run`; the bytes from `#start` to `#used`
  // are not yet a part.
  #run: Uint8Array | null = null;
  #start = 0;
  #used = 0;
  // The message's bytes so far, and the bytes its views hold unused.
  #size = 0;
  #unused = 0;

  /**
   * Adds a piece, which the caller must not change afterwards. The `last`
   * piece of a message is kept as it is, whatever its size or buffer: it
   * is joined at once, not held.
   */
  push(piece: Uint8Array, last = false): void {
    const length = piece.length;
    if (length === 0) return;
    this.#size += length;
    const unused = this.#unused + piece.buffer.byteLength - length;
    if (last || (length >= KEEP && unused <= this.#size + SLACK)) {
      this.#unused = unused;
      this.#cut();
      this.#parts.push(piece);
      return;
    }
    let run = this.#run;
    if (run === null || this.#used + length > run.length) {
      this.#cut();
      run = this.#run = allocateOwn(Math.max(RUN, length));
      this.#start = this.#used = 0;
    }
    run.set(piece, this.#used);
    this.#used += length;
  }

  /** The pieces joined into one new buffer; empties this. */
  take(): Uint8Array {
    this.#cut();
    const parts = this.#parts;
    this.clear();
    return concat(parts);
  }

  /** Drops the pieces, and the run: an idle connection holds none. */
  clear(): void {
    this.#parts = [];
    this.#run = null;
    this.#start = this.#used = 0;
    this.#size = this.#unused = 0;
  }

  // The run's bytes so far become a part; later small pieces go on filling
  // the same run, so that pieces of both sizes in turn do not each leave
  // a run nearly empty.
  #cut(): void {
    if (this.#used > this.#start) {
      this.#parts.push(this.#run!.subarray(this.#start, this.#used));
      this.#start = this.#used;
    }
  }
}
