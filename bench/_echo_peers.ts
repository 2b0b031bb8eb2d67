// The echo benchmark's peer servers, each the plain echo an application
// would write with that library or runtime, printing one "listening on
// ws://host:port" line once ready:
//
//   node bench/_echo_peers.ts ws [--port 0]      ws's WebSocketServer (Node)
//   deno run -A bench/_echo_peers.ts deno        Deno.serve + upgradeWebSocket
//   bun bench/_echo_peers.ts bun                 Bun.serve's native WebSocket
//   node bench/_echo_peers.ts raw                a raw TCP echo after the
//                                                handshake: the generator's
//                                                ceiling, no WebSocket work
//
// No compression anywhere; message limits well above the benchmark's sizes.

import { Buffer } from "node:buffer";
import { createHash } from "node:crypto";
import net from "node:net";
import process from "node:process";
import { option } from "./_args.ts";
import { WebSocketServer } from "./_ws.ts";

const kind = process.argv[2];
const host = option("host", "127.0.0.1");
const port = option("port", 0);
const LIMIT = 64 * 1024 * 1024;

function listening(actual: number): void {
  console.log(`${kind} echo server listening on ws://${host}:${actual}`);
}

function wsServer(): void {
  // By file path (bench/_ws.ts), so that it is the real ws.
  const server = new WebSocketServer({
    host,
    port,
    maxPayload: LIMIT,
    perMessageDeflate: false,
  });
  server.on("connection", (ws) => {
    ws.on("error", () => {});
    ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  server.on("listening", () => listening(server.address().port));
}

function denoServer(): void {
  const server = Deno.serve({
    hostname: host,
    port,
    onListen: ({ port }) => listening(port),
  }, (request) => {
    if (request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("WebSocket only\n", { status: 426 });
    }
    const { socket, response } = Deno.upgradeWebSocket(request, {
      idleTimeout: 0,
    });
    socket.binaryType = "arraybuffer";
    socket.onmessage = (event) => socket.send(event.data);
    socket.onerror = () => {};
    return response;
  });
  server.finished.catch(() => {});
}

interface BunSocket {
  send(data: string | Uint8Array): number;
}

interface BunApi {
  serve(options: {
    hostname: string;
    port: number;
    fetch(
      request: Request,
      server: { upgrade(request: Request): boolean },
    ): Response | undefined;
    websocket: {
      maxPayloadLength: number;
      perMessageDeflate: boolean;
      message(ws: BunSocket, message: string | Uint8Array): void;
    };
  }): { port: number };
}

function bunServer(): void {
  const bun = (globalThis as unknown as { Bun: BunApi }).Bun;
  const server = bun.serve({
    hostname: host,
    port,
    fetch(request, server) {
      if (server.upgrade(request)) return undefined;
      return new Response("WebSocket only\n", { status: 426 });
    },
    websocket: {
      maxPayloadLength: LIMIT,
      perMessageDeflate: false,
      message(ws, message) {
        ws.send(message);
      },
    },
  });
  listening(server.port);
}

// Answers the handshake, then sends back every byte as it came (still
// masked: the generator skips payloads unread).
function rawServer(): void {
  const server = net.createServer((socket) => {
    socket.setNoDelay(true);
    socket.on("error", () => {});
    let head = Buffer.alloc(0);
    const onHandshake = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      socket.off("data", onHandshake);
      const key = /sec-websocket-key:\s*(\S+)/i.exec(
        head.subarray(0, end).toString(),
      )?.[1] ?? "";
      const accept = createHash("sha1")
        .update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`)
        .digest("base64");
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
          `Connection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
      );
      const rest = head.subarray(end + 4);
      if (rest.length > 0) socket.write(rest);
      socket.on("data", (data: Buffer) => socket.write(data));
    };
    socket.on("data", onHandshake);
  });
  server.listen(port, host, () => {
    listening((server.address() as net.AddressInfo).port);
  });
}

switch (kind) {
  case "ws":
    wsServer();
    break;
  case "deno":
    denoServer();
    break;
  case "bun":
    bunServer();
    break;
  case "raw":
    rawServer();
    break;
  default:
    console.error("usage: _echo_peers.ts ws|deno|bun|raw [--port 0]");
    process.exit(2);
}
