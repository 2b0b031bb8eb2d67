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

export {
  WebSocketStream,
  type WebSocketStreamOptions,
  type WebSocketStreamTlsOptions,
} from "./src/client.ts";
export {
  type CloseInfo,
  decodeClose,
  encodeClose,
  isApplicationCloseCode,
  isValidCloseCode,
  MAX_REASON_BYTES,
} from "./src/close.ts";
export { CloseCode } from "./src/close_code.ts";
export {
  type ByteDuplex,
  type HandshakeResult,
  type HeartbeatOptions,
  type WebSocketCloseInfo,
  type WebSocketCloseOptions,
  WebSocketConnection,
  type WebSocketConnectionOptions,
  type WebSocketOpenInfo,
} from "./src/connection.ts";
export {
  serve,
  type ServeAddress,
  type ServeOptions,
  type WebSocketServer,
} from "./src/serve.ts";
export {
  WebSocketError,
  type WebSocketErrorCode,
  type WebSocketErrorOptions,
} from "./src/errors.ts";
export {
  DEFAULT_MAX_FRAME_SIZE,
  type Frame,
  MAX_CONTROL_PAYLOAD,
  type Role,
} from "./src/frame.ts";
export {
  FrameDecoder,
  type FrameDecoderOptions,
  type ReservedBits,
} from "./src/frame_decoder.ts";
export {
  FrameDecoderStream,
  type FrameDecoderStreamOptions,
} from "./src/frame_decoder_stream.ts";
export {
  encodeFrame,
  FrameEncoder,
  type FrameEncoderOptions,
} from "./src/frame_encoder.ts";
export {
  FrameEncoderStream,
  type FrameEncoderStreamOptions,
} from "./src/frame_encoder_stream.ts";
export {
  acceptKey,
  acceptKeySync,
  acceptUpgrade,
  type AcceptUpgradeOptions,
  type ClientHandshake,
  clientHandshake,
  type ClientHandshakeOptions,
  type ClientOffer,
  type ExtensionAgreement,
  type ExtensionOffer,
  HandshakeError,
  type HandshakeErrorCode,
  type HandshakeErrorOptions,
  type HandshakeResponse,
  type Negotiated,
  type OriginPolicy,
  parseExtensions,
  refusalResponse,
  type ServerAgreement,
  type UpgradeAccepted,
  type UpgradeRefused,
  type UpgradeRequest,
  type UpgradeResult,
  verifyResponse,
} from "./src/handshake.ts";
export {
  DEFAULT_FRAGMENT_SIZE,
  DEFAULT_MAX_MESSAGE_SIZE,
  type IncomingMessage,
  type Message,
  type MessageType,
  type OutgoingMessage,
} from "./src/message.ts";
export {
  MessageDecoder,
  type MessageDecoderOptions,
  type MessageHandler,
} from "./src/message_decoder.ts";
export {
  type DecodedMessage,
  MessageDecoderStream,
  type MessageDecoderStreamOptions,
} from "./src/message_decoder_stream.ts";
export {
  MessageDeflateStream,
  type MessageDeflateStreamOptions,
} from "./src/message_deflate_stream.ts";
export {
  MessageEncoder,
  type MessageEncoderOptions,
} from "./src/message_encoder.ts";
export {
  MessageEncoderStream,
  type MessageEncoderStreamOptions,
  type MessageInput,
} from "./src/message_encoder_stream.ts";
export {
  MessageInflateStream,
  type MessageInflateStreamOptions,
} from "./src/message_inflate_stream.ts";
export { isControlOpcode, isKnownOpcode, Opcode } from "./src/opcode.ts";
export {
  acceptPerMessageDeflateResponse,
  negotiatePerMessageDeflate,
  offerPerMessageDeflate,
  PERMESSAGE_DEFLATE,
  type PerMessageDeflateAgreement,
  perMessageDeflateExtension,
  type PerMessageDeflateOptions,
  type PerMessageDeflateParams,
} from "./src/permessage_deflate.ts";
