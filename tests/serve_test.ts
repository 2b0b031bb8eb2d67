// serve(): a WebSocket server in one call, with bounded handshakes and a
// heartbeat by default, on whichever runtime runs this file.

import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { WebSocketStream } from "../src/client.ts";
import { WebSocketError } from "../src/errors.ts";
import { serve } from "../src/serve.ts";

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const HEAD = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
  `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\n` +
  "Sec-WebSocket-Version: 13\r\n\r\n";

/** A raw TCP peer: what it received, and when the server hung up. */
async function rawPeer(port: number) {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => {});
  await new Promise((resolve) => socket.once("connect", resolve));
  let received = "";
  socket.on("data", (chunk) => (received += chunk.toString("latin1")));
  const started = performance.now();
  const closed = new Promise<number>((resolve) =>
    socket.once("close", () => resolve(performance.now() - started))
  );
  return { socket, closed, received: () => received };
}

test("serve answers the handshake and plain requests", async () => {
  const server = serve({
    request: (_request, response) => response.end("a page"),
  }, async (ws) => {
    const { readable, writable } = await ws.opened;
    await readable.pipeTo(writable);
  });
  const { url, hostname } = await server.listening;
  assert.equal(hostname, "127.0.0.1");
  const page = await fetch(url.replace("ws:", "http:"));
  assert.equal(await page.text(), "a page");

  const client = new WebSocketStream(url);
  const { readable, writable } = await client.opened;
  const writer = writable.getWriter();
  await writer.write("ping?");
  assert.equal((await readable.getReader().read()).value, "ping?");
  await server.close();
  // A server that shuts down says so: 1001, going away.
  assert.deepEqual(await client.closed, { closeCode: 1001, reason: "" });
});

test("serve answers plain requests with 426 unless given a handler", async () => {
  const server = serve({}, () => {});
  const { url } = await server.listening;
  const response = await fetch(url.replace("ws:", "http:"));
  assert.equal(response.status, 426);
  await response.body?.cancel();
  await server.close();
});

test("serve drops a peer that never finishes its request head, at handshakeTimeout", async () => {
  const server = serve({ handshakeTimeout: 300 }, () => {});
  const { port } = await server.listening;
  const peer = await rawPeer(port);
  peer.socket.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  const trickle = setInterval(() => peer.socket.write("X-Slow: 1\r\n"), 50);
  const after = await peer.closed;
  clearInterval(trickle);
  // The head's bound is checked every 300 ms here (every second at most).
  assert.ok(after < 2000, `dropped after ${after} ms`);
  await server.close();
});

test("serve drops a peer that connects and sends nothing, at handshakeTimeout", async () => {
  const server = serve({ handshakeTimeout: 300 }, () => {});
  const { port } = await server.listening;
  const peer = await rawPeer(port);
  const after = await peer.closed;
  assert.ok(after < 2000, `dropped after ${after} ms`);
  await server.close();
});

test("serve refuses with 503 a handshake whose accept hook takes longer than handshakeTimeout", async () => {
  let opened: Promise<unknown> | undefined;
  const server = serve({
    handshakeTimeout: 200,
    accept: () => new Promise<boolean>(() => {}),
  }, (ws) => {
    opened = ws.opened;
    ws.closed.catch(() => {});
  });
  const { port } = await server.listening;
  const peer = await rawPeer(port);
  peer.socket.write(HEAD);
  const after = await peer.closed;
  assert.match(peer.received(), /^HTTP\/1\.1 503 /);
  assert.ok(after < 2000, `dropped after ${after} ms`);
  await assert.rejects(
    opened!,
    (error: { code?: string }) => error.code === "handshake_timeout",
  );
  await server.close();
});

test("serve's heartbeat drops a peer that goes silent in the middle of a frame", async () => {
  let closed: Promise<unknown> | undefined;
  const server = serve({ heartbeat: { interval: 100, timeout: 100 } }, (ws) => {
    closed = ws.closed;
    closed.catch(() => {});
  });
  const { port } = await server.listening;
  const peer = await rawPeer(port);
  peer.socket.write(HEAD);
  while (!peer.received().includes("\r\n\r\n")) {
    await new Promise((r) => setTimeout(r, 5));
  }
  // A masked binary frame that says 1000 bytes and brings 10 of them.
  peer.socket.write(
    new Uint8Array([0x82, 0xfe, 0x03, 0xe8, 1, 2, 3, 4, ...new Array(10)]),
  );
  const after = await peer.closed;
  assert.ok(after < 3000, `dropped after ${after} ms`);
  await assert.rejects(
    closed!,
    (error) =>
      error instanceof WebSocketError && error.code === "heartbeat_timeout",
  );
  await server.close();
});

