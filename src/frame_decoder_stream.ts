/**
 * Bytes to frames, as a `TransformStream`.
 *
 * @module
 */

import type { Frame } from "./frame.ts";
import { Stage } from "./_stage.ts";
import { FrameDecoder, type FrameDecoderOptions } from "./frame_decoder.ts";

/** Options for {@linkcode FrameDecoderStream}. */
export type FrameDecoderStreamOptions = FrameDecoderOptions;

/**
 * Parses a byte stream into frames, in any chunking. The stream errors with
 * a {@linkcode WebSocketError} when the peer breaks the protocol, or with
 * `unexpected_end` (1006) if the bytes end in the middle of a frame. Piped
 * into a {@linkcode MessageDecoderStream}, it hands frames over without a
 * stream hop.
 *
 * @example Decoding an unmasked "Hello" split into two chunks
 * ```ts
 * import { FrameDecoderStream } from "./frame_decoder_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = ReadableStream.from([
 *   new Uint8Array([0x81, 0x05, 0x48]),
 *   new Uint8Array([0x65, 0x6c, 0x6c, 0x6f]),
 * ]);
 * const frames = await Array.fromAsync(
 *   bytes.pipeThrough(new FrameDecoderStream({ role: "client" })),
 * );
 * assert.equal(frames.length, 1);
 * assert.equal(new TextDecoder().decode(frames[0].payload), "Hello");
 * ```
 */
export class FrameDecoderStream extends Stage<Uint8Array, Frame> {
  readonly #decoder: FrameDecoder;
  readonly #emit = (frame: Frame) => this.enqueue(frame);

  /** Creates a decoding stream for one direction of one connection. */
  constructor(options: FrameDecoderStreamOptions) {
    super();
    this.#decoder = new FrameDecoder(options);
  }

  /** Parses one chunk of bytes. */
  protected transform(chunk: Uint8Array): void {
    this.#decoder.push(chunk, this.#emit);
  }

  /** Checks that the bytes did not end mid-frame. */
  protected override flush(): void {
    this.#decoder.end();
  }
}
