/**
 * A WebSocket server in one call, with limits safe for the open internet,
 * on Node, Deno and Bun alike: a `node:http` server whose `'upgrade'`
 * event runs {@linkcode upgrade}, so the full codec runs on all three.
 *
 * @example An echo server
 * ```ts
 * import { serve } from "./serve.ts";
 * import { WebSocketStream } from "./client.ts";
 * import assert from "node:assert/strict";
 *
 * const server = serve({ port: 0 }, async (ws) => {
 *   const { readable, writable } = await ws.opened;
 *   await readable.pipeTo(writable);
 * });
 * const { url } = await server.listening;
 *
 * const client = new WebSocketStream(url);
 * const { readable, writable } = await client.opened;
 * await writable.getWriter().write("hello");
 * assert.equal((await readable.getReader().read()).value, "hello");
 * await server.close();
 * assert.deepEqual(await client.closed, { closeCode: 1001, reason: "" });
 * ```
 *
 * @module
 */

import { createServer } from "node:http";
import {
  DEFAULT_HANDSHAKE_TIMEOUT,
  type NodeRequest,
  type NodeUpgradeOptions,
  upgrade,
} from "./adapters/node.ts";
import type { NodeSocket } from "./_node_socket.ts";
import { goAway, type WebSocketConnection } from "./connection.ts";
import { checkTime } from "./_options.ts";

/** Options for {@linkcode serve}: where to listen, then every upgrade option. */
export interface ServeOptions<S extends boolean = false>
  extends NodeUpgradeOptions<S> {
  /**
   * The port to listen on; 0 picks a free one.
   *
   * @default {0}
   */
  port?: number;
  /**
   * The address to listen on. Loopback unless told otherwise: a server
   * reachable from other machines is a choice to make on purpose
   * (`"0.0.0.0"`, `"::"`).
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Lets several processes listen on the same port (`SO_REUSEPORT`, on
   * Linux and the BSDs): the kernel spreads the connections among them, so
   * one process per core can serve one port. Node and Deno have it on
   * `node:http`; Bun's `node:http` does not (listening then fails with
   * EADDRINUSE): on Bun, `Bun.serve({ reusePort: true })` with the Bun
   * adapter does it, or each process takes a port of its own behind a proxy.
   *
   * @default {false}
   */
  reusePort?: boolean;
  /**
   * Answers the requests that are not WebSocket handshakes (a page, a
   * health check). Without it they get 426 Upgrade Required.
   *
   * @default {undefined}
   */
  request?(request: NodeRequest, response: NodeResponse): void;
  /**
   * Milliseconds a peer has to send its whole request head, and the
   * `accept` hook to decide, each; a handshake still unfinished is dropped
   * (408 while the head is arriving, 503 while a hook runs). Bounds
   * slowloris peers, which otherwise hold a connection for `node:http`'s
   * 60 seconds (90 on Deno). 0 turns it off.
   *
   * @default {10000}
   */
  handshakeTimeout?: number;
}

/** Where a {@linkcode serve}d server listens. */
export interface ServeAddress {
  /** The address it listens on. */
  hostname: string;
  /** The port it listens on. */
  port: number;
  /** `ws://hostname:port/`. */
  url: string;
}

// Structural types keep this file's declarations free of @types/node: an
// application with them passes node:http's own objects where these appear.

/** The parts of a `node:http` `ServerResponse` named here. */
export interface NodeResponse {
  /** Sets the status and headers. */
  writeHead(status: number, headers?: Record<string, string>): NodeResponse;
  /** Ends the response, with a last piece of the body. */
  end(body?: string | Uint8Array): unknown;
}

/** The parts of a `node:http` `Server` named here. */
export interface NodeHttpServer {
  /** Where it listens. */
  address(): unknown;
  /** Adds a listener. */
  // deno-lint-ignore no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
}

/** A server made by {@linkcode serve}. */
export interface WebSocketServer {
  /** The `node:http` server underneath, for its events. */
  readonly server: NodeHttpServer;
  /** Resolves once the server listens; rejects if it cannot (a port in use). */
  readonly listening: Promise<ServeAddress>;
  /**
   * Stops listening and closes every connection with 1001 (going away),
   * those still in their handshake once they open; resolves once every
   * connection has closed (each within its `closeTimeout`, once open) and
   * every socket is gone.
   */
  close(): Promise<void>;
}

// The heartbeat a served connection gets unless told otherwise: a peer that
// vanishes, or goes silent in the middle of a frame (its pong cannot pass
// the frame), is dropped within a minute.
const DEFAULT_HEARTBEAT = { interval: 30_000, timeout: 30_000 } as const;

