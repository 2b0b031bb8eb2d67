// The chat's HTTP server: node:http, which hands the raw socket to the
// `'upgrade'` event on Node, Deno and Bun alike, so the full codec runs on
// all three. GET / serves the page; a WebSocket handshake on /chat joins
// the hub.

import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { upgrade } from "../../src/adapters/node.ts";
import { ChatHub, type ChatOptions } from "./hub.ts";
import { MAX_TEXT_LENGTH } from "./protocol.ts";

/** Options for {@linkcode createChatServer}: the hub's, and the connections'. */
export interface ChatServerOptions extends ChatOptions {
  /**
   * Milliseconds a closing connection may take before its socket is
   * dropped (a dead or too slow client's, for one). Default 5000.
   */
  closeTimeout?: number;
}

/** A chat server, not yet listening. */
export interface ChatServer {
  /** The node:http server: call `listen()`. */
  server: Server;
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

/** Makes a chat server: the page on `/`, WebSockets on `/chat`. */
export function createChatServer(options: ChatServerOptions = {}): ChatServer {
  const hub = new ChatHub(options);
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (request.method !== "GET" || (path !== "/" && path !== "/index.html")) {
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
  });
  server.on("upgrade", (request, socket, head) => {
    const path = new URL(request.url ?? "/", "http://localhost").pathname;
    if (path !== "/chat") {
      socket.end("HTTP/1.1 404 Not Found\r\nconnection: close\r\n\r\n");
      return;
    }
    // Same-origin by default: only pages from this server may connect.
    const ws = upgrade(request, socket, head, {
      maxMessageSize: MAX_MESSAGE_SIZE,
      closeTimeout: options.closeTimeout,
    });
    // A client too slow to take its Close within closeTimeout is dropped
    // by the connection itself, socket and all.
    void hub.accept(ws);
  });
  return {
    server,
    hub,
    close() {
      hub.close();
      return new Promise((resolve) => {
        server.close(() => resolve());
        // Connections still closing go with their sockets.
        server.closeAllConnections?.();
      });
    },
  };
}
