// The chat's server: serve(), a node:http server that hands the raw socket
// to the codec on Node, Deno and Bun alike, with bounded handshakes. GET /
// serves the page; a WebSocket handshake on /chat joins the hub. With
// `tls`, it is a node:http2 server that speaks HTTP/2 and HTTP/1.1 on one
// port: a browser that loaded the page over HTTP/2 opens its WebSocket as
// an extended CONNECT on the same connection (RFC 8441).

import { readFileSync } from "node:fs";
import type { IncomingMessage, Server } from "node:http";
import type { Http2SecureServer, Http2ServerRequest } from "node:http2";
import {
  serve,
  type ServeAddress,
  type ServeTlsOptions,
  type WebSocketServer,
} from "../../src/serve.ts";
import { ChatHub, type ChatOptions } from "./hub.ts";
import { MAX_TEXT_LENGTH } from "./protocol.ts";

/** Options for {@linkcode createChatServer}: where, the hub's, the connections'. */
export interface ChatServerOptions extends ChatOptions {
  /** The port to listen on; 0 picks a free one. Default 8080. */
  port?: number;
  /** The address to listen on. Default 127.0.0.1. */
  hostname?: string;
  /**
   * Several instances on one port, one per core (Node and Deno; see
   * `ServeOptions.reusePort`). Default false.
   */
  reusePort?: boolean;
  /**
   * Milliseconds a closing connection may take before its socket is
   * dropped (a dead or too slow client's, for one). Default 5000.
   */
  closeTimeout?: number;
  /**
   * A certificate and its key, PEM: the server speaks TLS (`https:`, and
   * `wss:` for the WebSockets), and HTTP/2 beside HTTP/1.1 on the same
   * port, WebSockets included (RFC 8441). Default: cleartext HTTP/1.1.
   */
  tls?: ServeTlsOptions;
}

/** A chat server, listening. */
export interface ChatServer {
  /** The node:http server underneath (node:http2 with `tls`). */
  server: Server | Http2SecureServer;
  /** Resolves with where it listens; rejects if it cannot (a port in use). */
  listening: Promise<ServeAddress>;
  /** The chat: rooms, members, history. */
  hub: ChatHub;
  /** Closes every connection and the server. */
  close(): Promise<void>;
}

const PAGE = readFileSync(new URL("./page.html", import.meta.url));

// A chat message is at most 2000 UTF-16 code units: 6000 bytes of UTF-8,
// plus its JSON. Anything larger is not chat: the codec refuses it (1009)
// before it is read whole.
const MAX_MESSAGE_SIZE = 3 * MAX_TEXT_LENGTH + 1024;

/** Starts a chat server: the page on `/`, WebSockets on `/chat`. */
export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const hub = new ChatHub(options);
  let ws: WebSocketServer;
  try {
    ws = serve({
      port: options.port ?? 8080,
      hostname: options.hostname,
      reusePort: options.reusePort,
      // Over TLS, browsers speak HTTP/2 when the server does: the page and
      // every WebSocket of a tab share one connection.
      tls: options.tls,
      http2: options.tls !== undefined,
      request(request, response) {
        const path = new URL(request.url ?? "/", "http://localhost").pathname;
        if (
          request.method !== "GET" || (path !== "/" && path !== "/index.html")
        ) {
          response.writeHead(404, { "content-type": "text/plain" })
            .end("not found\n");
          return;
        }
        response.writeHead(200, {
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
          "x-content-type-options": "nosniff",
          // The page's own script and styles, and WebSockets to this server.
          "content-security-policy":
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
        }).end(PAGE);
      },
      // Same-origin (the default): only pages from this server may connect.
      accept: (request) =>
        new URL(request.url!).pathname === "/chat" ||
        new Response("not found\n", { status: 404 }),
      maxMessageSize: MAX_MESSAGE_SIZE,
      closeTimeout: options.closeTimeout,
      // The hub runs its own heartbeat, which tells the page why it closed.
      heartbeat: undefined,
    }, (connection, request: IncomingMessage | Http2ServerRequest) => {
      // A client is its address: its connections share a cap on the rooms
      // they create. (Behind a proxy, take the address the proxy forwards.)
      // A client too slow to take its Close within closeTimeout is dropped
      // by the connection itself, socket and all.
      void hub.accept(connection, { client: request.socket.remoteAddress });
    });
  } catch (error) {
    // A certificate or key that does not parse: the hub's timers stop too.
    hub.close();
    throw error;
  }
  return {
    server: ws.server as Server | Http2SecureServer,
    listening: ws.listening,
    hub,
    async close() {
      hub.close();
      await ws.close();
    },
  };
}
