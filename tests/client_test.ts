// The client, run on whichever runtime runs this file, against real servers
// in the same process: ws from npm, a node:https server with ws for wss://,
// hand-written servers for broken handshakes, and Deno.serve or Bun.serve
// where the runtime has one.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpsServer } from "node:https";
import { createRequire } from "node:module";
import { createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { WebSocketStream } from "../src/client.ts";
import { WebSocketError } from "../src/errors.ts";
import { HandshakeError } from "../src/handshake.ts";
import { eventually, payload } from "./_helpers.ts";

// Under Bun, import "ws" gives Bun's own shim; load the package by path.
const require = createRequire(import.meta.url);
const WS = require(
  fileURLToPath(new URL("../node_modules/ws/index.js", import.meta.url)),
);

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// deno-lint-ignore no-explicit-any
type WsSocket = any;

/** A connection accepted by ws's server, and what it received. */
interface WsPeer {
  ws: WsSocket;
  headers: Record<string, string | string[] | undefined>;
  messages: { data: Uint8Array; binary: boolean }[];
  received(count: number): Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
}

function wsPeer(
  ws: WsSocket,
  request: { headers: Record<string, string | string[] | undefined> },
): WsPeer {
  const messages: WsPeer["messages"] = [];
  let notify = () => {};
  ws.on("message", (data: Uint8Array, binary: boolean) => {
    messages.push({ data: new Uint8Array(data), binary });
    notify();
  });
  return {
    ws,
    headers: request.headers,
    messages,
    async received(count: number) {
      while (messages.length < count) {
        await new Promise<void>((resolve) => (notify = resolve));
      }
    },
    closed: new Promise((resolve) =>
      ws.once(
        "close",
        (code: number, reason: Uint8Array) =>
          resolve({ code, reason: decoder.decode(reason) }),
      )
    ),
  };
}

interface WsServer {
  url: string;
  port: number;
  /** The next connection the server accepts. */
  next(): Promise<WsPeer>;
  close(): Promise<void>;
}

/** ws's WebSocketServer on 127.0.0.1 and a free port. */
async function wsServer(
  options: Record<string, unknown> = {},
): Promise<WsServer> {
  const wss = new WS.WebSocketServer({
    host: "127.0.0.1",
    port: 0,
    ...options,
  });
  await new Promise((resolve) => wss.once("listening", resolve));
  const peers: WsPeer[] = [];
  let notify = () => {};
  wss.on("connection", (ws: WsSocket, request: WsPeer) => {
    peers.push(wsPeer(ws, request));
    notify();
  });
  const { port } = wss.address();
  let taken = 0;
  return {
    url: `ws://127.0.0.1:${port}`,
    port,
    async next() {
      while (peers.length <= taken) {
        await new Promise<void>((resolve) => (notify = resolve));
      }
      return peers[taken++];
    },
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

/**
 * A TCP server, or TLS with `tls`, that hands each connection's request
 * head to `respond`.
 */
async function rawServer(
  respond: (socket: Socket, request: string) => void,
  tls?: { key: string; cert: string },
) {
  const sockets: Socket[] = [];
  const socketClosed: Promise<void>[] = [];
  const onConnection = (socket: Socket) => {
    sockets.push(socket);
    socketClosed.push(
      new Promise((resolve) => socket.once("close", () => resolve())),
    );
    socket.on("error", () => {});
    let request = "";
    const onData = (chunk: Uint8Array) => {
      request += decoder.decode(chunk);
      if (request.includes("\r\n\r\n")) {
        socket.off("data", onData);
        respond(socket, request);
      }
    };
    socket.on("data", onData);
  };
  const server = tls === undefined
    ? createNetServer(onConnection)
    : createTlsServer(
      { ...tls, ALPNProtocols: ["http/1.1"] },
      onConnection,
    );
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    sockets,
    /** Resolves when the server's end of the `i`th connection has closed. */
    socketClosed: (i: number) => socketClosed[i],
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A 101 that ws would send, for a request head. */
function accept(request: string, extra = ""): string {
  const key = /sec-websocket-key: (\S+)/i.exec(request)![1];
  const digest = createHash("sha1")
    .update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest("base64");
  return "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
    `Connection: Upgrade\r\nSec-WebSocket-Accept: ${digest}\r\n${extra}\r\n`;
}

/** Text of exactly `size` bytes of UTF-8, with 2-, 3- and 4-byte characters. */
function text(size: number): string {
  const start = size >= 9 ? "é€😀" : "";
  const rest = size - encoder.encode(start).length;
  const out = start +
    "abcdefghijklmnopqrstuvwxyz".repeat(Math.ceil(rest / 26)).slice(0, rest);
  assert.equal(encoder.encode(out).length, size);
  return out;
}

function assertBytes(actual: unknown, expected: Uint8Array, what: string) {
  assert.ok(actual instanceof Uint8Array, `${what}: not a Uint8Array`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) {
      assert.fail(`${what}: byte ${i} is ${actual[i]}, not ${expected[i]}`);
    }
  }
}

/** A port nobody listens on. */
async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const sizes = [0, 125, 64 * 1024, 16 * 1024 * 1024];

test("WebSocketStream exchanges text and binary messages of 0 B, 125 B, 64 KiB and 16 MiB with ws", async () => {
  const server = await wsServer();
  const client = new WebSocketStream(server.url);
  const peer = await server.next();
  peer.ws.on(
    "message",
    (data: Uint8Array, binary: boolean) => peer.ws.send(data, { binary }),
  );
  const { readable, writable, protocol, extensions } = await client.opened;
  assert.equal(protocol, "");
  assert.equal(extensions, "");
  const writer = writable.getWriter();
  const reader = readable.getReader();
  const sent: (string | Uint8Array)[] = [];
  for (const size of sizes) {
    sent.push(payload(size, size + 1), text(size));
  }
  for (const message of sent) await writer.write(message);
  await peer.received(sent.length);
  for (const [i, message] of sent.entries()) {
    const got = peer.messages[i];
    const expected = typeof message === "string"
      ? encoder.encode(message)
      : message;
    assert.equal(got.binary, typeof message !== "string", `message ${i}`);
    assertBytes(got.data, expected, `message ${i} at ws`);
    const { value } = await reader.read();
    if (typeof message === "string") {
      assert.equal(typeof value, "string", `echo ${i}`);
      assert.ok(value === message, `echo ${i}: the text differs`);
    } else {
      assertBytes(value, message, `echo ${i}`);
    }
  }
  client.close({ closeCode: 1000 });
  assert.deepEqual(await client.closed, { closeCode: 1000, reason: "" });
  assert.deepEqual(await peer.closed, { code: 1000, reason: "" });
  await server.close();
});

test("WebSocketStream closes with 1009 on a message one byte over maxMessageSize", async () => {
  const server = await wsServer();
  const client = new WebSocketStream(server.url);
  const peer = await server.next();
  const { readable } = await client.opened;
  peer.ws.send(new Uint8Array(16 * 1024 * 1024 + 1));
  await assert.rejects(readable.getReader().read(), {
    name: "WebSocketError",
    closeCode: 1009,
  });
  await assert.rejects(client.closed, {
    name: "WebSocketError",
    closeCode: 1009,
  });
  assert.equal((await peer.closed).code, 1009);
  await server.close();
});

test("WebSocketStream stops reading the socket while its readable is not read", async () => {
  const server = await wsServer();
  const client = new WebSocketStream(server.url);
  const peer = await server.next();
  const { readable } = await client.opened;
  const count = 48;
  for (let i = 0; i < count; i++) peer.ws.send(payload(1024 * 1024, i));
  await sleep(300);
  // Kernel buffers and a few queued messages hold some MiB; the rest
  // waits at ws because we stopped reading.
  assert.ok(
    peer.ws.bufferedAmount > 16 * 1024 * 1024,
    `ws still buffers only ${peer.ws.bufferedAmount} bytes`,
  );
  const reader = readable.getReader();
  for (let i = 0; i < count; i++) {
    assertBytes((await reader.read()).value, payload(1024 * 1024, i), `${i}`);
  }
  // ws counts a write as done in its socket's write callback: an event of
  // its own, which need not come before our end has read the last bytes.
  await eventually(
    () => peer.ws.bufferedAmount === 0,
    "ws's bufferedAmount to reach 0",
  );
  client.close({ closeCode: 1000 });
  await client.closed;
  await server.close();
});

test("WebSocketStream with streaming: true receives a 32 MiB message in pieces", async () => {
  const server = await wsServer();
  const client = new WebSocketStream(server.url, { streaming: true });
  const peer = await server.next();
  const { readable } = await client.opened;
  const piece = 1024 * 1024;
  for (let i = 0; i < 32; i++) {
    peer.ws.send(payload(piece, i), { binary: true, fin: i === 31 });
  }
  const reader = readable.getReader();
  const { value: message } = await reader.read();
  assert.equal(message!.type, "binary");
  let received = 0;
  let largest = 0;
  let expectedIndex = -1;
  let expected: Uint8Array = new Uint8Array(0);
  for await (const chunk of message!.stream) {
    assert.ok(chunk instanceof Uint8Array);
    const index = Math.floor(received / piece);
    if (index !== expectedIndex) {
      expectedIndex = index;
      expected = payload(piece, index);
    }
    const at = received % piece;
    assertBytes(
      chunk,
      expected.subarray(at, at + chunk.length),
      `at ${received}`,
    );
    received += chunk.length;
    largest = Math.max(largest, chunk.length);
  }
  assert.equal(received, 32 * piece);
  assert.ok(largest <= piece, `a chunk of ${largest} bytes`);
  client.close({ closeCode: 1000 });
  await client.closed;
  await server.close();
});

test("WebSocketStream reassembles ws's fragmented messages and fragments its own", async () => {
  const server = await wsServer();
  const client = new WebSocketStream(server.url, { fragmentSize: 10 });
  const peer = await server.next();
  const { readable, writable } = await client.opened;
  peer.ws.send("frag", { fin: false });
  peer.ws.send("men", { fin: false });
  peer.ws.send("ted", { fin: true });
  peer.ws.send(new Uint8Array([1, 2]), { binary: true, fin: false });
  peer.ws.send(new Uint8Array([3]), { binary: true, fin: true });
  const reader = readable.getReader();
  assert.deepEqual(await reader.read(), { done: false, value: "fragmented" });
  assert.deepEqual(await reader.read(), {
    done: false,
    value: new Uint8Array([1, 2, 3]),
  });

  // 25 bytes in fragments of 10 reach ws as one message.
  const writer = writable.getWriter();
  await writer.write("abcdefghijklmnopqrstuvwxy");
  await writer.write(payload(25, 7));
  await peer.received(2);
  assert.equal(peer.messages[0].binary, false);
  assert.equal(
    decoder.decode(peer.messages[0].data),
    "abcdefghijklmnopqrstuvwxy",
  );
  assert.equal(peer.messages[1].binary, true);
  assertBytes(peer.messages[1].data, payload(25, 7), "binary at ws");
  client.close();
  // No code in our Close: ws sees 1005 and answers with an empty Close.
  assert.deepEqual(await client.closed, { closeCode: 1005, reason: "" });
  assert.deepEqual(await peer.closed, { code: 1005, reason: "" });
  await server.close();
});

test("WebSocketStream ping() resolves on ws's pong, and answers ws's ping", async () => {
  const server = await wsServer();
  const client = new WebSocketStream(server.url);
  const peer = await server.next();
  await client.opened;
  const pingAtServer = new Promise<Uint8Array>((resolve) =>
    peer.ws.once("ping", (data: Uint8Array) => resolve(new Uint8Array(data)))
  );
  await client.ping("from client");
  assert.equal(decoder.decode(await pingAtServer), "from client");
  await client.ping(new Uint8Array([0, 255, 1]));
  await client.ping();

  const pong = new Promise<Uint8Array>((resolve) =>
    peer.ws.once("pong", (data: Uint8Array) => resolve(new Uint8Array(data)))
  );
  peer.ws.ping("from server");
  assert.equal(decoder.decode(await pong), "from server");
  client.close({ closeCode: 1000 });
  await client.closed;
  await server.close();
});

test("WebSocketStream closes cleanly with a code and reason from the client", async () => {
  const server = await wsServer();
  const client = new WebSocketStream(server.url);
  const peer = await server.next();
  const { readable } = await client.opened;
  client.close({ closeCode: 3001, reason: "client says bye" });
  assert.deepEqual(await peer.closed, {
    code: 3001,
    reason: "client says bye",
  });
  // ws echoes the reason as well as the code.
  assert.deepEqual(await client.closed, {
    closeCode: 3001,
    reason: "client says bye",
  });
  assert.deepEqual(await readable.getReader().read(), {
    done: true,
    value: undefined,
  });
  await server.close();
});

test("WebSocketStream closes cleanly with ws's code and reason", async () => {
  const server = await wsServer();
  const client = new WebSocketStream(server.url);
  const peer = await server.next();
  const { readable, writable } = await client.opened;
  peer.ws.send("last words");
  peer.ws.close(4002, "server says bye");
  const reader = readable.getReader();
  assert.deepEqual(await reader.read(), { done: false, value: "last words" });
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
  assert.deepEqual(await client.closed, {
    closeCode: 4002,
    reason: "server says bye",
  });
  // We echo the code, not the reason.
  assert.deepEqual(await peer.closed, { code: 4002, reason: "" });
  await assert.rejects(writable.getWriter().write("too late"), TypeError);
  await server.close();
});

test("WebSocketStream rejects closed with 1006 when ws terminates the connection", async () => {
  const server = await wsServer();
  const client = new WebSocketStream(server.url);
  const peer = await server.next();
  const { readable } = await client.opened;
  peer.ws.terminate();
  await assert.rejects(client.closed, (error) => {
    assert.ok(error instanceof WebSocketError);
    assert.equal(error.closeCode, 1006);
    assert.equal(error.code, "connection_lost");
    return true;
  });
  await assert.rejects(readable.getReader().read(), WebSocketError);
  await server.close();
});

test("WebSocketStream negotiates a subprotocol with ws", async () => {
  const server = await wsServer({
    handleProtocols: (protocols: Set<string>) =>
      protocols.has("b") ? "b" : false,
  });
  const client = new WebSocketStream(server.url, { protocols: ["a", "b"] });
  const peer = await server.next();
  const { protocol } = await client.opened;
  assert.equal(protocol, "b");
  assert.equal(peer.ws.protocol, "b");
  assert.equal(peer.headers["sec-websocket-protocol"], "a, b");
  client.close({ closeCode: 1000 });
  await client.closed;
  await server.close();
});

test("WebSocketStream fails the connection when ws chooses a subprotocol it did not offer", async () => {
  const server = await wsServer({ handleProtocols: () => "c" });
  const client = new WebSocketStream(server.url, { protocols: "a" });
  const peer = await server.next();
  await assert.rejects(client.opened, (error) => {
    assert.ok(error instanceof HandshakeError);
    assert.equal(error.code, "unexpected_protocol");
    assert.equal(error.status, 101);
    return true;
  });
  await assert.rejects(client.closed, HandshakeError);
  // The socket is dropped: ws sees the connection end without a Close.
  assert.equal((await peer.closed).code, 1006);
  await server.close();
});

test("WebSocketStream rejects opened with the status of a refused handshake", async () => {
  const server = await wsServer({ verifyClient: () => false });
  const client = new WebSocketStream(server.url);
  await assert.rejects(client.opened, (error) => {
    assert.ok(error instanceof HandshakeError);
    assert.equal(error.code, "unexpected_status");
    assert.equal(error.status, 401);
    return true;
  });
  await assert.rejects(client.closed, HandshakeError);
  await server.close();
});

test("WebSocketStream sends its headers, origin and URL credentials", async () => {
  const server = await wsServer();
  const client = new WebSocketStream(
    `http://user:p%40ss@127.0.0.1:${server.port}/chat?room=1#ignored`,
    { headers: { "x-token": "abc" }, origin: "https://example.com" },
  );
  assert.equal(client.url, `ws://127.0.0.1:${server.port}/chat?room=1`);
  const peer = await server.next();
  await client.opened;
  assert.equal(peer.headers["x-token"], "abc");
  assert.equal(peer.headers.origin, "https://example.com");
  assert.equal(peer.headers.host, `127.0.0.1:${server.port}`);
  assert.equal(
    peer.headers.authorization,
    `Basic ${btoa("user:p@ss")}`,
  );
  client.close({ closeCode: 1000 });
  await client.closed;
  await server.close();
});

test("WebSocketStream refuses bad arguments before connecting", () => {
  assert.throws(() => new WebSocketStream("ftp://127.0.0.1/"), TypeError);
  assert.throws(() => new WebSocketStream("not a url"), TypeError);
  assert.throws(
    () => new WebSocketStream("ws://127.0.0.1/", { protocols: ["a", "a"] }),
    TypeError,
  );
  assert.throws(
    () => new WebSocketStream("ws://127.0.0.1/", { headers: { host: "x" } }),
    TypeError,
  );
  assert.throws(
    () => new WebSocketStream("ws://127.0.0.1/", { handshakeTimeout: -1 }),
    RangeError,
  );
  assert.throws(
    () => new WebSocketStream("ws://127.0.0.1/", { closeTimeout: -1 }),
    RangeError,
  );
});

test("WebSocketStream reads a 101 that arrives in pieces, with frames right behind it", async () => {
  const server = await rawServer(async (socket, request) => {
    socket.setNoDelay(true);
    const head = encoder.encode(accept(request));
    socket.write(head.subarray(0, 10));
    await sleep(20);
    socket.write(head.subarray(10, 40));
    await sleep(20);
    // The rest of the head, a text frame "hi" and a binary frame [1, 2, 3]
    // in one chunk.
    socket.write(
      new Uint8Array([
        ...head.subarray(40),
        0x81,
        0x02,
        0x68,
        0x69,
        0x82,
        0x03,
        1,
        2,
        3,
      ]),
    );
  });
  const client = new WebSocketStream(server.url);
  const reader = (await client.opened).readable.getReader();
  assert.deepEqual(await reader.read(), { done: false, value: "hi" });
  assert.deepEqual(await reader.read(), {
    done: false,
    value: new Uint8Array([1, 2, 3]),
  });
  // A Close (1000) from the server, then the end of the transport.
  server.sockets[0].write(new Uint8Array([0x88, 0x02, 0x03, 0xe8]));
  server.sockets[0].end();
  assert.deepEqual(await client.closed, { closeCode: 1000, reason: "" });
  await server.close();
});

test("WebSocketStream fails on a wrong Sec-WebSocket-Accept or an extension it did not offer", async () => {
  const server = await rawServer((socket, request) => {
    if (server.sockets.length === 1) {
      socket.write(
        accept(request).replace(
          /Accept: \S+/,
          "Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
      );
    } else {
      socket.write(
        accept(request, "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
      );
    }
  });
  const first = new WebSocketStream(server.url);
  await assert.rejects(first.opened, {
    name: "HandshakeError",
    code: "invalid_accept",
    status: 101,
  });
  await server.socketClosed(0);
  const second = new WebSocketStream(server.url);
  await assert.rejects(second.opened, {
    name: "HandshakeError",
    code: "unexpected_extension",
    status: 101,
  });
  await server.socketClosed(1);
  await server.close();
});

test("WebSocketStream fails on a response head that is not HTTP or too large", async () => {
  const server = await rawServer((socket) => {
    if (server.sockets.length === 1) {
      socket.write("SSH-2.0-OpenSSH_9.6\r\n\r\n");
    } else {
      socket.write(
        `HTTP/1.1 101 Switching Protocols\r\nX-Big: ${
          "a".repeat(20000)
        }\r\n\r\n`,
      );
    }
  });
  const first = new WebSocketStream(server.url);
  await assert.rejects(first.opened, (error) => {
    assert.ok(error instanceof HandshakeError);
    assert.equal(error.code, "invalid_response");
    assert.equal(error.status, 0);
    assert.match(error.message, /not valid HTTP/);
    return true;
  });
  await server.socketClosed(0);
  const second = new WebSocketStream(server.url);
  await assert.rejects(second.opened, (error) => {
    assert.ok(error instanceof HandshakeError);
    assert.match(error.message, /larger than 16384 bytes/);
    return true;
  });
  await server.socketClosed(1);
  await server.close();
});

test("WebSocketStream fails when the server hangs up before answering", async () => {
  const server = await rawServer((socket) => socket.end());
  const client = new WebSocketStream(server.url);
  await assert.rejects(client.opened, (error) => {
    assert.ok(error instanceof WebSocketError);
    assert.equal(error.closeCode, 1006);
    assert.match(error.message, /closed the connection before answering/);
    return true;
  });
  await assert.rejects(client.closed, WebSocketError);
  await server.close();
});

test("WebSocketStream drops a server that does not answer within handshakeTimeout", async () => {
  const server = await rawServer(() => {});
  const started = Date.now();
  const client = new WebSocketStream(server.url, { handshakeTimeout: 200 });
  await assert.rejects(client.opened, (error) => {
    assert.ok(error instanceof WebSocketError);
    assert.equal(error.closeCode, 1006);
    assert.equal(error.code, "handshake_timeout");
    assert.match(error.message, /within 200 ms/);
    return true;
  });
  assert.ok(Date.now() - started >= 190, "the timeout fired early");
  await assert.rejects(client.closed, WebSocketError);
  await server.socketClosed(0);
  await server.close();
});

test("WebSocketStream fails with a clear error when it cannot connect", async () => {
  const port = await closedPort();
  const refused = new WebSocketStream(`ws://127.0.0.1:${port}/`);
  await assert.rejects(refused.opened, (error) => {
    assert.ok(error instanceof WebSocketError);
    assert.equal(error.closeCode, 1006);
    assert.match(
      error.message,
      new RegExp(
        `^Cannot open WebSocket: cannot connect to 127\\.0\\.0\\.1:${port}: `,
      ),
    );
    assert.equal(error.code, "connect_failed");
    assert.equal((error.cause as { code?: string }).code, "ECONNREFUSED");
    return true;
  });
  await assert.rejects(refused.closed, WebSocketError);

  // .invalid never resolves (RFC 6761 §6.4).
  const unknown = new WebSocketStream("ws://nowhere.invalid/");
  await assert.rejects(unknown.opened, (error) => {
    assert.ok(error instanceof WebSocketError);
    assert.equal(error.closeCode, 1006);
    assert.equal(error.code, "connect_failed");
    assert.match(error.message, /cannot connect to nowhere\.invalid: /);
    return true;
  });
});

test("WebSocketStream: aborting the signal before open fails the connection with its reason", async () => {
  const server = await rawServer(() => {});
  const controller = new AbortController();
  const client = new WebSocketStream(server.url, {
    signal: controller.signal,
  });
  while (server.sockets.length === 0) await sleep(5);
  const reason = new Error("changed my mind");
  controller.abort(reason);
  await assert.rejects(client.opened, (error) => error === reason);
  await assert.rejects(client.closed, (error) => error === reason);
  await server.socketClosed(0);

  // An aborted signal: no connection at all.
  const aborted = new WebSocketStream(server.url, {
    signal: AbortSignal.abort(reason),
  });
  await assert.rejects(aborted.opened, (error) => error === reason);
  await assert.rejects(aborted.closed, (error) => error === reason);
  await sleep(50);
  assert.equal(server.sockets.length, 1);
  await server.close();
});

test("WebSocketStream: aborting the signal once open does nothing (WHATWG)", async () => {
  const server = await wsServer();
  const controller = new AbortController();
  const client = new WebSocketStream(server.url, {
    signal: controller.signal,
  });
  const peer = await server.next();
  peer.ws.on("message", (data: Uint8Array) => peer.ws.send(data));
  const { readable, writable } = await client.opened;
  controller.abort();
  const writer = writable.getWriter();
  await writer.write(new Uint8Array([4, 5]));
  assert.deepEqual(await readable.getReader().read(), {
    done: false,
    value: new Uint8Array([4, 5]),
  });
  client.close({ closeCode: 1000, reason: "still fine" });
  assert.deepEqual(await peer.closed, { code: 1000, reason: "still fine" });
  await client.closed;
  await server.close();
});

test("WebSocketStream: close() before open drops the connection", async () => {
  const server = await rawServer(() => {});
  const client = new WebSocketStream(server.url);
  while (server.sockets.length === 0) await sleep(5);
  assert.throws(() => client.close({ closeCode: 1001 }), RangeError);
  client.close({ closeCode: 1000 });
  await assert.rejects(client.opened, (error) => {
    assert.ok(error instanceof WebSocketError);
    assert.equal(error.closeCode, 1006);
    assert.match(error.message, /closed before it opened/);
    return true;
  });
  await assert.rejects(client.closed, WebSocketError);
  await server.socketClosed(0);
  await server.close();
});

// wss:// needs a certificate, made here by the openssl command.
function makeCertificate(): { key: string; cert: string } | null {
  const dir = mkdtempSync(join(tmpdir(), "client-test-"));
  try {
    execFileSync("openssl", [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      join(dir, "key.pem"),
      "-out",
      join(dir, "cert.pem"),
      "-days",
      "1",
      "-subj",
      "/CN=localhost",
      "-addext",
      "subjectAltName=DNS:localhost,IP:127.0.0.1",
    ], { stdio: "ignore" });
    return {
      key: readFileSync(join(dir, "key.pem"), "utf8"),
      cert: readFileSync(join(dir, "cert.pem"), "utf8"),
    };
  } catch {
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const certificate = makeCertificate();
const noOpenssl = certificate === null &&
  "the openssl command is not available to make a test certificate";

/** node:https with ws on it, on 127.0.0.1 and a free port. */
async function wssServer() {
  const { key, cert } = certificate!;
  const https = createHttpsServer({ key, cert, ALPNProtocols: ["http/1.1"] });
  const tlsSockets: TLSSocket[] = [];
  https.on("secureConnection", (socket: TLSSocket) => tlsSockets.push(socket));
  const wss = new WS.WebSocketServer({ server: https });
  const peers: WsPeer[] = [];
  wss.on(
    "connection",
    (ws: WsSocket, request: WsPeer) => peers.push(wsPeer(ws, request)),
  );
  await new Promise<void>((resolve) => https.listen(0, "127.0.0.1", resolve));
  const { port } = https.address() as { port: number };
  return {
    port,
    tlsSockets,
    peers,
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
      https.closeAllConnections();
      await new Promise((resolve) => https.close(resolve));
    },
  };
}

test("WebSocketStream connects over wss:// with SNI and a custom CA", {
  skip: noOpenssl,
}, async () => {
  const server = await wssServer();
  const client = new WebSocketStream(`wss://localhost:${server.port}/secure`, {
    tls: { ca: certificate!.cert },
  });
  const { readable, writable } = await client.opened;
  const peer = server.peers[0];
  assert.equal(server.tlsSockets[0].servername, "localhost");
  peer.ws.on(
    "message",
    (data: Uint8Array, binary: boolean) => peer.ws.send(data, { binary }),
  );
  const writer = writable.getWriter();
  const reader = readable.getReader();
  const big = payload(1024 * 1024, 3);
  await writer.write("over TLS");
  await writer.write(big);
  assert.deepEqual(await reader.read(), { done: false, value: "over TLS" });
  assertBytes((await reader.read()).value, big, "1 MiB over TLS");
  client.close({ closeCode: 3003, reason: "tls bye" });
  assert.deepEqual(await peer.closed, { code: 3003, reason: "tls bye" });
  assert.deepEqual(await client.closed, { closeCode: 3003, reason: "tls bye" });
  await server.close();
});

test("WebSocketStream offers ALPN http/1.1 and SNI over wss://", {
  skip: noOpenssl,
}, async () => {
  // node:tls rather than node:https, as Bun's https server does not report
  // the ALPN protocol.
  const server = await rawServer((socket, request) => {
    const tlsSocket = socket as TLSSocket;
    const seen = `${tlsSocket.alpnProtocol} ${tlsSocket.servername}`;
    socket.write(accept(request));
    // A text frame saying what the server saw, then a Close (1000).
    socket.write(new Uint8Array([0x81, seen.length, ...encoder.encode(seen)]));
    socket.end(new Uint8Array([0x88, 0x02, 0x03, 0xe8]));
  }, certificate!);
  const port = new URL(server.url).port;
  const client = new WebSocketStream(`wss://localhost:${port}/`, {
    tls: { ca: certificate!.cert },
  });
  const reader = (await client.opened).readable.getReader();
  assert.deepEqual(await reader.read(), {
    done: false,
    value: "http/1.1 localhost",
  });
  assert.deepEqual(await client.closed, { closeCode: 1000, reason: "" });
  await server.close();
});

test(
  "WebSocketStream reads https: as wss:, and sends no SNI for an IP address",
  {
    skip: noOpenssl,
  },
  async () => {
    const server = await wssServer();
    const client = new WebSocketStream(`https://127.0.0.1:${server.port}/`, {
      tls: { ca: encoder.encode(certificate!.cert) },
    });
    assert.equal(client.url, `wss://127.0.0.1:${server.port}/`);
    await client.opened;
    // No SNI: Node says false, Deno null.
    assert.ok(
      [false, null].includes(server.tlsSockets[0].servername as never),
      `servername ${server.tlsSockets[0].servername}`,
    );
    client.close({ closeCode: 1000 });
    assert.deepEqual(await client.closed, { closeCode: 1000, reason: "" });
    await server.close();
  },
);

test(
  "WebSocketStream refuses a wss:// server whose certificate it does not trust",
  {
    skip: noOpenssl,
  },
  async () => {
    const server = await wssServer();
    const client = new WebSocketStream(`wss://localhost:${server.port}/`);
    await assert.rejects(client.opened, (error) => {
      assert.ok(error instanceof WebSocketError);
      assert.equal(error.closeCode, 1006);
      assert.equal(error.code, "tls_failed");
      assert.match(error.message, /TLS handshake with localhost:\d+ failed/);
      return true;
    });
    await assert.rejects(client.closed, WebSocketError);
    assert.equal(server.peers.length, 0);

    // Unless told not to check.
    const careless = new WebSocketStream(`wss://localhost:${server.port}/`, {
      tls: { rejectUnauthorized: false },
    });
    await careless.opened;
    careless.close({ closeCode: 1000 });
    await careless.closed;
    await server.close();
  },
);

// deno-lint-ignore no-explicit-any
const runtime = globalThis as any;
const isDeno = typeof runtime.Deno?.serve === "function";
const isBun = typeof runtime.Bun?.serve === "function";

/** Messages that the native servers echo. */
const nativeMessages = [
  "",
  text(125),
  text(64 * 1024),
  new Uint8Array(0),
  payload(125, 1),
  payload(1024 * 1024, 2),
];

async function echoAgainst(url: string) {
  const client = new WebSocketStream(url);
  const { readable, writable } = await client.opened;
  const writer = writable.getWriter();
  const reader = readable.getReader();
  for (const [i, message] of nativeMessages.entries()) {
    await writer.write(message);
    const { value } = await reader.read();
    if (typeof message === "string") assert.ok(value === message, `echo ${i}`);
    else assertBytes(value, message, `echo ${i}`);
  }
  await client.ping("native");
  return client;
}

test("WebSocketStream talks to Deno.serve's WebSocket", {
  skip: !isDeno && "not running on Deno",
}, async () => {
  const Deno = runtime.Deno;
  let serverClose!: (info: { code: number; reason: string }) => void;
  const serverClosed = new Promise<{ code: number; reason: string }>((
    resolve,
  ) => (serverClose = resolve));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request: Request) => {
      const { socket, response } = Deno.upgradeWebSocket(request);
      socket.binaryType = "arraybuffer";
      socket.onmessage = (event: MessageEvent) =>
        socket.send(
          typeof event.data === "string"
            ? event.data
            : new Uint8Array(event.data),
        );
      socket.onclose = (event: CloseEvent) =>
        serverClose({ code: event.code, reason: event.reason });
      return response;
    },
  );
  const client = await echoAgainst(`ws://127.0.0.1:${server.addr.port}/`);
  client.close({ closeCode: 3005, reason: "deno bye" });
  assert.deepEqual(await serverClosed, { code: 3005, reason: "deno bye" });
  assert.equal((await client.closed).closeCode, 3005);
  await server.shutdown();
});

test("WebSocketStream talks to Bun.serve's WebSocket", {
  skip: !isBun && "not running on Bun",
}, async () => {
  let serverClose!: (info: { code: number; reason: string }) => void;
  const serverClosed = new Promise<{ code: number; reason: string }>((
    resolve,
  ) => (serverClose = resolve));
  const server = runtime.Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(request: Request, bun: { upgrade(request: Request): boolean }) {
      if (bun.upgrade(request)) return undefined;
      return new Response("not a WebSocket", { status: 400 });
    },
    websocket: {
      message(ws: { send(data: string | Uint8Array): void }, data: unknown) {
        ws.send(data as string | Uint8Array);
      },
      close(_: unknown, code: number, reason: string) {
        serverClose({ code, reason });
      },
    },
  });
  const client = await echoAgainst(`ws://127.0.0.1:${server.port}/`);
  client.close({ closeCode: 3006, reason: "bun bye" });
  assert.deepEqual(await serverClosed, { code: 3006, reason: "bun bye" });
  assert.equal((await client.closed).closeCode, 3006);
  server.stop(true);
});
