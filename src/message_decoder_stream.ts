/**
 * Frames to messages, as a stream: whole messages, or each message as a
 * stream of its own.
 *
 * @module
 */

import { concat } from "./_bytes.ts";
import { Pieces } from "./_pieces.ts";
import { Stage } from "./_stage.ts";
import { Utf8Text } from "./_message_frames.ts";
import {
  decodeUtf8,
  invalidUtf8,
  isValidUtf8,
  Utf8Validator,
} from "./_utf8.ts";
import { WebSocketError } from "./errors.ts";
import { Opcode } from "./opcode.ts";
import type { Frame } from "./frame.ts";
import type { IncomingMessage, Message, MessageType } from "./message.ts";
import {
  MessageDecoder,
  type MessageDecoderOptions,
  type MessageHandler,
} from "./message_decoder.ts";

/** Options for {@linkcode MessageDecoderStream}. */
export interface MessageDecoderStreamOptions<S extends boolean = boolean>
  extends MessageDecoderOptions {
  /**
   * Deliver each message as an {@linkcode IncomingMessage} as soon as its
   * first frame arrives, its data following on `message.stream`, instead of
   * as a whole `string` or `Uint8Array`. Frames are pulled only as fast as
   * each message's stream is read, and no whole message is ever held, so
   * `maxMessageSize` has no default limit in this mode.
   *
   * @default {false}
   */
  streaming?: S;
  /**
   * Called with each control frame (ping, pong, close), in the order the
   * frames arrived, including between the fragments of a message. Without
   * it, control frames are dropped. A Close frame also ends the stream of
   * messages (RFC 6455 §5.5.1): anything after it is ignored.
   *
   * @default {undefined}
   */
  onControl?: (frame: Frame) => void;
}

/** What a {@linkcode MessageDecoderStream} yields: by mode. */
export type DecodedMessage<S extends boolean> = S extends true ? IncomingMessage
  : Message;

// The handler a MessageDecoderStream gives its MessageDecoder (made in the
// class's static block, where it can reach the stream's private methods).
let Handler: new (
  stage: MessageDecoderStream<boolean>,
  texts: boolean,
) => MessageHandler;

/**
 * Reassembles frames into messages (RFC 6455 §5.4): text as `string`,
 * binary as `Uint8Array`, or with `{ streaming: true }` as
 * {@linkcode IncomingMessage}s. Errors with a {@linkcode WebSocketError}
 * when the peer breaks the rules: a misplaced continuation (1002), invalid
 * UTF-8 (1007, at the first fragment that shows it), a message over
 * `maxMessageSize` (1009).
 *
 * @example The whole incoming pipeline
 * ```ts
 * import { FrameDecoderStream } from "./frame_decoder_stream.ts";
 * import { MessageDecoderStream } from "./message_decoder_stream.ts";
 * import assert from "node:assert/strict";
 *
 * // RFC 6455 §5.7: "Hel" and "lo" as two fragments, then binary [1, 2].
 * const bytes = ReadableStream.from([
 *   new Uint8Array([0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]),
 *   new Uint8Array([0x82, 0x02, 0x01, 0x02]),
 * ]);
 * const messages = await Array.fromAsync(
 *   bytes
 *     .pipeThrough(new FrameDecoderStream({ role: "client" }))
 *     .pipeThrough(new MessageDecoderStream()),
 * );
 * assert.deepEqual(messages, ["Hello", new Uint8Array([1, 2])]);
 * ```
 *
 * @example Streaming a message
 * ```ts
 * import { FrameDecoderStream } from "./frame_decoder_stream.ts";
 * import { MessageDecoderStream } from "./message_decoder_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = ReadableStream.from([
 *   new Uint8Array([0x02, 0x02, 0x01, 0x02, 0x80, 0x01, 0x03]),
 * ]);
 * const messages = bytes
 *   .pipeThrough(new FrameDecoderStream({ role: "client" }))
 *   .pipeThrough(new MessageDecoderStream({ streaming: true }));
 * for await (const message of messages) {
 *   assert.equal(message.type, "binary");
 *   assert.deepEqual(await message.bytes(), new Uint8Array([1, 2, 3]));
 * }
 * ```
 */
