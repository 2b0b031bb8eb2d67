/**
 * Compressing outgoing messages (RFC 7692 §6.1, §7.2.1): frames to
 * frames, between the message encoder and the frame encoder.
 *
 * @module
 */

import { checkSize } from "./_options.ts";
import { Stage } from "./_stage.ts";
import { type DeflateOptions, Deflater } from "./_zlib.ts";
import type { Frame } from "./frame.ts";
import { isControlOpcode, Opcode } from "./opcode.ts";
import { isSharedFrame } from "./_shared_message.ts";

/** Options for {@linkcode MessageDeflateStream}. */
export interface MessageDeflateStreamOptions {
  /**
   * The largest LZ77 window to compress with, 8 to 15: no more than the
   * peer agreed to.
   *
   * @default {15}
   */
  windowBits?: number;
  /**
   * Compress each message with an empty context, as agreed
   * (`*_no_context_takeover`); the compressor is dropped between messages.
   *
   * @default {false}
   */
  noContextTakeover?: boolean;
  /**
   * Messages in one frame of fewer bytes than this go out uncompressed.
   *
   * @default {1024}
   */
  threshold?: number;
  /**
   * zlib's compression level, 0 to 9, or -1 for its default.
   *
   * @default {-1}
   */
  level?: number;
  /**
   * zlib's memory level, 1 to 9.
   *
   * @default {8}
   */
  memLevel?: number;
}

/**
 * Compresses outgoing messages for permessage-deflate, frame by frame: the
 * first frame of a compressed message gets RSV1, every frame's payload is
 * compressed and flushed (Z_SYNC_FLUSH) so it ends on a byte boundary, and
 * the last loses the final 00 00 ff ff (§7.2.1). Control frames pass
 * through untouched (§6.1), as do messages sent in a single frame smaller
 * than `threshold`.
 *
 * @example Compressing, then decompressing
 * ```ts
 * import { MessageDeflateStream } from "./message_deflate_stream.ts";
 * import { MessageInflateStream } from "./message_inflate_stream.ts";
 * import { MessageDecoderStream } from "./message_decoder_stream.ts";
 * import { MessageEncoderStream } from "./message_encoder_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const text = "Hello, ".repeat(1000);
 * const frames = await Array.fromAsync(
 *   ReadableStream.from([text]).pipeThrough(new MessageEncoderStream())
 *     .pipeThrough(new MessageDeflateStream()),
 * );
 * assert.equal(frames[0].rsv1, true);
 * assert.ok(frames[0].payload.length < 100);
 * const messages = await Array.fromAsync(
 *   ReadableStream.from(frames).pipeThrough(new MessageInflateStream())
 *     .pipeThrough(new MessageDecoderStream()),
 * );
 * assert.deepEqual(messages, [text]);
 * ```
 */
export class MessageDeflateStream extends Stage<Frame, Frame> {
  readonly #deflater: Deflater;
  readonly #threshold: number;
  // zlib's settings, when each message starts with an empty context: a
  // broadcast is then compressed once for every such connection.
  readonly #shared: DeflateOptions | null;
  #compressing = false;

  /** Creates a compressing stream for one direction of one connection. */
  constructor(options: MessageDeflateStreamOptions = {}) {
    super();
    this.#threshold = checkSize("threshold", options.threshold ?? 1024);
    const zlib = {
      windowBits: options.windowBits ?? 15,
      level: options.level ?? -1,
      memLevel: options.memLevel ?? 8,
    };
    const noContextTakeover = options.noContextTakeover === true;
    this.#deflater = new Deflater({ ...zlib, noContextTakeover });
    this.#shared = noContextTakeover ? zlib : null;
  }

  /** Its transform waits for zlib, so nothing fuses into it. */
  protected override get fusable(): boolean {
    return false;
  }

  /** Takes one frame. */
  protected transform(frame: Frame): void | Promise<void> {
    const opcode = frame.opcode;
    // §6.1: control frames are never compressed.
    if (isControlOpcode(opcode)) {
      this.enqueue(frame);
      return;
    }
    // A broadcast comes between whole messages, framed once for every
    // connection. Without context takeover it is compressed once for all
    // (the same bytes each connection would make); with it, it goes
    // uncompressed (RFC 7692 §6 allows any message to), as compressing it
    // apart from this connection's context would desynchronize the peer's.
    if (isSharedFrame(frame)) {
      const shared = this.#shared;
      this.enqueue(
        shared !== null && frame.payload.length >= this.#threshold
          ? frame.shared.deflated(shared)
          : frame,
      );
      return;
    }
    if (opcode !== Opcode.Continuation) {
      this.#compressing = !frame.fin ||
        frame.payload.length >= this.#threshold;
    }
    if (!this.#compressing) {
      this.enqueue(frame);
      return;
    }
    return this.#deflate(frame);
  }

  async #deflate(frame: Frame): Promise<void> {
    const payload = await this.#deflater.deflate(frame.payload, frame.fin);
    if (frame.fin) this.#compressing = false;
    this.enqueue({
      fin: frame.fin,
      // §6: RSV1 marks the first frame of a compressed message, only it.
      rsv1: frame.opcode !== Opcode.Continuation,
      rsv2: false,
      rsv3: false,
      opcode: frame.opcode,
      payload,
    });
  }

  /** Frees the compressor. */
  protected override flush(): void {
    this.#deflater.close();
  }

  /** Frees the compressor. */
  protected override cleanup(_reason: unknown): void {
    this.#deflater.close();
  }
}
