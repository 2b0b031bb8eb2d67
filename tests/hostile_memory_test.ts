// Memory under every count a peer controls, over real loopback sockets
// against the node:http upgrade path: the count of fragments in a message
// (empty, one byte, text split inside code points), the length a frame's
// header claims, and connections left idle in the middle of a frame. Each
// case sends far more than the limits allow if each unit cost its overhead,
// and checks that the server's memory grows with the bytes it accepted,
// not with the count; and extension offers and parameters by the thousand
// cost the handshake no more than its bounded head. (Pings are coalesced:
// tests/hostile_test.ts. Header lines and head size: the 431 cases there.)

import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import net from "node:net";
import process from "node:process";
import type { Duplex } from "node:stream";
import { test } from "node:test";
import v8 from "node:v8";
import vm from "node:vm";
import { type NodeUpgradeOptions, upgrade } from "../src/adapters/node.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { clientFrame, concat } from "./_helpers.ts";

const MiB = 1024 * 1024;
const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const HEAD = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
  `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\n` +
  "Sec-WebSocket-Version: 13\r\n\r\n";

// A full collection before each reading, so that garbage not yet collected
// does not count: Bun.gc on Bun, V8's gc() on Node and Deno.
const g = globalThis as { Bun?: { gc(force: boolean): void } };
let gc: () => void;
if (g.Bun !== undefined) gc = () => g.Bun!.gc(true);
else {
  v8.setFlagsFromString("--expose-gc");
  gc = vm.runInNewContext("gc");
}

/**
 * Memory the process holds: the JS heap and what lives outside it (array
 * buffers' bytes among it). Deno counts array buffers in `external` and
 * reports `arrayBuffers` as 0; Bun reports neither, so its RSS is the
 * honest figure there. (RSS on Deno swung by ±40 MiB between runs.)
 */
function held(): number {
  gc();
  const { heapUsed, external, rss } = process.memoryUsage();
  return external > 0 ? heapUsed + external : rss;
}

async function server(options: NodeUpgradeOptions = {}) {
  const http = createServer();
  const connections: WebSocketConnection[] = [];
  http.on(
    "upgrade",
    (request: IncomingMessage, socket: Duplex, head: Uint8Array) => {
      const ws = upgrade(request, socket as never, head, {
        origins: "*",
        ...options,
      });
      ws.closed.catch(() => {});
      connections.push(ws);
    },
  );
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  return {
    port: (http.address() as net.AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        http.close(() => resolve());
        http.closeAllConnections();
      }),
  };
}

/** Opens a connection: the request, then the server's 101. */
async function open(port: number): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  socket.write(HEAD);
  let head = "";
  await new Promise<void>((resolve) => {
    const onData = (chunk: Uint8Array) => {
      head += new TextDecoder().decode(chunk);
      if (head.includes("\r\n\r\n")) {
        socket.off("data", onData);
        resolve();
      }
    };
    socket.on("data", onData);
  });
  assert.match(head, /^HTTP\/1\.1 101 /);
  return socket;
}

/** Writes `bytes`, waiting for the socket to drain. */
async function send(socket: net.Socket, bytes: Uint8Array): Promise<void> {
  if (!socket.write(bytes)) {
    await new Promise((resolve) => socket.once("drain", resolve));
  }
}

/**
 * Sends a message as `count` fragments made by `piece(i)`, in batches, and
 * returns how much the server's memory grew once all but the last had
 * arrived, and the message the server read.
 */
async function fragmented(
  opcode: number,
  count: number,
  piece: (i: number) => Uint8Array,
): Promise<{ growth: number; message: unknown }> {
  const s = await server({ maxMessageSize: 8 * MiB });
  const socket = await open(s.port);
  const ws = s.connections[0];
  const { readable } = await ws.opened;
  const reader = readable.getReader();
  const before = held();
  await send(socket, clientFrame(opcode, piece(0), false));
  const BATCH = 10_000;
  for (let i = 1; i < count - 1; i += BATCH) {
    const frames: Uint8Array[] = [];
    for (let k = i; k < Math.min(i + BATCH, count - 1); k++) {
      frames.push(clientFrame(0x0, piece(k), false));
    }
    await send(socket, concat(frames));
  }
  // A ping, answered once everything before it has been read.
  const ponged = new Promise<void>((resolve) => {
    socket.on("data", (chunk: Uint8Array) => {
      if (chunk.includes(0x8a)) resolve();
    });
  });
  await send(socket, clientFrame(0x9, new Uint8Array(0), true));
  await ponged;
  const growth = held() - before;
  await send(socket, clientFrame(0x0, piece(count - 1), true));
  const { value: message } = await reader.read();
  socket.destroy();
  await s.close();
  return { growth, message };
}

