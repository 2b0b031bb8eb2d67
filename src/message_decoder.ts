/**
 * A sans-I/O reassembler from frames to messages (RFC 6455 §5.4, §5.6, §8.1).
 *
 * @module
 */

import { checkSize } from "./_options.ts";
import { decodeUtf8, invalidUtf8, utf8Decoder } from "./_utf8.ts";
import { WebSocketError, type WebSocketErrorCode } from "./errors.ts";
import type { Frame } from "./frame.ts";
import { DEFAULT_MAX_MESSAGE_SIZE } from "./message.ts";
import { isControlOpcode, Opcode } from "./opcode.ts";

/** Options for {@linkcode MessageDecoder}. */
export interface MessageDecoderOptions {
  /**
   * The largest message, in bytes, summed over its fragments before any is
   * kept; a larger one fails with 1009. `Infinity` for no limit.
   *
   * @default {16777216} (16 MiB)
   */
  maxMessageSize?: number;
}

/** Where a {@linkcode MessageDecoder} delivers what it decodes. */
export interface MessageHandler {
  /**
   * One data frame's share of a message: text already validated and
   * decoded, binary as bytes. `first` and `last` mark the message's bounds;
   * a message in one frame comes as one call with both set.
   */
  data(data: string | Uint8Array, first: boolean, last: boolean): void;
  /** A control frame, in the order it arrived, even inside a message. */
  control(frame: Frame): void;
}

const NONE = 0;
const TEXT = 1;
const BINARY = 2;

const STREAM = { stream: true } as const;

/**
 * Turns frames into messages, synchronously: checks the order of fragments,
 * validates text as UTF-8 fragment by fragment (failing at the first
 * fragment that proves it invalid), and enforces the message-size limit.
 * It hands data on as it arrives, so the caller chooses between keeping
 * whole messages and streaming them.
 *
 * @example Reassembling the RFC 6455 §5.7 fragmented "Hello" around a ping
 * ```ts
 * import { MessageDecoder } from "./message_decoder.ts";
 * import { Opcode } from "./opcode.ts";
 * import assert from "node:assert/strict";
 *
 * const text = (s: string) => new TextEncoder().encode(s);
 * const frame = { rsv1: false, rsv2: false, rsv3: false };
 * const decoder = new MessageDecoder();
 * const parts: string[] = [];
 * const pings: string[] = [];
 * const handler = {
 *   data: (data: string | Uint8Array) => parts.push(data as string),
 *   control: (f: { payload: Uint8Array }) => pings.push(new TextDecoder().decode(f.payload)),
 * };
 * decoder.push({ ...frame, fin: false, opcode: Opcode.Text, payload: text("Hel") }, handler);
 * decoder.push({ ...frame, fin: true, opcode: Opcode.Ping, payload: text("?") }, handler);
 * decoder.push({ ...frame, fin: true, opcode: Opcode.Continuation, payload: text("lo") }, handler);
 *
 * assert.equal(parts.join(""), "Hello");
 * assert.deepEqual(pings, ["?"]);
 * ```
 */
export class MessageDecoder {
  readonly #maxMessageSize: number;
  // For fragmented text, made when first needed.
  #utf8: TextDecoder | null = null;
  #type = NONE;
  #size = 0;
  #error: unknown = null;

  /** Creates a decoder for one direction of one connection. */
  constructor(options: MessageDecoderOptions = {}) {
    this.#maxMessageSize = checkSize(
      "maxMessageSize",
      options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE,
      { infinite: true },
    );
  }

  /** Whether a message has begun and not yet ended. */
  get pending(): boolean {
    return this.#type !== NONE;
  }

  /**
   * Takes one frame, handing its data or the frame itself to `handler`.
   *
   * @throws {WebSocketError} if the peer broke the protocol.
   */
  push(frame: Frame, handler: MessageHandler): void {
    if (this.#error !== null) throw this.#error;
    try {
      this.#push(frame, handler);
    } catch (error) {
      this.#error = error;
      throw error;
    }
  }

  /**
   * Declares the end of the frames.
   *
   * @throws {WebSocketError} (`unexpected_end`, 1006) if a message is open.
   */
  end(): void {
    if (this.#error !== null) throw this.#error;
    if (this.#type !== NONE) {
      this.#error = new WebSocketError(
        "Cannot decode message: the frames ended in the middle of a message",
        { code: "unexpected_end" },
      );
      throw this.#error;
    }
  }

  #push(frame: Frame, handler: MessageHandler): void {
    const opcode = frame.opcode;
    if (isControlOpcode(opcode)) {
      // §5.4: "Control frames MAY be injected in the middle of a fragmented
      // message."
      handler.control(frame);
      return;
    }
    let first: boolean;
    if (opcode === Opcode.Continuation) {
      if (this.#type === NONE) {
        fail(
          "unexpected_continuation",
          "a continuation frame arrived with no message to continue",
        );
      }
      first = false;
    } else {
      if (this.#type !== NONE) {
        fail(
          "expected_continuation",
          "a new message began before the previous one was finished",
        );
      }
      this.#type = opcode === Opcode.Text ? TEXT : BINARY;
      this.#size = 0;
      first = true;
    }

    const payload = frame.payload;
    this.#size += payload.length;
    if (this.#size > this.#maxMessageSize) {
      fail(
        "message_too_big",
        `a message of more than ${this.#maxMessageSize} bytes arrived`,
      );
    }

    const last = frame.fin;
    if (this.#type === TEXT) {
      let text: string;
      try {
        if (first && last) text = decodeUtf8(payload);
        else {
          const utf8 = this.#utf8 ??= utf8Decoder();
          text = last ? utf8.decode(payload) : utf8.decode(payload, STREAM);
        }
      } catch (cause) {
        throw invalidUtf8(cause);
      }
      if (last) this.#type = NONE;
      handler.data(text, first, last);
    } else {
      if (last) this.#type = NONE;
      handler.data(payload, first, last);
    }
  }
}

function fail(
  code: WebSocketErrorCode,
  what: string,
  cause?: unknown,
): never {
  throw new WebSocketError(`Cannot decode message: ${what}`, {
    code,
    cause,
  });
}