test("serve's listening rejects when the port is taken", async () => {
  const first = serve({}, () => {});
  const { port } = await first.listening;
  const second = serve({ port }, () => {});
  await assert.rejects(second.listening);
  await first.close();
});

test("serve survives handlers that reject: a refused handshake, a peer that breaks the protocol", async () => {
  const server = serve({}, async (ws) => {
    // As the README's example does: no catch of its own.
    const { readable, writable } = await ws.opened;
    await readable.pipeTo(writable);
  });
  const { port, url } = await server.listening;
  // Refused: another site's page (403), so opened rejects.
  const refused = new WebSocketStream(url, { origin: "http://evil.example" });
  await assert.rejects(refused.opened);
  await refused.closed.catch(() => {});
  // Broken: a reserved opcode, so the pipe rejects.
  const peer = await rawPeer(port);
  peer.socket.write(HEAD);
  while (!peer.received().includes("\r\n\r\n")) {
    await new Promise((r) => setTimeout(r, 5));
  }
  peer.socket.write(new Uint8Array([0x83, 0x80, 0, 0, 0, 0]));
  await peer.closed;
  // Unhandled rejections would fail this test; give them a turn to surface.
  await new Promise((r) => setTimeout(r, 50));
  await server.close();
});

test("serve's close() also closes a connection whose handshake was under way", async () => {
  const server = serve({}, () => {});
  const { port } = await server.listening;
  const opened = async (peer: Awaited<ReturnType<typeof rawPeer>>) => {
    while (!peer.received().includes("\r\n\r\n")) {
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const answer = async (peer: Awaited<ReturnType<typeof rawPeer>>) => {
    // The Close that comes after the 101: 1001, going away.
    while (!peer.received().includes("\x88\x02\x03\xe9")) {
      await new Promise((r) => setTimeout(r, 5));
    }
    peer.socket.write(new Uint8Array([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe9]));
  };
  // One connection open, which takes its time to answer the Close.
  const first = await rawPeer(port);
  first.socket.write(HEAD);
  await opened(first);
  // Another with half a request head when close() begins.
  const second = await rawPeer(port);
  second.socket.write(HEAD.slice(0, 40));
  await new Promise((r) => setTimeout(r, 20));
  const closing = server.close();
  // Its handshake ends while close() waits for the first.
  second.socket.write(HEAD.slice(40));
  await opened(second);
  assert.match(second.received(), /^HTTP\/1\.1 101 /);
  await answer(second);
  await new Promise((r) => setTimeout(r, 50));
  await answer(first);
  await closing;
});

test("serve with handshakeTimeout 0 bounds nothing, and takes a slow accept hook", async () => {
  const server = serve({
    handshakeTimeout: 0,
    accept: () => new Promise<boolean>((r) => setTimeout(() => r(true), 50)),
  }, () => {});
  const { url } = await server.listening;
  const client = new WebSocketStream(url);
  await client.opened;
  client.close({ closeCode: 1000 });
  await client.closed;
  await server.close();
  // Above node:http's own requestTimeout: still a server.
  const long = serve({ handshakeTimeout: 600_000 }, () => {});
  await long.listening;
  await long.close();
});

test(
  "serve({ reusePort }) lets two servers listen on one port",
  // Bun's node:http has no SO_REUSEPORT (its Bun.serve has).
  { skip: "Bun" in globalThis ? "Bun's node:http has no reusePort" : false },
  async () => {
    const first = serve({ port: 0, reusePort: true }, () => {});
    const { port } = await first.listening;
    const second = serve({ port, reusePort: true }, () => {});
    assert.equal((await second.listening).port, port);
    // Without it, the port is taken.
    const third = serve({ port }, () => {});
    await assert.rejects(third.listening);
    await Promise.all([first.close(), second.close(), third.close()]);
  },
);