const FRAGMENTS = 1_000_000;
// Far below what a view per fragment costs (about 100 bytes each), and well
// above what the message's own megabyte costs.
const BOUND = 16 * MiB;

test(
  `a message in ${FRAGMENTS} one-byte fragments costs memory for its bytes, not its fragments`,
  { timeout: 120_000 },
  async () => {
    const { growth, message } = await fragmented(
      0x2,
      FRAGMENTS,
      (i) => new Uint8Array([i & 0xff]),
    );
    assert.ok(growth < BOUND, `grew by ${(growth / MiB).toFixed(1)} MiB`);
    const bytes = message as Uint8Array;
    assert.equal(bytes.length, FRAGMENTS);
    assert.equal(bytes[FRAGMENTS - 1], (FRAGMENTS - 1) & 0xff);
  },
);

test(
  `a message in ${FRAGMENTS} empty fragments costs no memory per fragment`,
  { timeout: 120_000 },
  async () => {
    const { growth, message } = await fragmented(
      0x2,
      FRAGMENTS,
      (i) => new Uint8Array(i === 0 ? [7] : []),
    );
    assert.ok(growth < BOUND, `grew by ${(growth / MiB).toFixed(1)} MiB`);
    assert.deepEqual(message, new Uint8Array([7]));
  },
);

test(
  "a text in one-byte fragments, split inside its code points, costs memory for its bytes",
  { timeout: 120_000 },
  async () => {
    const utf8 = new TextEncoder().encode("κόσμε");
    const count = Math.floor(FRAGMENTS / utf8.length) * utf8.length;
    const { growth, message } = await fragmented(
      0x1,
      count,
      (i) => utf8.subarray(i % utf8.length, i % utf8.length + 1),
    );
    assert.ok(growth < BOUND, `grew by ${(growth / MiB).toFixed(1)} MiB`);
    assert.equal(message, "κόσμε".repeat(count / utf8.length));
  },
);

test(
  "connections idle in the middle of a frame cost the bytes they sent, not the length their headers claim",
  { timeout: 60_000 },
  async () => {
    const s = await server();
    const before = held();
    const sockets: net.Socket[] = [];
    for (let i = 0; i < 64; i++) {
      const socket = await open(s.port);
      // A binary frame that claims 16 MiB - 1 and brings 100 bytes.
      const header = new Uint8Array([
        0x82,
        0xff,
        0,
        0,
        0,
        0,
        0,
        0xff,
        0xff,
        0xff,
      ]);
      socket.write(concat([header, new Uint8Array(4), new Uint8Array(100)]));
      sockets.push(socket);
    }
    // Every connection has read its bytes once a ping on the last is answered.
    await new Promise((r) => setTimeout(r, 200));
    const growth = held() - before;
    // 64 × 16 MiB if allocated on the header.
    assert.ok(growth < 64 * MiB, `grew by ${(growth / MiB).toFixed(1)} MiB`);
    for (const socket of sockets) socket.destroy();
    await s.close();
  },
);

test("thousands of extension offers and parameters cost no more than the bounded head", async () => {
  const s = await server({ perMessageDeflate: true });
  const offers = [
    // 2,000 offers of an unknown extension, then permessage-deflate.
    Array.from({ length: 2000 }, () => "x").join(",") +
    ", permessage-deflate",
    // One offer with 1,500 parameters.
    "permessage-deflate" + "; a".repeat(1500),
    // 600 offers of permessage-deflate with a parameter each (14 KB).
    Array.from({ length: 600 }, () => "permessage-deflate; x=1").join(","),
  ];
  for (const offer of offers) {
    const before = held();
    const socket = net.connect(s.port, "127.0.0.1");
    socket.on("error", () => {});
    await new Promise((resolve) => socket.once("connect", resolve));
    socket.write(
      HEAD.replace(
        "\r\n\r\n",
        `\r\nSec-WebSocket-Extensions: ${offer}\r\n\r\n`,
      ),
    );
    const status = await new Promise<string>((resolve) => {
      let head = "";
      socket.on("data", (chunk: Uint8Array) => {
        head += new TextDecoder().decode(chunk);
        if (head.includes("\r\n")) resolve(head.split("\r\n")[0]);
      });
      socket.once("close", () => resolve(head));
    });
    // Accepted with what could be agreed, or refused as malformed: either
    // way answered, and nothing kept.
    assert.match(status, /^HTTP\/1\.1 (101|400) /, offer.slice(0, 40));
    socket.destroy();
    const growth = held() - before;
    assert.ok(growth < 8 * MiB, `grew by ${(growth / MiB).toFixed(1)} MiB`);
  }
  await s.close();
});
