/**
 * A WebSocket (RFC 6455) codec built on WHATWG Streams, for Deno, Bun and
 * Node, with no dependencies.
 *
 * Bytes become frames, frames messages, and back, each step a stream with
 * `readable` and `writable` sides, so chunking, fragmentation, backpressure
 * and composition come from the streams themselves:
 *
 * ```
 * bytes ─FrameDecoderStream─▶ frames ─MessageDecoderStream─▶ messages
 * bytes ◀─FrameEncoderStream─ frames ◀─MessageEncoderStream─ messages
 * ```
 *
 * @example A round trip through the frame streams
 * ```ts
 * import { FrameDecoderStream, FrameEncoderStream, Opcode } from "./mod.ts";
 * import assert from "node:assert/strict";
 *
 * const frames = [
 *   { fin: true, rsv1: false, rsv2: false, rsv3: false, opcode: Opcode.Text, payload: new TextEncoder().encode("hi") },
 *   { fin: true, rsv1: false, rsv2: false, rsv3: false, opcode: Opcode.Ping, payload: new Uint8Array() },
 * ];
 * const decoded = await Array.fromAsync(
 *   ReadableStream.from(frames)
 *     .pipeThrough(new FrameEncoderStream({ role: "client" }))
 *     .pipeThrough(new FrameDecoderStream({ role: "server" })),
 * );
 * assert.deepEqual(decoded, frames);
 * ```
 *
 * @module
 */

// What an application uses. The sans-I/O cores (FrameDecoder, MessageDecoder,
// ...), the handshake functions and the permessage-deflate negotiation stay
// on their own entry points: ./frame-decoder, ./handshake,
// ./permessage-deflate, and so on.

export {
  WebSocketStream,
  type WebSocketStreamOptions,
  type WebSocketStreamTlsOptions,
} from "./src/client.ts";
export {
  type ByteDuplex,
  type HeartbeatOptions,
  type WebSocketCloseInfo,
  type WebSocketCloseOptions,
  WebSocketConnection,
  type WebSocketConnectionOptions,
  type WebSocketOpenInfo,
} from "./src/connection.ts";
export {
  type Http2ConnectRequest,
  serve,
  type ServeAddress,
  type ServeOptions,
  type ServeTlsOptions,
  type WebSocketServer,
} from "./src/serve.ts";
export {
  Broadcast,
  type BroadcastMember,
  type BroadcastOptions,
  type BroadcastSendOptions,
} from "./src/broadcast.ts";
export type { BroadcastBus } from "./src/broadcast_bus.ts";
export { CloseCode } from "./src/close_code.ts";
export { WebSocketError, type WebSocketErrorCode } from "./src/errors.ts";
export { HandshakeError, type HandshakeErrorCode } from "./src/handshake.ts";
export type {
  IncomingMessage,
  Message,
  MessageType,
  OutgoingMessage,
} from "./src/message.ts";
export type { PerMessageDeflateOptions } from "./src/permessage_deflate.ts";
// The streams, for pipelines of your own.
export { type Frame, type Role } from "./src/frame.ts";
export { Opcode } from "./src/opcode.ts";
export {
  FrameDecoderStream,
  type FrameDecoderStreamOptions,
} from "./src/frame_decoder_stream.ts";
export {
  FrameEncoderStream,
  type FrameEncoderStreamOptions,
} from "./src/frame_encoder_stream.ts";
export {
  type DecodedMessage,
  MessageDecoderStream,
  type MessageDecoderStreamOptions,
} from "./src/message_decoder_stream.ts";
export {
  MessageEncoderStream,
  type MessageEncoderStreamOptions,
  type MessageInput,
} from "./src/message_encoder_stream.ts";
