/**
 * WebSocket servers on `node:http`'s `'upgrade'` event. The event hands
 * over the raw socket on Node, Deno and Bun alike, so this path runs the
 * full codec (backpressure both ways, every limit) on all three.
 *
 * @example An echo server
 * ```ts
 * import { createServer } from "node:http";
 * import { upgrade } from "./node.ts";
 * import { WebSocketStream } from "../client.ts";
 * import assert from "node:assert/strict";
 *
 * const server = createServer();
 * server.on("upgrade", async (request, socket, head) => {
 *   const ws = upgrade(request, socket, head);
 *   const { readable, writable } = await ws.opened;
 *   await readable.pipeTo(writable);
 * });
 * await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
 * const { port } = server.address() as { port: number };
 *
 * const client = new WebSocketStream(`ws://127.0.0.1:${port}`);
 * const { readable, writable } = await client.opened;
 * const writer = writable.getWriter();
 * await writer.write("hello");
 * const reader = readable.getReader();
 * assert.equal((await reader.read()).value, "hello");
 * client.close({ closeCode: 1000 });
 * await client.closed;
 * server.close();
 * ```
 *
 * @module
 */

import { formatResponseHead, type HeadLimits } from "../_http.ts";
import { type NodeSocket, nodeSocketDuplex } from "../_node_socket.ts";
import {
  DEFAULT_CLOSE_TIMEOUT,
  type HandshakeResult,
  WebSocketConnection,
  type WebSocketConnectionOptions,
} from "../connection.ts";
import type {
  AcceptUpgradeOptions,
  UpgradeRefused,
  UpgradeRequest,
  UpgradeResult,
} from "../handshake.ts";
import {
  checkHead,
  closedDuringHandshake,
  decide,
  DEFAULT_HANDSHAKE_TIMEOUT,
  type HandshakeOptions,
  handshakeOptions,
  hookFailed,
  ignoreError,
  sendRefusal,
} from "./_handshake.ts";

/** The parts of a `node:http` `IncomingMessage` this adapter reads. */
export interface NodeRequest {
  /** The request method. */
  readonly method?: string;
  /** The request target, such as "/chat?room=1". */
  readonly url?: string;
  /** "1.1" for HTTP/1.1. */
  readonly httpVersion: string;
  /** Header names and values, alternating, as they arrived. */
  readonly rawHeaders: readonly string[];
}

/** Options for {@linkcode upgrade}: the handshake's, then the connection's. */
export interface NodeUpgradeOptions<S extends boolean = false>
  extends
    AcceptUpgradeOptions<UpgradeRequest>,
    HeadLimits,
    Omit<WebSocketConnectionOptions<S>, "role" | "url"> {
  /**
   * Milliseconds the `accept` and `extensions` hooks may take. A handshake
   * still undecided then is refused with 503 and its socket dropped, so a
   * hook that hangs does not hold connections. (The request head's own
   * time is `node:http`'s `headersTimeout`, which {@linkcode serve} sets.)
   * 0 turns it off.
   *
   * @default {10000}
   */
  handshakeTimeout?: number;
}

/** The default of {@linkcode NodeUpgradeOptions.handshakeTimeout}. */
export { DEFAULT_HANDSHAKE_TIMEOUT };

/**
 * Answers a `node:http` server's `'upgrade'` event: checks the handshake
 * (origin, version, subprotocols, the `accept` hook), writes the 101 or the
 * refusal, and returns the connection. With `perMessageDeflate`, it accepts
 * the first permessage-deflate offer it can (RFC 7692). A refused handshake rejects `opened`
 * and `closed` with a {@linkcode HandshakeError} after the refusal is sent.
 *
 * @example A subprotocol, and an `accept` hook that wants a token
 * ```ts
 * import { createServer } from "node:http";
 * import { upgrade } from "./node.ts";
 * import { WebSocketStream } from "../client.ts";
 * import { HandshakeError } from "../handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const server = createServer();
 * server.on("upgrade", (request, socket, head) => {
 *   const ws = upgrade(request, socket, head, {
 *     protocols: ["chat.v1"],
 *     accept: (request) =>
 *       request.headers.get("authorization") === "Bearer secret" ||
 *       new Response("a token, please", { status: 401 }),
 *   });
 *   ws.opened.then(({ readable, writable }) => readable.pipeTo(writable))
 *     .catch(() => {}); // refused: the client got the 401
 * });
 * await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
 * const url = `ws://127.0.0.1:${(server.address() as { port: number }).port}`;
 *
 * const stranger = new WebSocketStream(url, { protocols: ["chat.v1"] });
 * stranger.closed.catch(() => {});
 * await assert.rejects(stranger.opened, HandshakeError);
 *
 * const friend = new WebSocketStream(url, {
 *   protocols: ["chat.v1"],
 *   headers: { authorization: "Bearer secret" },
 * });
 * assert.equal((await friend.opened).protocol, "chat.v1");
 * friend.close({ closeCode: 1000 });
 * await friend.closed;
 * server.close();
 * ```
 */
