/**
 * A sans-I/O splitter from messages to frames (RFC 6455 §5.4).
 *
 * @module
 */

import { checkSize } from "./_options.ts";
import {
  dataFrame,
  messageBytes,
  messageOpcode,
  typeOf,
} from "./_message_frames.ts";
import type { Frame } from "./frame.ts";
import { DEFAULT_FRAGMENT_SIZE } from "./message.ts";
import { Opcode } from "./opcode.ts";

/** Options for {@linkcode MessageEncoder}. */
export interface MessageEncoderOptions {
  /**
   * Messages larger than this many bytes go out in fragments of this size,
   * so control frames can be sent between them. `Infinity` never splits.
   *
   * @default {1048576} (1 MiB)
   */
  fragmentSize?: number;
}

/**
 * Turns messages into frames, synchronously: text (a `string`) as a text
 * message, bytes as a binary message, split into fragments of at most
 * `fragmentSize` bytes. Fragments are views of the message's bytes, not
 * copies.
 *
 * @example Splitting a message into fragments
 * ```ts
 * import { MessageEncoder } from "./message_encoder.ts";
 * import { Opcode } from "./opcode.ts";
 * import type { Frame } from "./frame.ts";
 * import assert from "node:assert/strict";
 *
 * const frames: Frame[] = [];
 * new MessageEncoder({ fragmentSize: 3 }).encode("Hello", (f) => frames.push(f));
 * assert.deepEqual(frames.map((f) => [f.opcode, f.fin, f.payload.length]), [
 *   [Opcode.Text, false, 3],
 *   [Opcode.Continuation, true, 2],
 * ]);
 * ```
 */
export class MessageEncoder {
  /** The size of each fragment, in bytes. */
  readonly fragmentSize: number;

  /** Creates an encoder for one direction of one connection. */
  constructor(options: MessageEncoderOptions = {}) {
    this.fragmentSize = checkSize(
      "fragmentSize",
      options.fragmentSize ?? DEFAULT_FRAGMENT_SIZE,
      { min: 1, infinite: true },
    );
  }

  /**
   * Encodes one message, handing each of its frames to `emit`.
   *
   * @throws {TypeError} if `message` is neither a string nor bytes.
   */
  encode(message: string | Uint8Array, emit: (frame: Frame) => void): void {
    const opcode = messageOpcode(typeOf(message));
    const payload = messageBytes(message);
    const size = this.fragmentSize;
    if (payload.length <= size) {
      emit(dataFrame(opcode, payload, true));
      return;
    }
    for (let at = 0; at < payload.length; at += size) {
      const end = Math.min(at + size, payload.length);
      emit(
        dataFrame(
          at === 0 ? opcode : Opcode.Continuation,
          payload.subarray(at, end),
          end === payload.length,
        ),
      );
    }
  }
}
