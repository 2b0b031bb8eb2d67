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

import {
  DEFAULT_MAX_HEAD_SIZE,
  DEFAULT_MAX_HEADERS,
  formatResponseHead,
  type HeadLimits,
} from "../_http.ts";
import { type NodeSocket, nodeSocketDuplex } from "../_node_socket.ts";
import { checkTime } from "../_options.ts";
import {
  DEFAULT_CLOSE_TIMEOUT,
  type HandshakeResult,
  WebSocketConnection,
  type WebSocketConnectionOptions,
} from "../connection.ts";
import {
  acceptUpgrade,
  type AcceptUpgradeOptions,
  HandshakeError,
  refusalResponse,
  type UpgradeRefused,
  type UpgradeRequest,
  type UpgradeResult,
} from "../handshake.ts";
import {
  checkPerMessageDeflateOptions,
  perMessageDeflateExtension,
} from "../permessage_deflate.ts";

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
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;

// The hooks' decision, or a refusal once `timeout` ms (0: never) have passed.
function withTimeout(
  decision: Promise<UpgradeResult>,
  timeout: number,
): Promise<UpgradeResult> {
  if (timeout === 0) return decision;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<UpgradeResult>((resolve) => {
    timer = setTimeout(() =>
      resolve({
        ok: false,
        code: "handshake_timeout",
        status: 503,
        reason: `Cannot upgrade: the handshake took more than ${timeout} ms`,
        headers: new Headers(),
      }), timeout);
  });
  return Promise.race([decision, late]).finally(() => clearTimeout(timer));
}

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
  const tooLarge = checkHead(request, options);
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
  // permessage-deflate (RFC 7692) is negotiated by an extensions hook.
  const deflate = checkPerMessageDeflateOptions(options.perMessageDeflate);
  if (deflate !== null && options.extensions !== undefined) {
    throw new TypeError(
      "Cannot upgrade: perMessageDeflate and an extensions hook cannot both be given",
    );
  }
  if (options.handshakeTimeout !== undefined) {
    checkTime("handshakeTimeout", options.handshakeTimeout);
  }
  // node:http removes its own 'error' listener before it emits 'upgrade',
  // and an 'error' no one listens to crashes the process: a peer that
  // resets the connection while the handshake is refused, or while an
  // async hook runs, must not. (Nothing above waits: no event can come
  // first.) This listener stays until the transport takes the socket over
  // with its own.
  socket.on("error", ignoreError);
  const transport = handshake(
    upgradeRequest,
    socket,
    head,
    deflate === null
      ? options
      : { ...options, extensions: perMessageDeflateExtension(deflate) },
    tooLarge,
  );
  return new WebSocketConnection(transport, {
    ...options,
    role: "server",
    url: url ?? "",
  });
}

function ignoreError(): void {
  // The socket is destroyed by then; the handshake finds it so.
}

async function handshake(
  request: UpgradeRequest,
  socket: NodeSocket,
  head: Uint8Array,
  options: AcceptUpgradeOptions<UpgradeRequest> & {
    handshakeTimeout?: number;
    closeTimeout?: number;
  },
  refused: UpgradeRefused | null,
): Promise<HandshakeResult> {
  // Only the hooks can make the decision wait: without them, no timer.
  const timeout = options.accept === undefined &&
      options.extensions === undefined
    ? 0
    : options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
  const result = refused ??
    await withTimeout(acceptUpgrade(request, options), timeout);
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
async function refuse(
  socket: NodeSocket,
  refused: UpgradeRefused,
  closeTimeout = DEFAULT_CLOSE_TIMEOUT,
): Promise<never> {
  const response = refused.response ?? refusalResponse(refused);
  // Read before the socket is looked at: it may close meanwhile.
  const body = new Uint8Array(await response.arrayBuffer());
  if (socket.destroyed) throw closedDuringHandshake();
  const headers = new Headers(response.headers);
  headers.set("connection", "close");
  headers.set("content-length", String(body.length));
  socket.write(
    formatResponseHead(response.status, response.statusText, headers),
  );
  socket.write(body);
  socket.end();
  // A peer that neither reads the refusal nor hangs up is not waited on
  // for longer than a closing connection would be.
  const linger = setTimeout(() => socket.destroy(), closeTimeout);
  socket.on("close", () => clearTimeout(linger));
  throw new HandshakeError(
    `Refused the WebSocket handshake: ${refused.reason}`,
    { code: refused.code, status: response.status },
  );
}

function closedDuringHandshake(): HandshakeError {
  return new HandshakeError("The socket closed during the handshake", {
    code: "refused",
    status: 0,
  });
}

// node:http limits the head too (maxHeaderSize, 16 KiB by default on Node,
// Deno and Bun), but not the header count everywhere: Deno hands on up to
// 1000 headers, and a server may raise maxHeaderSize. A request over this
// adapter's own limits is refused with 431.
function checkHead(
  request: NodeRequest,
  limits: HeadLimits,
): UpgradeRefused | null {
  const maxHeadSize = limits.maxHeadSize ?? DEFAULT_MAX_HEAD_SIZE;
  const maxHeaders = limits.maxHeaders ?? DEFAULT_MAX_HEADERS;
  const raw = request.rawHeaders;
  const refuse = (
    code: "too_many_headers" | "head_too_large",
    reason: string,
  ): UpgradeRefused => ({
    ok: false,
    code,
    status: 431,
    reason,
    headers: new Headers(),
  });
  if (raw.length / 2 > maxHeaders) {
    return refuse(
      "too_many_headers",
      `Cannot upgrade: more than ${maxHeaders} header lines`,
    );
  }
  // The request line, and "name: value\r\n" for each header.
  let size = (request.method?.length ?? 3) + (request.url?.length ?? 1) + 12;
  for (let i = 0; i < raw.length; i++) size += raw[i].length + 2;
  if (size > maxHeadSize) {
    return refuse(
      "head_too_large",
      `Cannot upgrade: the request head is larger than ${maxHeadSize} bytes`,
    );
  }
  return null;
}
