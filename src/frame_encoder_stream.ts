/**
 * Frames to bytes, as a `TransformStream`.
 *
 * @module
 */

import type { Frame } from "./frame.ts";
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
export class FrameEncoderStream extends TransformStream<Frame, Uint8Array> {
  /** Creates an encoding stream for one direction of one connection. */
  constructor(options: FrameEncoderStreamOptions) {
    const encoder = new FrameEncoder(options);
    let emit: (bytes: Uint8Array) => void;
    super({
      start: (controller) => {
        emit = (bytes) => controller.enqueue(bytes);
      },
      transform: (frame) => encoder.encode(frame, emit),
    });
  }
}
