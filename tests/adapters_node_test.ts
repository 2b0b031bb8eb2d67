// The node:http upgrade adapter, run on whichever runtime runs this file
// (Node, Deno and Bun all give the raw socket), against real clients: ws
// from npm and the runtime's own WebSocket.

import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import { connect } from "node:net";
import type { Duplex } from "node:stream";
import { test } from "node:test";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { type NodeUpgradeOptions, upgrade } from "../src/adapters/node.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { HandshakeError } from "../src/handshake.ts";
import { type NodeSocket, nodeSocketDuplex } from "../src/_node_socket.ts";
import { transportOf } from "../src/_transport.ts";
import { eventually, payload } from "./_helpers.ts";

// Under Bun, import "ws" gives Bun's own client; load the package by path.
const require = createRequire(import.meta.url);
const WS = require(
  fileURLToPath(new URL("../node_modules/ws/index.js", import.meta.url)),
);

interface Served {
  url: string;
  connections: WebSocketConnection<false>[];
  close(): Promise<void>;
}

async function serve(
  handle: (ws: WebSocketConnection<false>) => Promise<void>,
  options: NodeUpgradeOptions = {},
): Promise<Served> {
  const connections: WebSocketConnection<false>[] = [];
  const server = createServer();
  server.on(
    "upgrade",
    (request: IncomingMessage, socket: Duplex, head: Uint8Array) => {
      const ws = upgrade(request, socket as never, head, options);
      connections.push(ws);
      handle(ws).catch(() => {});
    },
  );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}/path?q=1`,
    connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function echo(ws: WebSocketConnection<false>) {
  const { readable, writable } = await ws.opened;
  await readable.pipeTo(writable);
}

/** Opens a ws client and collects what it receives. */
function wsClient(url: string, options: Record<string, unknown> = {}) {
  const client = new WS(url, options);
  const messages: { data: Uint8Array; binary: boolean }[] = [];
  let notify = () => {};
  client.on("message", (data: Uint8Array, binary: boolean) => {
    messages.push({ data: new Uint8Array(data), binary });
    notify();
  });
  const opened = new Promise<void>((resolve, reject) => {
    client.once("open", resolve);
    client.on("error", reject);
  });
  opened.catch(() => {});
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    client.once(
      "close",
      (code: number, reason: Uint8Array) =>
        resolve({ code, reason: new TextDecoder().decode(reason) }),
    )
  );
  const unexpected = new Promise<number>((resolve) =>
    client.once(
      "unexpected-response",
      (_: unknown, response: { statusCode: number }) =>
        resolve(response.statusCode),
    )
  );
  return {
    client,
    messages,
    opened,
    closed,
    unexpected,
    async received(count: number) {
      while (messages.length < count) {
        await new Promise<void>((resolve) => (notify = resolve));
      }
    },
  };
}

const sizes = [0, 125, 64 * 1024, 16 * 1024 * 1024];

test("upgrade echoes ws's text and binary messages of every size, byte for byte", async () => {
  const server = await serve(echo);
  const peer = wsClient(server.url);
  await peer.opened;
  const sent: { data: Uint8Array | string; binary: boolean }[] = [];
  for (const size of sizes) {
    const bytes = payload(size, size + 1);
    const text = "é".repeat(size / 2);
    sent.push({ data: bytes, binary: true }, { data: text, binary: false });
    peer.client.send(bytes);
    peer.client.send(text);
  }
  await peer.received(sent.length);
  for (const [i, message] of sent.entries()) {
    const got = peer.messages[i];
    assert.equal(got.binary, message.binary, `message ${i}`);
    const expected = typeof message.data === "string"
      ? new TextEncoder().encode(message.data)
      : message.data;
    assert.equal(got.data.length, expected.length);
    assert.ok(
      got.data.every((b, j) => b === expected[j]),
      `message ${i} differs`,
    );
  }
  peer.client.close(4000, "done");
  assert.deepEqual(await peer.closed, { code: 4000, reason: "" });
  assert.deepEqual(await server.connections[0].closed, {
    closeCode: 4000,
    reason: "done",
  });
  await server.close();
});

test("upgrade stops reading the socket while messages go unread, and takes them all once read", async () => {
  let opened!: (readable: ReadableStream<string | Uint8Array>) => void;
  const readable = new Promise<ReadableStream<string | Uint8Array>>(
    (resolve) => opened = resolve,
  );
  const server = await serve(async (ws) => opened((await ws.opened).readable));
  const peer = wsClient(server.url);
  await peer.opened;
  const count = 48;
  for (let i = 0; i < count; i++) peer.client.send(payload(1024 * 1024, i));
  await new Promise((resolve) => setTimeout(resolve, 300));
  // Kernel buffers and up to 64 KiB handed on hold a few MiB; the rest
  // waits at ws because the server stopped reading.
  assert.ok(
    peer.client.bufferedAmount > 16 * 1024 * 1024,
    `ws still buffers only ${peer.client.bufferedAmount} bytes`,
  );
  const reader = (await readable).getReader();
  for (let i = 0; i < count; i++) {
    const { value } = await reader.read();
    assert.ok(value instanceof Uint8Array);
    assert.deepEqual(value, payload(1024 * 1024, i), `message ${i}`);
  }
  // ws counts a write as done in its socket's write callback: an event of
  // its own, which need not come before our end has read the last bytes.
  await eventually(
    () => peer.client.bufferedAmount === 0,
    "ws's bufferedAmount to reach 0",
  );
  peer.client.close(1000);
  await server.connections[0].closed;
  await server.close();
});

test("upgrade: a heartbeat counts the pong that arrived while the event loop was stalled", async () => {
  const server = await serve(echo, { heartbeat: { interval: 100 } });
  const peer = wsClient(server.url);
  await peer.opened;
  let pings = 0;
  let notify = () => {};
  peer.client.on("ping", () => {
    // ws has written its pong already. Stalling the event loop past the
    // heartbeat's deadline leaves that pong unread when the timers run.
    if (++pings === 1) {
      const until = Date.now() + 400;
      while (Date.now() < until) { /* stalled */ }
    }
    notify();
  });
  let closed = false;
  server.connections[0].closed.finally(() => {
    closed = true;
    notify();
  }).catch(() => {});
  while (pings < 3 && !closed) {
    await new Promise<void>((resolve) => notify = resolve);
  }
  assert.equal(closed, false, "the heartbeat dropped a peer that answered");
  peer.client.close(1000);
  assert.deepEqual(await server.connections[0].closed, {
    closeCode: 1000,
    reason: "",
  });
  await server.close();
});

test("upgrade reassembles ws's fragmented message and answers its ping", async () => {
  const server = await serve(echo);
  const peer = wsClient(server.url);
  await peer.opened;
  const pong = new Promise<string>((resolve) =>
    peer.client.once(
      "pong",
      (data: Uint8Array) => resolve(new TextDecoder().decode(data)),
    )
  );
  peer.client.ping("are you there");
  peer.client.send("frag", { fin: false });
  peer.client.send("men", { fin: false });
  peer.client.send("ted", { fin: true });
  assert.equal(await pong, "are you there");
  await peer.received(1);
  assert.equal(new TextDecoder().decode(peer.messages[0].data), "fragmented");
  assert.equal(peer.messages[0].binary, false);
  peer.client.close(1000);
  await peer.closed;
  await server.close();
});

test("upgrade: the server closes with a code and reason that ws receives", async () => {
  const server = await serve(async (ws) => {
    await ws.opened;
    await ws.ping("ping from server");
    ws.close({ closeCode: 4001, reason: "server says bye" });
  });
  const peer = wsClient(server.url);
  assert.deepEqual(await peer.closed, {
    code: 4001,
    reason: "server says bye",
  });
  // ws echoes the reason too.
  assert.deepEqual(await server.connections[0].closed, {
    closeCode: 4001,
    reason: "server says bye",
  });
  await server.close();
});

test("upgrade sends what a message held when write() resolved, even if its buffer is reused or detached at once", async () => {
  // Small payloads wait for the end of the turn to go out with the turn's
  // other writes: they must be copied as they are written. (A detached
  // buffer there used to throw from a timer and end the process.)
  const sent: Uint8Array[] = [];
  const server = await serve(async (ws) => {
    const { writable } = await ws.opened;
    const writer = writable.getWriter();
    for (const size of [100, 2000, 4000]) {
      const data = payload(size, size);
      sent.push(data.slice());
      await writer.write(data);
      data.fill(0x42); // reused
      const detached = payload(size, size + 1);
      sent.push(detached.slice());
      await writer.write(detached);
      const buffer = detached.buffer as ArrayBuffer;
      structuredClone(buffer, { transfer: [buffer] });
      assert.equal(detached.length, 0, "the buffer was detached");
    }
    await writer.close();
  });
  const peer = wsClient(server.url);
  await peer.received(sent.length);
  assert.deepEqual(peer.messages.map((m) => m.data), sent);
  await peer.closed;
  await server.close();
});

test("upgrade: a client that vanishes rejects closed with 1006", async () => {
  const server = await serve(echo);
  const peer = wsClient(server.url);
  await peer.opened;
  peer.client.terminate();
  await assert.rejects(server.connections[0].closed, {
    name: "WebSocketError",
    closeCode: 1006,
  });
  await server.close();
});

test("upgrade works with the runtime's own WebSocket client", async () => {
  const server = await serve(echo);
  const native = new WebSocket(server.url);
  native.binaryType = "arraybuffer";
  const received: (string | Uint8Array)[] = [];
  const done = new Promise<CloseEvent>((resolve) => (native.onclose = resolve));
  await new Promise((resolve, reject) => {
    native.onopen = resolve;
    native.onerror = reject;
  });
  native.onmessage = (event) => {
    received.push(
      typeof event.data === "string" ? event.data : new Uint8Array(event.data),
    );
    if (received.length === 2) native.close(4002, "native done");
  };
  native.send("from native");
  native.send(new Uint8Array([9, 8, 7]));
  const event = await done;
  assert.deepEqual(received, ["from native", new Uint8Array([9, 8, 7])]);
  assert.equal(event.code, 4002);
  assert.deepEqual(await server.connections[0].closed, {
    closeCode: 4002,
    reason: "native done",
  });
  await server.close();
});

/** Sends a raw handshake and returns the response head. */
async function rawHandshake(
  port: number,
  headers: Record<string, string>,
): Promise<string> {
  const socket = connect(port, "127.0.0.1");
  const lines = Object.entries(headers).map(([name, value]) =>
    `${name}: ${value}\r\n`
  ).join("");
  socket.write(`GET / HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${lines}\r\n`);
  let response = "";
  for await (const chunk of socket) {
    response += new TextDecoder().decode(chunk as Uint8Array);
    if (response.includes("\r\n\r\n")) break;
  }
  socket.destroy();
  return response;
}

const valid = {
  Upgrade: "websocket",
  Connection: "Upgrade",
  "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
  "Sec-WebSocket-Version": "13",
};

test("upgrade refuses bad handshakes with the status the RFC names, and rejects opened", async () => {
  const server = await serve(async (ws) => {
    await assert.rejects(ws.opened, HandshakeError);
  });
  const port = Number(new URL(server.url).port);
  assert.match(
    await rawHandshake(port, { ...valid, "Sec-WebSocket-Version": "8" }),
    /^HTTP\/1\.1 426 [^\r]*\r\n(.*\r\n)*sec-websocket-version: 13\r\n/i,
  );
  assert.match(
    await rawHandshake(port, { ...valid, "Sec-WebSocket-Key": "short" }),
    /^HTTP\/1\.1 400 /,
  );
  assert.match(
    await rawHandshake(port, { ...valid, Origin: "https://evil.example" }),
    /^HTTP\/1\.1 403 /,
  );
  const ok = await rawHandshake(port, {
    ...valid,
    Origin: `http://127.0.0.1:${port}`,
  });
  assert.match(ok, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.match(ok, /sec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/i);
  await server.close();
});

