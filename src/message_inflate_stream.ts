/**
 * Decompressing incoming messages (RFC 7692 §6.2, §7.2.2): frames to
 * frames, between the frame decoder and the message decoder.
 *
 * @module
 */

import { Stage } from "./_stage.ts";
import { Inflater, TrailingDataError } from "./_zlib.ts";
import { WebSocketError } from "./errors.ts";
import type { Frame } from "./frame.ts";
import { isControlOpcode, Opcode } from "./opcode.ts";

/** Options for {@linkcode MessageInflateStream}. */
export interface MessageInflateStreamOptions {
  /**
   * The peer's largest LZ77 window, as agreed: 8 to 15.
   *
   * @default {15}
   */
  windowBits?: number;
  /**
   * The peer compresses each message with an empty context, so the
   * decompressor can be dropped after each message (less memory).
   *
   * @default {false}
   */
  noContextTakeover?: boolean;
}

const NONE = 0;
const PLAIN = 1;
const COMPRESSED = 2;

function violation(what: string): never {
  throw new WebSocketError(`Cannot decode frame: ${what}`, {
    code: "reserved_bits",
  });
}

/**
 * Decompresses the messages a peer compressed with permessage-deflate,
 * frame by frame: a message whose first frame has RSV1 set is inflated as
 * its frames arrive, and comes out as frames of at most 16 KiB of
 * decompressed data with RSV1 clear; other frames pass through. The
 * output is handed on as zlib produces it, so a message decoder after it
 * applies its size limit to the decompressed size while the message
 * inflates: a small frame that would inflate to gigabytes fails as soon as
 * the limit is passed. While the reader is behind, zlib waits.
 *
 * The stream errors with a {@linkcode WebSocketError}: 1002 for RSV1 on a
 * control frame or a continuation (§6.1: "An endpoint MUST NOT set the
 * "Per-Message Compressed" bit of control frames and non-first fragments
 * of a data message"), 1007 for data that does not inflate, or that goes
 * on after a final DEFLATE block.
 *
 * A message may end its DEFLATE data with a final block (BFINAL, §7.2.3.4);
 * the next message then inflates with a new, empty context.
 *
 * @example A compressed "Hello" (RFC 7692 §7.2.3.1)
 * ```ts
 * import { MessageInflateStream } from "./message_inflate_stream.ts";
 * import { MessageDecoderStream } from "./message_decoder_stream.ts";
 * import { Opcode } from "./opcode.ts";
 * import assert from "node:assert/strict";
 *
 * const payload = new Uint8Array([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
 * const frame = { fin: true, rsv1: true, rsv2: false, rsv3: false, opcode: Opcode.Text, payload };
 * const messages = await Array.fromAsync(
 *   ReadableStream.from([frame])
 *     .pipeThrough(new MessageInflateStream())
 *     .pipeThrough(new MessageDecoderStream()),
 * );
 * assert.deepEqual(messages, ["Hello"]);
 * ```
 */
export class MessageInflateStream extends Stage<Frame, Frame> {
  readonly #inflater: Inflater;
  #state = NONE;
  #opcode: Opcode = Opcode.Continuation;
  #first = true;
  #held: Uint8Array | null = null;
  readonly #onData = (chunk: Uint8Array) => this.#output(chunk);

  /** Creates a decompressing stream for one direction of one connection. */
  constructor(options: MessageInflateStreamOptions = {}) {
    super();
    this.#inflater = new Inflater({
      windowBits: options.windowBits ?? 15,
      noContextTakeover: options.noContextTakeover === true,
    });
  }

  /** Its transform waits for zlib, so nothing fuses into it. */
  protected override get fusable(): boolean {
    return false;
  }

  /** Takes one frame. */
  protected transform(frame: Frame): void | Promise<void> {
    const opcode = frame.opcode;
    if (isControlOpcode(opcode)) {
      if (frame.rsv1) violation("RSV1 is set on a control frame");
      this.enqueue(frame);
      return;
    }
    if (opcode === Opcode.Continuation) {
      if (frame.rsv1) violation("RSV1 is set on a continuation frame");
      // With no message open, the message decoder reports the misplaced
      // continuation.
      if (this.#state !== COMPRESSED) {
        if (frame.fin) this.#state = NONE;
        this.enqueue(frame);
        return;
      }
    } else {
      // A new message; an unfinished one is the message decoder's to report.
      if (!frame.rsv1) {
        this.#state = frame.fin ? NONE : PLAIN;
        this.enqueue(frame);
        return;
      }
      this.#state = COMPRESSED;
      this.#opcode = opcode;
      this.#first = true;
    }
    return this.#inflate(frame.payload, frame.fin);
  }

  async #inflate(payload: Uint8Array, fin: boolean): Promise<void> {
    try {
      await this.#inflater.inflate(payload, fin, this.#onData);
    } catch (error) {
      if (error instanceof WebSocketError) throw error;
      // RFC 7692 names no close code for data that does not inflate. 1007
      // is RFC 6455 §7.4.1's "data within a message that was not
      // consistent with the type of the message", and what ws sends
      // (python-websockets sends 1002).
      throw new WebSocketError(
        error instanceof TrailingDataError
          ? "Cannot decode message: data follows its final DEFLATE block"
          : "Cannot decode message: its compressed data does not inflate",
        { code: "invalid_compressed_data", cause: error },
      );
    }
    // The last output of the frame goes on now (with FIN if the message
    // ends): nothing waits for the next frame.
    const held = this.#held;
    this.#held = null;
    if (fin) {
      this.#state = NONE;
      this.#emit(held ?? EMPTY, true);
    } else if (held !== null) {
      this.#emit(held, false);
    }
  }

  // One output chunk: the one before it goes on, this one waits to learn
  // whether it is the message's last. zlib pauses while the reader is
  // behind (a message body not read): what bounds the memory a message
  // streamed to a slow reader takes, however far it would inflate.
  #output(chunk: Uint8Array): Promise<void> | undefined {
    const held = this.#held;
    this.#held = chunk;
    if (held !== null) this.#emit(held, false);
    return this.ready();
  }

  #emit(payload: Uint8Array, fin: boolean): void {
    const opcode = this.#first ? this.#opcode : Opcode.Continuation;
    this.#first = false;
    this.enqueue({
      fin,
      rsv1: false,
      rsv2: false,
      rsv3: false,
      opcode,
      payload,
    });
  }

  /** Frees the decompressor. */
  protected override flush(): void {
    this.#inflater.close();
  }

  /** Frees the decompressor. */
  protected override cleanup(_reason: unknown): void {
    this.#inflater.close();
  }
}

const EMPTY = new Uint8Array(0);
