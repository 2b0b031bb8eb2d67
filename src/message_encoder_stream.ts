/**
 * Messages to frames, as a stream, with room for control frames between
 * the fragments of a message being sent.
 *
 * @module
 */

import { Stage } from "./_stage.ts";
import { type Frame, MAX_CONTROL_PAYLOAD } from "./frame.ts";
import type { OutgoingMessage } from "./message.ts";
import {
  dataFrame,
  messageBytes,
  messageOpcode,
  Utf8Text,
} from "./_message_frames.ts";
import {
  MessageEncoder,
  type MessageEncoderOptions,
} from "./message_encoder.ts";
import { isControlOpcode, isKnownOpcode, Opcode } from "./opcode.ts";

/** Options for {@linkcode MessageEncoderStream}. */
export type MessageEncoderStreamOptions = MessageEncoderOptions;

/**
 * What a {@linkcode MessageEncoderStream} accepts: a `string` (a text
 * message), bytes (a binary message), or an {@linkcode OutgoingMessage}
 * whose data comes from a stream.
 */
export type MessageInput =
  | string
  | Uint8Array
  | ArrayBuffer
  | ArrayBufferView
  | OutgoingMessage;

const EMPTY = new Uint8Array(0);

/**
 * Splits messages into frames (RFC 6455 §5.4). A message larger than
 * `fragmentSize` goes out fragment by fragment, each waiting for the reader,
 * so {@linkcode MessageEncoderStream.sendControl} can slot a pong between
 * the fragments of a large upload. An {@linkcode OutgoingMessage} goes out
 * as its stream produces data, ending with an empty final fragment.
 *
 * @example The whole outgoing pipeline
 * ```ts
 * import { FrameEncoderStream } from "./frame_encoder_stream.ts";
 * import { MessageEncoderStream } from "./message_encoder_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const chunks = await Array.fromAsync(
 *   ReadableStream.from(["Hello"])
 *     .pipeThrough(new MessageEncoderStream())
 *     .pipeThrough(new FrameEncoderStream({ role: "server" })),
 * );
 * assert.deepEqual(chunks, [new Uint8Array([0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])]);
 * ```
 *
 * @example Streaming a message out
 * ```ts
 * import { MessageEncoderStream } from "./message_encoder_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const body = ReadableStream.from([new Uint8Array([1, 2]), new Uint8Array([3])]);
 * const frames = await Array.fromAsync(
 *   ReadableStream.from([{ type: "binary" as const, stream: body }])
 *     .pipeThrough(new MessageEncoderStream()),
 * );
 * assert.deepEqual(frames.map((f) => [f.opcode, f.fin, [...f.payload]]), [
 *   [0x2, false, [1, 2]],
 *   [0x0, false, [3]],
 *   [0x0, true, []],
 * ]);
 * ```
 */
export class MessageEncoderStream extends Stage<MessageInput, Frame> {
  readonly #encoder: MessageEncoder;
  readonly #emit = (frame: Frame) => this.enqueue(frame);

  /** Creates an encoding stream for one direction of one connection. */
  constructor(options: MessageEncoderStreamOptions = {}) {
    super();
    this.#encoder = new MessageEncoder(options);
  }

  /**
   * Sends a control frame (ping, pong or close) now: after the frames
   * already handed to the reader, ahead of the rest of a message still being
   * written and of messages waiting to be written. A Close frame is the last
   * frame (RFC 6455 §5.5.1: "The application MUST NOT send any more data
   * frames after sending a Close frame"): the stream ends after it, and
   * messages not yet sent are dropped.
   *
   * @throws {RangeError} if the frame is not a valid control frame.
   * @throws {TypeError} if the stream has closed.
   */
  sendControl(frame: Frame): void {
    const opcode = frame.opcode;
    if (!isKnownOpcode(opcode) || !isControlOpcode(opcode)) {
      throw new RangeError(
        `Cannot send control frame: opcode 0x${
          Number(opcode).toString(16)
        } is not a control opcode`,
      );
    }
    if (!frame.fin || frame.payload.length > MAX_CONTROL_PAYLOAD) {
      throw new RangeError(
        "Cannot send control frame: it must be final and carry at most 125 bytes",
      );
    }
    if (this.finished || this.outputClosed) {
      throw new TypeError("Cannot send control frame: the stream is closed");
    }
    this.enqueue(frame);
    if (opcode === Opcode.Close) this.closeOutput();
  }