export function upgrade<S extends boolean = false>(
  request: NodeRequest,
  socket: NodeSocket,
  head: Uint8Array,
  options: NodeUpgradeOptions<S> = {},
): WebSocketConnection<S> {
  const headers = new Headers();
  const raw = request.rawHeaders;
  const tooLarge = checkHead(request.method, request.url, raw, options);
  try {
    for (let i = 0; i + 1 < raw.length; i += 2) {
      headers.append(raw[i], raw[i + 1]);
    }
  } catch {
    // A header the Fetch API cannot hold: left out, so the handshake checks
    // refuse what is missing with a 400.
  }
  // No Host, or an empty one, makes no URL: the handshake refuses it (400).
  const host = headers.get("host");
  const url = host ? `http://${host}${request.url ?? "/"}` : undefined;
  const upgradeRequest: UpgradeRequest = {
    method: request.method ?? "GET",
    headers,
    url,
    httpVersion: request.httpVersion,
  };
  const handshakeOpts = handshakeOptions(options);
  // node:http removes its own 'error' listener before it emits 'upgrade':
  // this one stays until the transport takes the socket over with its own.
  // (Nothing above waits: no event can come first.)
  socket.on("error", ignoreError);
  const transport = handshake(
    upgradeRequest,
    socket,
    head,
    handshakeOpts,
    tooLarge,
  );
  return new WebSocketConnection(transport, {
    ...options,
    role: "server",
    url: url ?? "",
  });
}

async function handshake(
  request: UpgradeRequest,
  socket: NodeSocket,
  head: Uint8Array,
  options: HandshakeOptions & { closeTimeout?: number },
  refused: UpgradeRefused | null,
): Promise<HandshakeResult> {
  let result: UpgradeResult;
  try {
    result = await decide(request, options, refused);
  } catch (error) {
    // A hook threw: the client gets a 500, and `opened` the hook's error.
    await refuse(socket, hookFailed(), options.closeTimeout).catch(() => {});
    throw error;
  }
  if (!result.ok) return refuse(socket, result, options.closeTimeout);
  if (socket.destroyed) throw closedDuringHandshake();
  const duplex = nodeSocketDuplex(socket);
  socket.off("error", ignoreError);
  socket.write(formatResponseHead(101, "Switching Protocols", result.headers));
  // Assigned, not spread: the duplex is wired straight to the socket unless
  // its streams are asked for.
  return Object.assign(duplex, {
    protocol: result.protocol,
    extensions: result.extensions,
    head: new Uint8Array(head.buffer, head.byteOffset, head.byteLength),
  });
}

// Writes the refusal and ends the socket; throws what `opened` rejects with.
function refuse(
  socket: NodeSocket,
  refused: UpgradeRefused,
  closeTimeout = DEFAULT_CLOSE_TIMEOUT,
): Promise<never> {
  return sendRefusal(socket, refused, closeTimeout, writeRefusal, destroy);
}

function writeRefusal(
  socket: NodeSocket,
  response: Response,
  body: Uint8Array,
): void {
  const headers = new Headers(response.headers);
  headers.set("connection", "close");
  headers.set("content-length", String(body.length));
  socket.write(
    formatResponseHead(response.status, response.statusText, headers),
  );
  socket.write(body);
  socket.end();
}

function destroy(socket: NodeSocket): void {
  socket.destroy();
}
