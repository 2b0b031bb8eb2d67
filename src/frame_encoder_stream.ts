/**
 * Frames to bytes, as a `TransformStream`.
 *
 * @module
 */

import type { Frame } from "./frame.ts";
import { Stage } from "./_stage.ts";
import { FrameEncoder, type FrameEncoderOptions } from "./frame_encoder.ts";

/** Options for {@linkcode FrameEncoderStream}. */
export type FrameEncoderStreamOptions = FrameEncoderOptions;

/**
 * Serializes frames into bytes; a client masks each frame with a fresh key.
 * A frame the protocol forbids errors the stream with a `RangeError`.
 *
 * @example Encoding, then decoding again
 * ```ts
 * import { FrameDecoderStream } from "./frame_decoder_stream.ts";
 * import { FrameEncoderStream } from "./frame_encoder_stream.ts";
 * import { Opcode } from "./opcode.ts";
 * import assert from "node:assert/strict";
 *
 * const payload = new Uint8Array([1, 2, 3]);
 * const frames = await Array.fromAsync(
 *   ReadableStream.from([
 *     { fin: true, rsv1: false, rsv2: false, rsv3: false, opcode: Opcode.Binary, payload },
 *   ])
 *     .pipeThrough(new FrameEncoderStream({ role: "client" }))
 *     .pipeThrough(new FrameDecoderStream({ role: "server" })),
 * );
 * assert.deepEqual(frames[0].payload, payload);
 * ```
 */
export class FrameEncoderStream extends Stage<Frame, Uint8Array> {
  readonly #encoder: FrameEncoder;
  readonly #emit = (bytes: Uint8Array) => this.enqueue(bytes);

  /** Creates an encoding stream for one direction of one connection. */
  constructor(options: FrameEncoderStreamOptions) {
    super();
    this.#encoder = new FrameEncoder(options);
  }

  /** Serializes one frame. */
  protected transform(frame: Frame): void {
    this.#encoder.encode(frame, this.#emit);
  }
}
