// The fan-out benchmark's peer servers: each relays every message a client
// sends to every other connected client, the way an application written
// with that library or runtime does it, and prints one "listening on
// ws://host:port" line once ready:
//
//   node bench/_fanout_peers.ts ws [--port 0]   ws's README recipe: a loop
//                                               over wss.clients
//   deno run -A bench/_fanout_peers.ts deno     Deno.serve's native
//                                               WebSocket, a loop of send()
//   bun bench/_fanout_peers.ts bun              Bun.serve's native publish()
//                                               (which skips the sender)
//
// No compression anywhere. Ours is examples/broadcast.ts.

import process from "node:process";
import { option } from "./_args.ts";
import { WebSocketServer } from "./_ws.ts";

const kind = process.argv[2];
const host = option("host", "127.0.0.1");
const port = option("port", 0);
const LIMIT = 64 * 1024 * 1024;

function listening(actual: number): void {
  console.log(`${kind} relay listening on ws://${host}:${actual}`);
}

function wsRelay(): void {
  // By file path (bench/_ws.ts), so that it is the real ws.
  const server = new WebSocketServer({
    host,
    port,
    maxPayload: LIMIT,
    perMessageDeflate: false,
  });
  const OPEN = 1;
  server.on("connection", (ws) => {
    ws.on("error", () => {});
    ws.on("message", (data, isBinary) => {
      for (const client of server.clients) {
        if (client !== ws && client.readyState === OPEN) {
          client.send(data, { binary: isBinary });
        }
      }
    });
  });
  server.on("listening", () => listening(server.address().port));
}

function denoRelay(): void {
  const everyone = new Set<WebSocket>();
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
    socket.onopen = () => everyone.add(socket);
    socket.onclose = () => everyone.delete(socket);
    socket.onmessage = (event) => {
      for (const other of everyone) {
        if (other !== socket && other.readyState === WebSocket.OPEN) {
          other.send(event.data);
        }
      }
    };
    socket.onerror = () => {};
    return response;
  });
  server.finished.catch(() => {});
}

interface BunSocket {
  subscribe(topic: string): void;
  publish(topic: string, data: string | Uint8Array): number;
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
      open(ws: BunSocket): void;
      message(ws: BunSocket, message: string | Uint8Array): void;
    };
  }): { port: number };
}

function bunRelay(): void {
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
      open(ws) {
        ws.subscribe("everyone");
      },
      message(ws, message) {
        ws.publish("everyone", message);
      },
    },
  });
  listening(server.port);
}

switch (kind) {
  case "ws":
    wsRelay();
    break;
  case "deno":
    denoRelay();
    break;
  case "bun":
    bunRelay();
    break;
  default:
    console.error("usage: _fanout_peers.ts ws|deno|bun [--port 0]");
    process.exit(2);
}
