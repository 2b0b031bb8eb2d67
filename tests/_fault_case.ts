// One transport fault, run in a process of its own by tests/faults_test.ts:
//
//   <runtime> tests/_fault_case.ts <role> <moment>
//
// role: "server" (our node:http upgrade, against a raw TCP client) or
// "client" (our WebSocketStream, against a raw TCP server). moment: where
// the raw peer resets the TCP connection: "frame" (inside a frame),
// "fragments" (inside a fragmented message), "close" (after our Close,
// before answering it) or "peer-close" (right after sending its own Close).
//
// Prints one JSON line of what it saw, then ends on its own: it never
// calls process.exit, so a timer, socket or listener left alive keeps it
// running, and the test that spawned it fails.

import { createHash } from "node:crypto";
import { createServer, type IncomingMessage } from "node:http";
import net from "node:net";
import process from "node:process";
import type { Duplex } from "node:stream";
import { upgrade } from "../src/adapters/node.ts";
import { WebSocketStream } from "../src/client.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { WebSocketError } from "../src/errors.ts";

const [role, moment] = process.argv.slice(-2);
let unhandled = 0;
process.on("unhandledRejection", () => unhandled++);

// Far longer than the spawning test waits: a close timer left running
// would keep this process alive past it.
const closeTimeout = 60_000;

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

function accept(request: string): string {
  const key = /sec-websocket-key: *(\S+)/i.exec(request)?.[1] ?? "";
  return createHash("sha1")
    .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
    .digest("base64");
}

// Frames as the raw peer sends them: masked when it is the client.
function frame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const masked = role === "server";
  const out = new Uint8Array(2 + (masked ? 4 : 0) + payload.length);
  out[0] = (fin ? 0x80 : 0) | opcode;
  out[1] = (masked ? 0x80 : 0) | payload.length; // < 126 here
  out.set(payload, masked ? 6 : 2); // a zero mask key leaves it as is
  return out;
}

const text = (s: string) => new TextEncoder().encode(s);

// What the raw peer does once the connection is open, ending in a reset.
async function misbehave(socket: net.Socket, received: () => number) {
  switch (moment) {
    case "frame":
      // A 100-byte text frame cut after 10 bytes of its payload.
      socket.write(frame(0x1, text("x".repeat(100))).subarray(0, 16));
      break;
    case "fragments":
      socket.write(frame(0x1, text("first "), false));
      socket.write(frame(0x0, text("second "), false));
      socket.write(frame(0x0, text("third"), false).subarray(0, 5));
      break;
    case "close":
      // Wait for our side's Close frame, then reset instead of answering.
      while (received() <= 0) await new Promise((r) => setTimeout(r, 5));
      break;
    case "peer-close":
      socket.write(frame(0x8, new Uint8Array([0x03, 0xe8])));
      break;
  }
  await new Promise((r) => setTimeout(r, 20));
  socket.resetAndDestroy();
}

async function observe(ws: WebSocketConnection) {
  const { readable, writable } = await ws.opened;
  const reader = readable.getReader();
  const writer = writable.getWriter();
  const read = (async () => {
    while (!(await reader.read()).done);
  })();
  if (moment === "close") ws.close({ closeCode: 1000 });
  const outcome = { closed: "resolved", read: "ended", write: "ok" };
  try {
    await ws.closed;
  } catch (error) {
    outcome.closed = error instanceof WebSocketError
      ? String(error.closeCode)
      : String(error);
  }
  await read.catch(() => (outcome.read = "errored"));
  await writer.write("after").catch(() => (outcome.write = "errored"));
  return outcome;
}

let outcome: Record<string, string>;
if (role === "server") {
  const server = createServer();
  const opened = new Promise<WebSocketConnection>((resolve) =>
    server.on(
      "upgrade",
      (request: IncomingMessage, socket: Duplex, head: Uint8Array) =>
        resolve(upgrade(request, socket as never, head, { closeTimeout })),
    )
  );
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  // Bytes after the 101's head (a Close may come in the same chunk).
  let bytes = -1;
  let head = "";
  socket.on("data", (chunk: Uint8Array) => {
    if (bytes >= 0) {
      bytes += chunk.length;
      return;
    }
    head += String.fromCharCode(...chunk);
    const end = head.indexOf("\r\n\r\n");
    if (end >= 0) bytes = head.length - end - 4;
  });
  socket.write(
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\n` +
      "Sec-WebSocket-Version: 13\r\n\r\n",
  );
  const ws = await opened;
  const observed = observe(ws);
  await ws.opened;
  await misbehave(socket, () => bytes);
  outcome = await observed;
  await new Promise((r) => server.close(r));
} else {
  let misbehaving: Promise<void> = Promise.resolve();
  const server = net.createServer((socket) => {
    socket.on("error", () => {});
    let bytes = 0;
    let upgraded = false;
    socket.on("data", (chunk: Uint8Array) => {
      if (upgraded) {
        bytes += chunk.length;
        return;
      }
      upgraded = true; // the request comes first, alone
      const request = new TextDecoder().decode(chunk);
      socket.write(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
          `Connection: Upgrade\r\nSec-WebSocket-Accept: ${
            accept(request)
          }\r\n\r\n`,
      );
      misbehaving = misbehave(socket, () => bytes);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as net.AddressInfo;
  const ws = new WebSocketStream(`ws://127.0.0.1:${port}`, { closeTimeout });
  outcome = await observe(ws);
  await misbehaving;
  await new Promise((r) => server.close(r));
}
// Node lists what keeps the process alive; Deno and Bun have no such list,
// and the spawning test's bound on this process's life stands in for it.
await new Promise((r) => setTimeout(r, 10));
// Standard output and error are pipes or terminals, and stay.
const alive = (process as { getActiveResourcesInfo?: () => string[] })
  .getActiveResourcesInfo?.()
  .filter((name) => name !== "PipeWrap" && name !== "TTYWrap");
console.log(JSON.stringify({ ...outcome, unhandled, alive }));