/**
 * Starts a WebSocket server and calls `handler` with each connection,
 * before its handshake has finished (`opened` settles once it has; a
 * refused handshake rejects it). A promise `handler` returns that rejects
 * is the connection's end, not the server's: a peer that is refused, or
 * breaks the protocol, must not take the process down (`closed` says what
 * happened). Every {@linkcode upgrade} option applies; unless given, these
 * defaults hold:
 *
 * - the request head must arrive, and the `accept` hook decide, within
 *   `handshakeTimeout` (10 s) each;
 * - a heartbeat pings every 30 s and drops a peer that has not answered
 *   within 30 s more (`heartbeat: undefined` turns it off);
 * - the codec's own limits (16 MiB frames and messages, 16 MiB send
 *   queue, same-origin handshakes).
 *
 * @example A page on `/` and WebSockets on `/chat` only
 * ```ts
 * import { serve } from "./serve.ts";
 * import { WebSocketStream } from "./client.ts";
 * import assert from "node:assert/strict";
 *
 * const server = serve({
 *   request: (_request, response) => response.end("hello"),
 *   accept: (request) =>
 *     new URL(request.url!).pathname === "/chat" ||
 *     new Response("not found", { status: 404 }),
 * }, (ws) => ws.closed.catch(() => {}));
 * const { url } = await server.listening;
 * assert.equal(await (await fetch(url.replace("ws:", "http:"))).text(), "hello");
 *
 * const client = new WebSocketStream(new URL("/chat", url).href);
 * await client.opened;
 * client.close({ closeCode: 1000 });
 * await client.closed;
 * await server.close();
 * ```
 */
export function serve<
  S extends boolean = false,
  R extends NodeRequest = NodeRequest,
>(
  options: ServeOptions<S>,
  handler: (ws: WebSocketConnection<S>, request: R) => unknown,
): WebSocketServer {
  const {
    port = 0,
    hostname = "127.0.0.1",
    reusePort = false,
    request: onRequest,
    ...upgradeOptions
  } = options;
  const handshakeTimeout = checkTime(
    "handshakeTimeout",
    options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
  );
  if (!("heartbeat" in upgradeOptions)) {
    upgradeOptions.heartbeat = DEFAULT_HEARTBEAT;
  }
  const server = createServer(
    handshakeTimeout === 0 ? {} : {
      // node:http's own bound on the request head, checked every second
      // rather than every 30 (its default), so that it holds to the second.
      headersTimeout: handshakeTimeout,
      requestTimeout: Math.max(handshakeTimeout, 300_000),
      connectionsCheckingInterval: Math.min(1000, handshakeTimeout),
    },
    onRequest ?? upgradeRequired,
  );
  const connections = new Set<WebSocketConnection<S>>();
  let closing = false;
  server.on(
    "upgrade",
    (request: R, socket: NodeSocket, head: Uint8Array) => {
      const ws = upgrade(request, socket, head, upgradeOptions);
      connections.add(ws);
      const forget = () => connections.delete(ws);
      ws.closed.then(forget, forget);
      // A handshake that was under way when close() began.
      if (closing) goAway(ws);
      const handled = handler(ws, request);
      if (handled instanceof Promise) handled.catch(() => {});
    },
  );
  const listening = new Promise<ServeAddress>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ port, host: hostname, reusePort }, () => {
      server.off("error", reject);
      // Once listening, an error is a connection the server could not
      // accept (too many open files, under a flood): node:http goes on
      // listening, and an 'error' with no listener would end the process.
      server.on("error", () => {});
      const address = server.address() as { port: number };
      const host = hostname.includes(":") ? `[${hostname}]` : hostname;
      resolve({
        hostname,
        port: address.port,
        url: `ws://${host}:${address.port}/`,
      });
    });
  });
  return {
    server,
    listening,
    async close() {
      closing = true;
      const stopped = new Promise<void>((resolve) =>
        server.close(() => resolve())
      );
      // Until none is left: a handshake under way may still open one.
      while (connections.size > 0) {
        await Promise.allSettled(
          [...connections].map((ws) => {
            goAway(ws);
            return ws.closed;
          }),
        );
      }
      // Keep-alive sockets, and handshakes still arriving.
      server.closeAllConnections();
      await stopped;
    },
  };
}

function upgradeRequired(_request: NodeRequest, response: NodeResponse): void {
  response.writeHead(426, {
    "content-type": "text/plain",
    upgrade: "websocket",
    connection: "Upgrade",
  }).end("This is a WebSocket server\n");
}