test("upgrade: the accept hook can refuse with any response, and subprotocols are negotiated", async () => {
  const server = await serve(echo, {
    protocols: ["chat.v2", "chat.v1"],
    accept: (request) =>
      request.headers.get("cookie") === "session=ok" ||
      new Response("log in first", {
        status: 401,
        headers: { "www-authenticate": "Cookie" },
      }),
  });
  const refused = wsClient(server.url);
  assert.equal(await refused.unexpected, 401);
  refused.client.terminate();

  const peer = wsClient(server.url, { headers: { cookie: "session=ok" } });
  const withProtocols = new WS(server.url, ["chat.v1", "chat.v2"], {
    headers: { cookie: "session=ok" },
  });
  await new Promise((resolve) => withProtocols.once("open", resolve));
  assert.equal(withProtocols.protocol, "chat.v1");
  await peer.opened;
  const opened = await server.connections[2].opened;
  assert.equal(opened.protocol, "chat.v1");
  withProtocols.close(1000);
  peer.client.close(1000);
  await Promise.all([
    peer.closed,
    new Promise((resolve) => withProtocols.once("close", resolve)),
  ]);
  await server.close();
});

test("node socket transport: a socket whose write() writes back into the transport loses nothing", async () => {
  // A custom or in-memory NodeSocket may call back synchronously; what it
  // writes from inside write() goes out with the next turn's flush.
  const written: string[] = [];
  let reenter = true;
  let destroyed: unknown = null;
  const socket: NodeSocket = {
    destroyed: false,
    write(chunk) {
      written.push(new TextDecoder().decode(chunk));
      if (reenter) {
        reenter = false;
        transport.write(new TextEncoder().encode("B"));
      }
      return true;
    },
    end() {},
    destroy(error) {
      destroyed = error ?? "destroyed";
    },
    pause() {},
    resume() {},
    on() {},
    off() {},
  };
  const transport = transportOf(nodeSocketDuplex(socket));
  transport.start({
    data() {},
    end() {},
    readError() {},
    writeError() {},
  });
  transport.write(new TextEncoder().encode("A"));
  await new Promise((resolve) => setTimeout(resolve, 10));
  transport.write(new TextEncoder().encode("C"));
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(destroyed, null);
  assert.deepEqual(written, ["A", "B", "C"]);
});
