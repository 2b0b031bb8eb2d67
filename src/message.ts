/**
 * Messages (RFC 6455 §5.4, §5.6): what the application sends and receives.
 *
 * @module
 */

/**
 * A whole message: text as a `string`, binary as a `Uint8Array`, as the
 * WHATWG WebSocketStream proposal has it.
 */
export type Message = string | Uint8Array;

/** The kind of a message, from the opcode of its first frame. */
export type MessageType = "text" | "binary";

/**
 * A message received in streaming mode: its data arrives fragment by
 * fragment on `stream`, with backpressure, so a message of any size can
 * pass through bounded memory. Text arrives as strings (already validated
 * and decoded), binary as bytes. Read it once: with `stream`, `text()` or
 * `bytes()`.
 */
export interface IncomingMessage {
  /** Text or binary. */
  readonly type: MessageType;
  /** The message's data, as it arrives. */
  readonly stream: ReadableStream<string | Uint8Array>;
  /** Reads the whole message as text (binary is decoded as UTF-8). */
  text(): Promise<string>;
  /** Reads the whole message as bytes (text is encoded as UTF-8). */
  bytes(): Promise<Uint8Array>;
}

/**
 * A message to send whose data comes from a stream: each chunk goes out as
 * one or more fragments as soon as it arrives. Strings are encoded as UTF-8;
 * a text message may split a character between chunks only if its bytes are
 * given as `Uint8Array`s.
 */
export interface OutgoingMessage {
  /** Text or binary. */
  readonly type: MessageType;
  /** The message's data. */
  readonly stream: ReadableStream<string | Uint8Array>;
}

/**
 * The default limit on a whole message's size: 16 MiB, like the frame limit.
 * Streaming mode has no default limit: it never holds a whole message.
 *
 * @example A smaller limit for a chat
 * ```ts
 * import { DEFAULT_MAX_MESSAGE_SIZE } from "./message.ts";
 * import { MessageDecoderStream } from "./message_decoder_stream.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_MAX_MESSAGE_SIZE, 16 * 1024 * 1024);
 * const decoder = new MessageDecoderStream({ maxMessageSize: 16 * 1024 });
 * assert.ok(decoder.writable instanceof WritableStream);
 * ```
 */
export const DEFAULT_MAX_MESSAGE_SIZE: number = 16 * 1024 * 1024;

/**
 * The default size at which outgoing messages are split into fragments: 1 MiB.
 *
 * @example A message one byte over the size goes out as two frames
 * ```ts
 * import { DEFAULT_FRAGMENT_SIZE } from "./message.ts";
 * import { MessageEncoderStream } from "./message_encoder_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const frames = await Array.fromAsync(
 *   ReadableStream.from([new Uint8Array(DEFAULT_FRAGMENT_SIZE + 1)])
 *     .pipeThrough(new MessageEncoderStream()),
 * );
 * assert.deepEqual(frames.map((f) => [f.fin, f.payload.length]), [
 *   [false, DEFAULT_FRAGMENT_SIZE],
 *   [true, 1],
 * ]);
 * ```
 */
export const DEFAULT_FRAGMENT_SIZE: number = 1024 * 1024;