  /** Its transform may wait on a message body, so nothing fuses into it. */
  protected override get fusable(): boolean {
    return false;
  }

  /** Takes one message. */
  protected transform(message: MessageInput): void | Promise<void> {
    if (this.outputClosed) throw closedError();
    if (typeof message === "string" || message instanceof Uint8Array) {
      return this.#send(message);
    }
    if (message instanceof Utf8Text) {
      return this.#sendBytes(message.bytes, Opcode.Text);
    }
    if (message instanceof ArrayBuffer) {
      return this.#send(new Uint8Array(message));
    }
    if (ArrayBuffer.isView(message)) {
      return this.#send(
        new Uint8Array(message.buffer, message.byteOffset, message.byteLength),
      );
    }
    if (isOutgoingMessage(message)) return this.#sendStream(message);
    throw new TypeError(
      "Cannot send message: expected a string, bytes or { type, stream }",
    );
  }

  #send(message: string | Uint8Array): void | Promise<void> {
    if (typeof message !== "string") {
      return this.#sendBytes(message, Opcode.Binary);
    }
    // Strings are at most 3 bytes per UTF-16 unit, so most need no measuring.
    if (message.length * 3 <= this.#encoder.fragmentSize) {
      this.#encoder.encode(message, this.#emit);
      return;
    }
    return this.#sendFragments(messageBytes(message), Opcode.Text, true);
  }

  // A whole message's bytes: binary, or a text known to be UTF-8 (from a
  // decoder piped directly into a connection), in one frame or fragments.
  #sendBytes(bytes: Uint8Array, opcode: Opcode): void | Promise<void> {
    if (bytes.length <= this.#encoder.fragmentSize) {
      this.#emit(dataFrame(opcode, bytes, true));
      return;
    }
    return this.#sendFragments(bytes, opcode, true);
  }

  // Sends `bytes` as fragments, waiting for the reader between them. The
  // first fragment carries `opcode`; `fin` marks the last as final.
  async #sendFragments(
    bytes: Uint8Array,
    opcode: Opcode,
    fin: boolean,
  ): Promise<void> {
    const size = this.#encoder.fragmentSize;
    for (let at = 0; at < bytes.length; at += size) {
      const end = Math.min(at + size, bytes.length);
      this.enqueue(
        dataFrame(
          at === 0 ? opcode : Opcode.Continuation,
          bytes.subarray(at, end),
          fin && end === bytes.length,
        ),
      );
      const waiting = this.ready();
      if (waiting !== undefined) await waiting;
      if (this.finished) {
        throw new TypeError("Cannot send message: the stream is closed");
      }
    }
  }

  async #sendStream(message: OutgoingMessage): Promise<void> {
    const reader = message.stream.getReader();
    let opcode = messageOpcode(message.type);
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (this.finished || this.outputClosed) throw closedError();
        if (done) break;
        const bytes = messageBytes(value);
        if (bytes.length === 0) continue;
        await this.#sendFragments(bytes, opcode, false);
        opcode = Opcode.Continuation;
      }
    } catch (error) {
      reader.cancel(error).catch(() => {});
      throw error;
    }
    this.enqueue(dataFrame(opcode, EMPTY, true));
  }
}

function closedError(): TypeError {
  return new TypeError("Cannot send message: a Close frame has been sent");
}

function isOutgoingMessage(value: unknown): value is OutgoingMessage {
  if (typeof value !== "object" || value === null) return false;
  const { type, stream } = value as Partial<OutgoingMessage>;
  return (type === "text" || type === "binary") &&
    stream instanceof ReadableStream;
}