export class MessageDecoderStream<S extends boolean = false>
  extends Stage<Frame, DecodedMessage<S>> {
  readonly #decoder: MessageDecoder;
  readonly #handler: MessageHandler;
  readonly #onControl: ((frame: Frame) => void) | undefined;
  readonly #streaming: boolean;
  // Piped directly into a writable that takes checked UTF-8 (see
  // pipedDirectly): texts go on as Utf8Text.
  #direct = false;
  // Whole mode: the handler for texts taken as bytes (see transform), made
  // when first needed, and the checker of the text being assembled.
  #textHandler: MessageHandler | null = null;
  #utf8: Utf8Validator | null = null;

  // Whole mode: the pieces of the message being assembled, made when a
  // message first comes in more than one.
  #pieces: Pieces | null = null;

  // Streaming mode: the body of the message being streamed.
  #body: ReadableStreamDefaultController<string | Uint8Array> | null = null;
  #bodyCancelled = false;

  #closeReceived = false;

  /** Creates a decoding stream for one direction of one connection. */
  constructor(options: MessageDecoderStreamOptions<S> = {}) {
    super();
    const streaming = this.#streaming = options.streaming === true;
    this.#decoder = new MessageDecoder({
      maxMessageSize: options.maxMessageSize ??
        (streaming ? Infinity : undefined),
    });
    const onControl = options.onControl;
    if (onControl !== undefined && typeof onControl !== "function") {
      throw new TypeError(
        "Cannot create MessageDecoderStream: onControl must be a function",
      );
    }
    this.#onControl = onControl;
    this.#handler = new Handler(this, false);
  }

  static {
    // What the MessageDecoder core calls back: one small object, not a
    // closure per method. `texts`: texts gathered as bytes (see transform).
    Handler = class implements MessageHandler {
      readonly #stage: MessageDecoderStream<boolean>;
      readonly #texts: boolean;

      constructor(stage: MessageDecoderStream<boolean>, texts: boolean) {
        this.#stage = stage;
        this.#texts = texts;
      }

      data(data: string | Uint8Array, first: boolean, last: boolean): void {
        const stage = this.#stage;
        if (this.#texts) stage.#text(data as Uint8Array, first, last);
        else if (stage.#streaming) stage.#stream(data, first, last);
        else stage.#assemble(data, first, last);
      }

      control(frame: Frame): void {
        this.#stage.#onControl?.(frame);
      }
    };
  }

  /** Takes one frame. */
  protected transform(frame: Frame): void {
    // §5.5.1: after a Close frame the peer sends nothing more; whatever it
    // sends anyway is dropped.
    if (this.#closeReceived) return;
    const opcode = frame.opcode;
    // Whole mode: a text in several pieces (and, piped directly, every
    // text) is gathered as bytes, checked as UTF-8 piece by piece (failing
    // at the piece that shows it), and decoded once whole. A string per
    // piece would cost many times its bytes when the pieces are small. The
    // decoder checks it as a binary message: the same rules but for UTF-8.
    if (
      !this.#streaming &&
      (opcode === Opcode.Text
        ? !frame.fin || this.#direct
        : opcode === Opcode.Continuation && this.#utf8 !== null)
    ) {
      if (opcode === Opcode.Text) {
        this.#utf8 = frame.fin ? null : new Utf8Validator();
        frame = { ...frame, opcode: Opcode.Binary };
      }
      this.#decoder.push(frame, this.#textHandler ??= new Handler(this, true));
      return;
    }
    this.#decoder.push(frame, this.#handler);
    if (opcode === Opcode.Close) this.#closed();
  }

  // A text gathered as bytes, checked as UTF-8 piece by piece.
  #text(bytes: Uint8Array, first: boolean, last: boolean): void {
    const utf8 = this.#utf8;
    const valid = utf8 === null
      ? isValidUtf8(bytes)
      : utf8.push(bytes) && (!last || utf8.end());
    if (!valid) throw invalidUtf8();
    const whole = this.#gather(bytes, first, last);
    if (whole === null) return;
    this.#utf8 = null;
    this.enqueue(
      (this.#direct
        ? new Utf8Text(whole)
        : decodeUtf8(whole)) as DecodedMessage<S>,
    );
  }

  /**
   * Piped directly into a connection's writable (an echo, a relay): texts
   * go on as their bytes, checked to be UTF-8, instead of being decoded
   * into a string that the writable would encode back. A fragmented text
   * (or one that inflates in pieces) is checked fragment by fragment, so
   * it fails at the same fragment as it would when decoded. Nothing else
   * changes: the same messages go out, and the same errors stop the pipe.
   */
  protected override pipedDirectly(utf8Text: boolean): void {
    this.#direct = utf8Text;
  }

  // A Close frame ends the messages. A message it interrupts is incomplete:
  // dropped, or its stream errored.
  #closed(): void {
    this.#closeReceived = true;
    const body = this.#body;
    this.#body = null;
    this.#pieces?.clear();
    this.#utf8 = null;
    if (body !== null && !this.#bodyCancelled) {
      this.#failBody(
        body,
        new WebSocketError(
          "Cannot decode message: the peer closed the connection in the middle of it",
          { code: "unexpected_end" },
        ),
      );
    }
    this.closeOutput();
  }

  /** Checks that the frames did not end mid-message. */
  protected override flush(): void {
    if (!this.#closeReceived) this.#decoder.end();
  }

  /** Fails the body of a message being streamed. */
  protected override cleanup(reason: unknown): void {
    const body = this.#body;
    this.#body = null;
    if (body !== null && !this.#bodyCancelled) this.#failBody(body, reason);
  }

  // Errors a body once its reader has had the data before the failure
  // (erroring a stream drops its queue).
  #failBody(
    body: ReadableStreamDefaultController<string | Uint8Array>,
    reason: unknown,
  ): void {
    if (body.desiredSize! >= 1) body.error(reason);
    else (this.#bodyFailures ??= new WeakMap()).set(body, reason);
  }

  // Made on the first such failure: most decoders never see one.
  #bodyFailures:
    | WeakMap<
      ReadableStreamDefaultController<string | Uint8Array>,
      unknown
    >
    | null = null;

  /** Waits, in streaming mode, for the current message to be read. */
  protected override ready(): Promise<void> | undefined {
    const body = this.#body;
    if (body !== null && !this.#bodyCancelled && body.desiredSize! <= 0) {
      return this.wait();
    }
    return super.ready();
  }

  // Whole mode: texts in one piece come decoded, the rest as bytes.
  #assemble(data: string | Uint8Array, first: boolean, last: boolean): void {
    const whole = first && last ? data : this.#gather(
      data as Uint8Array,
      first,
      last,
    );
    if (whole !== null) this.enqueue(whole as DecodedMessage<S>);
  }

  // Whole mode: one piece of a message's bytes; the message once whole.
  #gather(bytes: Uint8Array, first: boolean, last: boolean): Uint8Array | null {
    if (first && last) return bytes;
    const pieces = this.#pieces ??= new Pieces();
    pieces.push(bytes, last);
    return last ? pieces.take() : null;
  }

  #stream(data: string | Uint8Array, first: boolean, last: boolean): void {
    if (first) {
      let body!: ReadableStreamDefaultController<string | Uint8Array>;
      const stream = new ReadableStream<string | Uint8Array>({
        start: (controller) => {
          body = controller;
        },
        pull: () => {
          const failures = this.#bodyFailures;
          if (failures !== null && failures.has(body)) {
            body.error(failures.get(body));
          } else this.wake();
        },
        cancel: () => {
          // The reader gave up on this message: the rest of its fragments
          // are still checked, then dropped.
          if (this.#body === body) this.#bodyCancelled = true;
          this.wake();
        },
      });
      this.#body = body;
      this.#bodyCancelled = false;
      const type: MessageType = typeof data === "string" ? "text" : "binary";
      this.enqueue(
        new StreamedMessage(type, stream) as unknown as DecodedMessage<S>,
      );
    }
    const body = this.#body!;
    if (!this.#bodyCancelled && data.length > 0) body.enqueue(data);
    if (last) {
      if (!this.#bodyCancelled) body.close();
      this.#body = null;
    }
  }
}

const utf8Encoder = new TextEncoder();

class StreamedMessage implements IncomingMessage {
  readonly type: MessageType;
  readonly stream: ReadableStream<string | Uint8Array>;

  constructor(type: MessageType, stream: ReadableStream<string | Uint8Array>) {
    this.type = type;
    this.stream = stream;
  }

  async text(): Promise<string> {
    const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
    let text = "";
    const reader = this.stream.getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) return text + decoder.decode();
      text += typeof value === "string"
        ? value
        : decoder.decode(value, { stream: true });
    }
  }

  async bytes(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    const reader = this.stream.getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) return concat(parts);
      parts.push(typeof value === "string" ? utf8Encoder.encode(value) : value);
    }
  }
}
