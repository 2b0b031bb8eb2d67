/**
 * The opening handshake (RFC 6455 §4): the server's checks of an upgrade
 * request and the headers of its 101 ({@linkcode acceptUpgrade}), the
 * client's request headers and its checks of the response
 * ({@linkcode clientHandshake}, {@linkcode verifyResponse}). Pure
 * functions over `Headers`, `Request` and `Response`, with no I/O, so that
 * every adapter shares them. Each part lives in a file of its own; this
 * module gathers them.
 *
 * @module
 */

export { acceptKey, acceptKeySync } from "./accept_key.ts";
export { type ExtensionOffer, parseExtensions } from "./extensions.ts";
export {
  HandshakeError,
  type HandshakeErrorCode,
  type HandshakeErrorOptions,
} from "./handshake_error.ts";
export * from "./server_handshake.ts";
export * from "./client_handshake.ts";
