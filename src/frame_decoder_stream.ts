/**
 * Bytes to frames, as a `TransformStream`.
 *
 * @module
 */

import type { Frame } from "./frame.ts";
import { FrameDecoder, type FrameDecoderOptions } from "./frame_decoder.ts";

/** Options for {@linkcode FrameDecoderStream}. */
export type FrameDecoderStreamOptions = FrameDecoderOptions;

/**
 * Parses a byte stream into frames, in any chunking. The stream errors with
 * a {@linkcode WebSocketError} when the peer breaks the protocol, or with
 * `unexpected_end` (1006) if the bytes end in the middle of a frame.
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
export class FrameDecoderStream extends TransformStream<Uint8Array, Frame> {
  /** Creates a decoding stream for one direction of one connection. */
  constructor(options: FrameDecoderStreamOptions) {
    const decoder = new FrameDecoder(options);
    let emit: (frame: Frame) => void;
    super({
      start: (controller) => {
        emit = (frame) => controller.enqueue(frame);
      },
      transform: (chunk) => decoder.push(chunk, emit),
      flush: () => decoder.end(),
    });
  }
}
