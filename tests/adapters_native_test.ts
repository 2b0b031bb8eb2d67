// The Deno.serve and Bun.serve adapters, each on its own runtime, against
// real clients: the runtime's own WebSocket, this library's WebSocketStream
// (the full codec) and raw node:net sockets. Node has neither server, so
// there these tests are skipped; the bridge's own tests, with a fake native
// socket, run everywhere.

import assert from "node:assert/strict";
import { connect, type Socket } from "node:net";
import { test } from "node:test";
import {
  NativeBridge,
  type NativeDriver,
  type WebSocketEndpoint,
} from "../src/adapters/_native.ts";
import {
  type BunAdapterOptions,
  type BunServer,
  createBunAdapter,
} from "../src/adapters/bun.ts";
import { type DenoUpgradeOptions, upgrade } from "../src/adapters/deno.ts";
import { Broadcast } from "../src/broadcast.ts";
import { WebSocketStream } from "../src/client.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { HandshakeError } from "../src/handshake.ts";
import { payload } from "./_helpers.ts";

// The codec's connection has the shape the bridged sockets have.
export const codecIsEndpoint = (
  connection: WebSocketConnection,
): WebSocketEndpoint => connection;

// deno-lint-ignore no-explicit-any
const runtime = globalThis as any;
const isDeno = typeof runtime.Deno?.serve === "function";
const isBun = typeof runtime.Bun?.serve === "function";

type ServeOptions = DenoUpgradeOptions & BunAdapterOptions;

interface Served {
  url: string;
  port: number;
  /** The server's sockets, in the order the requests came. */
  socket(index: number): Promise<WebSocketEndpoint>;
  close(): Promise<void>;
}

type Handle = (socket: WebSocketEndpoint) => Promise<unknown>;

function collector() {
  const sockets: WebSocketEndpoint[] = [];
  let notify = () => {};
  return {
    add(socket: WebSocketEndpoint, handle: Handle) {
      sockets.push(socket);
      notify();
      handle(socket).catch(() => {});
    },
    async socket(index: number) {
      while (sockets.length <= index) {
        await new Promise<void>((resolve) => (notify = resolve));
      }
      return sockets[index];
    },
  };
}

function serveDeno(
  handle: Handle,
  options: ServeOptions = {},
): Promise<Served> {
  const served = collector();
  const server = runtime.Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request: Request) => {
      const { response, socket } = await upgrade(request, options);
      served.add(socket, handle);
      return response;
    },
  );
  const port = server.addr.port;
  return Promise.resolve({
    url: `ws://127.0.0.1:${port}/path?q=1`,
    port,
    socket: served.socket,
    close: () => server.shutdown(),
  });
}

function serveBun(handle: Handle, options: ServeOptions = {}): Promise<Served> {
  const served = collector();
  const { websocket, upgrade } = createBunAdapter(options);
  const server = runtime.Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    websocket,
    async fetch(request: Request, bun: BunServer) {
      const { response, socket } = await upgrade(request, bun);
      served.add(socket, handle);
      return response;
    },
  });
  const port = server.port;
  return Promise.resolve({
    url: `ws://127.0.0.1:${port}/path?q=1`,
    port,
    socket: served.socket,
    close: () => server.stop(true),
  });
}

const servers = [
  {
    name: "deno upgrade",
    runtime: "deno" as const,
    skip: !isDeno &&
      "Deno.serve exists only on Deno (on Node, the node:http adapter's tests cover serving)",
    serve: serveDeno,
  },
  {
    name: "bun createBunAdapter",
    runtime: "bun" as const,
    skip: !isBun &&
      "Bun.serve exists only on Bun (on Node, the node:http adapter's tests cover serving)",
    serve: serveBun,
  },
];

async function echo(socket: WebSocketEndpoint) {
  const { readable, writable } = await socket.opened;
  await readable.pipeTo(writable);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Text of exactly `size` bytes of UTF-8, mostly two-byte characters. */
function text(size: number): string {
  return "é".repeat(size >>> 1) + (size % 2 === 1 ? "a" : "");
}

const sizes = [0, 125, 64 * 1024, 1024 * 1024];

function assertBytes(actual: unknown, expected: Uint8Array, what: string) {
  assert.ok(actual instanceof Uint8Array, `${what}: not bytes`);
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    if (actual[i] !== expected[i]) assert.fail(`${what}: byte ${i} differs`);
  }
}

/** The runtime's own WebSocket client, collecting what it receives. */
function nativeClient(url: string, protocols?: string[]) {
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  const messages: (string | Uint8Array)[] = [];
  let notify = () => {};
  ws.onmessage = (event) => {
    messages.push(
      typeof event.data === "string" ? event.data : new Uint8Array(event.data),
    );
    notify();
  };
  const opened = new Promise<void>((resolve, reject) => {
    ws.onopen = () => resolve();
    ws.onerror = () => reject(new Error("the WebSocket failed"));
  });
  opened.catch(() => {});
  const closed = new Promise<CloseEvent>((resolve) => (ws.onclose = resolve));
  return {
    ws,
    messages,
    opened,
    closed,
    async received(count: number) {
      while (messages.length < count) {
        await new Promise<void>((resolve) => (notify = resolve));
      }
    },
  };
}

const KEY_HEADERS = "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";

/**
 * A raw TCP client that sends a valid handshake and returns once the
 * response head has arrived, paused, with the bytes after the head.
 */
function rawUpgrade(
  port: number,
  host = `Host: 127.0.0.1:${port}\r\n`,
): Promise<{ socket: Socket; status: string; rest: Uint8Array }> {
  const socket = connect(port, "127.0.0.1");
  socket.write(`GET / HTTP/1.1\r\n${host}${KEY_HEADERS}\r\n`);
  return new Promise((resolve, reject) => {
    let received = new Uint8Array(0);
    const onData = (chunk: Uint8Array) => {
      const all = new Uint8Array(received.length + chunk.length);
      all.set(received);
      all.set(chunk, received.length);
      received = all;
      const text = new TextDecoder("latin1").decode(received);
      const end = text.indexOf("\r\n\r\n");
      if (end === -1) return;
      socket.off("data", onData);
      socket.off("error", reject);
      socket.pause();
      resolve({
        socket,
        status: text.slice(0, text.indexOf("\r\n")),
        rest: received.subarray(end + 4),
      });
    };
    socket.on("data", onData);
    socket.on("error", reject);
  });
}

for (const server of servers) {
  const { name, skip, serve } = server;

  test(
    `${name} echoes the runtime WebSocket's text and binary messages of 0 B to 1 MiB, byte for byte`,
    {
      skip,
    },
    async () => {
      const received: unknown[] = [];
      const served = await serve(async (socket) => {
        const { readable, writable } = await socket.opened;
        await readable.pipeThrough(
          new TransformStream({
            transform(message, controller) {
              received.push(message);
              controller.enqueue(message);
            },
          }),
        ).pipeTo(writable);
      }, { origins: "*" });
      const client = nativeClient(served.url);
      await client.opened;
      const sent: (string | Uint8Array)[] = [];
      for (const size of sizes) {
        sent.push(payload(size, size + 1), text(size));
      }
      for (const message of sent) client.ws.send(message);
      await client.received(sent.length);
      for (const [i, message] of sent.entries()) {
        if (typeof message === "string") {
          assert.ok(client.messages[i] === message, `message ${i} differs`);
        } else {
          assertBytes(client.messages[i], message, `message ${i}`);
          // Plain Uint8Arrays on the server, never Buffers.
          assert.equal(
            Object.getPrototypeOf(received[i]),
            Uint8Array.prototype,
            `message ${i} on the server`,
          );
        }
      }

      const socket = await served.socket(0);
      assert.equal(socket.url, served.url.replace("ws:", "http:"));
      client.ws.close(4000, "done");
      assert.equal((await client.closed).code, 4000);
      assert.deepEqual(await socket.closed, {
        closeCode: 4000,
        reason: "done",
      });
      await served.close();
    },
  );

  test(
    `${name} refuses a handshake without a Host, or with an empty one, with 400 (RFC 9112 §3.2)`,
    { skip },
    async () => {
      // The runtime makes such a request's URL from its own address.
      const served = await serve(() => Promise.resolve(), { origins: "*" });
      for (const host of ["", "Host:\r\n"]) {
        const { socket, status } = await rawUpgrade(served.port, host);
        assert.match(status, /^HTTP\/1\.1 400 /, JSON.stringify(host));
        socket.destroy();
      }
      await served.close();
    },
  );

  test(
    `${name} talks to WebSocketStream, which the runtime answers pings for`,
    {
      skip,
    },
    async () => {
      const served = await serve(echo);
      const client = new WebSocketStream(served.url);
      const { readable, writable } = await client.opened;
      const writer = writable.getWriter();
      const reader = readable.getReader();
      for (const size of sizes) {
        const bytes = payload(size, size + 7);
        await writer.write(bytes);
        assertBytes((await reader.read()).value, bytes, `${size} B binary`);
        const message = text(size);
        await writer.write(message);
        assert.ok((await reader.read()).value === message, `${size} B text`);
      }
      await client.ping("are you there");
      client.close({ closeCode: 3005, reason: "client bye" });
      assert.deepEqual(await (await served.socket(0)).closed, {
        closeCode: 3005,
        reason: "client bye",
      });
      assert.equal((await client.closed).closeCode, 3005);
      await served.close();
    },
  );

  test(
    `${name}: the server closes with a code and reason, and then refuses to send`,
    {
      skip,
    },
    async () => {
      const served = await serve(async (socket) => {
        const { writable } = await socket.opened;
        const writer = writable.getWriter();
        await writer.write("last words");
        socket.close({ closeCode: 4001, reason: "server bye" });
        // Closing twice is harmless; sending after closing is a mistake.
        socket.close({ closeCode: 4002 });
        await assert.rejects(writer.write("too late"), TypeError);
      });
      const client = new WebSocketStream(served.url);
      const { readable } = await client.opened;
      const reader = readable.getReader();
      assert.equal((await reader.read()).value, "last words");
      assert.deepEqual(await client.closed, {
        closeCode: 4001,
        reason: "server bye",
      });
      assert.equal((await reader.read()).done, true);
      const socket = await served.socket(0);
      // Deno reports the peer's answer (WebSocketStream echoes the code
      // alone); Bun ends the connection at once and reports what it sent.
      assert.deepEqual(
        await socket.closed,
        server.runtime === "deno"
          ? { closeCode: 4001, reason: "" }
          : { closeCode: 4001, reason: "server bye" },
      );
      await served.close();
    },
  );

  test(
    `${name}: close() checks the code and reason as WebSocketConnection.close does`,
    {
      skip,
    },
    async () => {
      const served = await serve(async (socket) => {
        await socket.opened;
        for (const closeCode of [999, 1001, 1005, 2999, 5000]) {
          assert.throws(() => socket.close({ closeCode }), RangeError);
        }
        assert.throws(
          () => socket.close({ closeCode: 1000, reason: "x".repeat(124) }),
          RangeError,
        );
        // 123 bytes is the most a reason may take.
        socket.close({ closeCode: 1000, reason: "é".repeat(61) + "a" });
      });
      const client = nativeClient(served.url);
      const closed = await client.closed;
      assert.equal(closed.code, 1000);
      assert.equal(closed.reason, "é".repeat(61) + "a");
      await served.close();
    },
  );

  test(`${name}: cancelling the readable closes the connection`, {
    skip,
  }, async () => {
    const served = await serve(async (socket) => {
      const { readable } = await socket.opened;
      await readable.cancel();
    });
    const client = nativeClient(served.url);
    // No code: Deno sends an empty Close (1005); Bun cannot, and sends 1000.
    assert.equal(
      (await client.closed).code,
      server.runtime === "deno" ? 1005 : 1000,
    );
    await (await served.socket(0)).closed;
    await served.close();
  });

  test(`${name}: a client that vanishes rejects closed with 1006`, {
    skip,
  }, async () => {
    const served = await serve(async (socket) => {
      await socket.opened;
    });
    const raw = await rawUpgrade(served.port);
    assert.equal(raw.status, "HTTP/1.1 101 Switching Protocols");
    const socket = await served.socket(0);
    const { readable } = await socket.opened;
    raw.socket.destroy();
    await assert.rejects(socket.closed, {
      name: "WebSocketError",
      code: "connection_lost",
      closeCode: 1006,
    });
    await assert.rejects(readable.getReader().read(), {
      name: "WebSocketError",
    });
    await served.close();
  });

  test(
    `${name} refuses a forbidden origin with 403, and as the accept hook says`,
    {
      skip,
    },
    async () => {
      const served = await serve(async () => {}, {
        accept: (request) =>
          request.headers.get("cookie") === "session=ok" ||
          (request.headers.get("cookie") === null
            ? false
            : new Response("log in first", {
              status: 401,
              headers: { "www-authenticate": "Cookie" },
            })),
      });
      const refusals: [Record<string, unknown>, number, string][] = [
        [{ origin: "https://evil.example" }, 403, "forbidden_origin"],
        [{}, 403, "refused"],
        [{ headers: { cookie: "session=stale" } }, 401, "refused"],
      ];
      for (const [i, [options, status, code]] of refusals.entries()) {
        const client = new WebSocketStream(served.url, options);
        await assert.rejects(
          client.opened,
          (error) => error instanceof HandshakeError && error.status === status,
        );
        const socket = await served.socket(i);
        await assert.rejects(
          socket.opened,
          (error) => error instanceof HandshakeError && error.code === code,
        );
        await assert.rejects(socket.closed, HandshakeError);
      }
      // The same origin, with the cookie, is let in.
      const client = new WebSocketStream(served.url, {
        origin: `http://127.0.0.1:${served.port}`,
        headers: { cookie: "session=ok" },
      });
      await client.opened;
      client.close({ closeCode: 1000 });
      await client.closed;
      await served.close();
    },
  );

  test(
    `${name} chooses the client's first subprotocol that the server speaks`,
    {
      skip,
    },
    async () => {
      const served = await serve(async (socket) => {
        const { protocol, writable } = await socket.opened;
        await writable.getWriter().write(protocol);
      }, { protocols: ["chat.v2", "chat.v1"] });
      const chat = nativeClient(served.url, ["chat.v1", "chat.v2"]);
      await chat.received(1);
      assert.equal(chat.ws.protocol, "chat.v1");
      assert.deepEqual(chat.messages, ["chat.v1"]);
      // None in common: no Sec-WebSocket-Protocol in the 101, which the
      // full codec's client accepts (Bun's own WebSocket fails then).
      const other = new WebSocketStream(served.url, { protocols: ["mqtt"] });
      const { protocol, readable } = await other.opened;
      assert.equal(protocol, "");
      assert.equal((await readable.getReader().read()).value, "");
      chat.ws.close(1000);
      other.close({ closeCode: 1000 });
      await Promise.all([chat.closed, other.closed]);
      await served.close();
    },
  );

  test(`${name}: write() waits while the peer does not read`, {
    skip,
  }, async () => {
    const count = 64;
    const size = 1024 * 1024;
    let written = 0;
    const writes: Promise<void>[] = [];
    const served = await serve(async (socket) => {
      const { writable } = await socket.opened;
      const writer = writable.getWriter();
      for (let i = 0; i < count; i++) {
        writes.push(
          writer.write(new Uint8Array(size).fill(i)).then(() => {
            written++;
          }),
        );
      }
    });
    const raw = await rawUpgrade(served.port);
    // The client reads nothing: once the socket buffers are full, writes
    // stop resolving.
    let last = -1;
    while (written !== last) {
      last = written;
      await sleep(300);
    }
    assert.ok(written < count, `all ${count} writes resolved unread`);

    // Reading, the client drains them all.
    let bytes = raw.rest.length;
    const total = count * (size + 10); // each frame: a 10-byte head
    const drained = new Promise<void>((resolve) => {
      raw.socket.on("data", (chunk: Uint8Array) => {
        bytes += chunk.length;
        if (bytes >= total) resolve();
      });
    });
    raw.socket.resume();
    await drained;
    await Promise.all(writes);
    assert.equal(written, count);
    assert.equal(bytes, total);
    const socket = await served.socket(0);
    raw.socket.destroy();
    await assert.rejects(socket.closed, { closeCode: 1006 });
    await served.close();
  });
}

test(
  "deno upgrade closes with 1009 once more than maxQueuedBytes wait unread",
  {
    skip: servers[0].skip,
  },
  async () => {
    const served = await serveDeno(async (socket) => {
      await socket.opened; // and never reads
    }, { maxQueuedBytes: 64 * 1024 });
    const client = nativeClient(served.url);
    await client.opened;
    // 80 KiB in all, then nothing: a peer that goes on sending after the
    // Close gets its connection reset by Deno instead (1006).
    for (let i = 0; i < 5; i++) client.ws.send(new Uint8Array(16 * 1024));
    const closed = await client.closed;
    assert.equal(closed.code, 1009);
    const socket = await served.socket(0);
    await assert.rejects(socket.closed, {
      name: "WebSocketError",
      code: "message_too_big",
      closeCode: 1009,
    });
    await served.close();
  },
);

test("deno upgrade: ping() rejects, as Deno's server WebSocket cannot ping", {
  skip: servers[0].skip,
}, async () => {
  const served = await serveDeno(async (socket) => {
    await socket.opened;
    await assert.rejects(socket.ping(), TypeError);
    socket.close({ closeCode: 1000 });
  });
  const client = nativeClient(served.url);
  assert.equal((await client.closed).code, 1000);
  await served.close();
});

test("bun createBunAdapter: ping() resolves on the client's pong", {
  skip: servers[1].skip,
}, async () => {
  const served = await serveBun(async (socket) => {
    await socket.opened;
    await Promise.all([socket.ping("one"), socket.ping(), socket.ping("one")]);
    await assert.rejects(socket.ping("x".repeat(126)), RangeError);
    socket.close({ closeCode: 4000, reason: "pinged" });
  });
  const client = nativeClient(served.url);
  const closed = await client.closed;
  assert.equal(closed.code, 4000);
  assert.equal(closed.reason, "pinged");
  await served.close();
});

test("bun createBunAdapter stops reading while the readable is full", {
  skip: servers[1].skip,
}, async () => {
  const count = 32;
  const size = 1024 * 1024;
  let reading!: () => void;
  const read = new Promise<void>((resolve) => (reading = resolve));
  const served = await serveBun(async (socket) => {
    const { readable } = await socket.opened;
    await read;
    const reader = readable.getReader();
    for (let i = 0; i < count; i++) {
      const { value } = await reader.read();
      assertBytes(value, new Uint8Array(size).fill(i), `message ${i}`);
    }
    socket.close({ closeCode: 1000 });
  }, { readHighWaterMark: 64 * 1024 });
  // The full codec's write() resolves only as the socket takes the bytes.
  // 32 MiB are queued on purpose here: more than maxSendQueue allows.
  const client = new WebSocketStream(served.url, { maxSendQueue: Infinity });
  const { writable } = await client.opened;
  const writer = writable.getWriter();
  let written = 0;
  const writes: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    writes.push(
      writer.write(new Uint8Array(size).fill(i)).then(() => {
        written++;
      }),
    );
  }
  let last = -1;
  while (written !== last) {
    last = written;
    await sleep(300);
  }
  assert.ok(written < count, `all ${count} writes resolved unread`);
  reading();
  await Promise.all(writes);
  assert.deepEqual(await client.closed, { closeCode: 1000, reason: "" });
  await served.close();
});

// The bridge alone, over a fake native socket: these run on every runtime.

function fakeDriver(overrides: Partial<NativeDriver> = {}) {
  const calls: string[] = [];
  let buffered = 0;
  const driver: NativeDriver = {
    send(data) {
      calls.push(`send ${typeof data === "string" ? data : data.length}`);
      buffered += typeof data === "string" ? data.length : data.length;
      return true;
    },
    bufferedAmount: () => buffered,
    drainEvents: false,
    close: (code, reason) => calls.push(`close ${code} ${reason}`),
    terminate: () => calls.push("terminate"),
    ...overrides,
  };
  return {
    driver,
    calls,
    setBuffered(value: number) {
      buffered = value;
    },
  };
}

test("NativeBridge: close() before open closes once open, with the same checks", async () => {
  const bridge = new NativeBridge("http://localhost/");
  assert.throws(() => bridge.close({ closeCode: 1001 }), RangeError);
  bridge.close({ closeCode: 4000, reason: "early" });
  const fake = fakeDriver();
  bridge.open(fake.driver, "", "");
  assert.deepEqual(fake.calls, ["close 4000 early"]);
  bridge.closeEvent(4000, "", true);
  assert.deepEqual(await bridge.closed, { closeCode: 4000, reason: "" });
});

test("NativeBridge: without pause(), more than maxQueuedBytes unread fails with 1009", async () => {
  const bridge = new NativeBridge("http://localhost/", { maxQueuedBytes: 10 });
  const fake = fakeDriver();
  bridge.open(fake.driver, "", "");
  const { readable } = await bridge.opened;
  bridge.message("0123456789");
  assert.deepEqual(fake.calls, []);
  bridge.message(new Uint8Array(1));
  assert.equal(
    fake.calls[0],
    "close 1009 too many messages waiting to be read",
  );
  await assert.rejects(bridge.closed, { code: "message_too_big" });
  await assert.rejects(readable.getReader().read(), {
    code: "message_too_big",
  });
});

test("NativeBridge: with pause(), reading pauses above readHighWaterMark and resumes as it is read", async () => {
  const bridge = new NativeBridge("http://localhost/", {
    readHighWaterMark: 4,
  });
  const fake = fakeDriver({
    pause: () => fake.calls.push("pause"),
    resume: () => fake.calls.push("resume"),
  });
  bridge.open(fake.driver, "", "");
  const reader = (await bridge.opened).readable.getReader();
  bridge.message("abc");
  assert.deepEqual(fake.calls, []);
  bridge.message("de");
  bridge.message("f"); // already on its way when the runtime paused
  assert.deepEqual(fake.calls, ["pause"]);
  assert.equal((await reader.read()).value, "abc");
  assert.equal((await reader.read()).value, "de");
  assert.deepEqual(fake.calls, ["pause", "resume"]);
  bridge.closeEvent(1000, "", true);
  assert.equal((await reader.read()).value, "f");
  assert.equal((await reader.read()).done, true);
});

test("NativeBridge: write() polls the send buffer until it is below the mark", async () => {
  const bridge = new NativeBridge("http://localhost/", {
    writeHighWaterMark: 4,
  });
  const fake = fakeDriver();
  bridge.open(fake.driver, "", "");
  const writer = (await bridge.opened).writable.getWriter();
  await writer.write("1234"); // at the mark: resolves at once
  let done = false;
  const write = writer.write(new Uint16Array(2)).then(() => (done = true));
  await sleep(20);
  assert.equal(done, false);
  fake.setBuffered(4);
  await write;
  assert.deepEqual(fake.calls, ["send 1234", "send 4"]);
  await assert.rejects(writer.write({} as string), TypeError);
});

test("NativeBridge: closed rejects with close_timeout when the close never completes", async () => {
  const bridge = new NativeBridge("http://localhost/", { closeTimeout: 10 });
  const fake = fakeDriver({ ping: () => true });
  bridge.open(fake.driver, "", "");
  const ping = bridge.ping("p");
  await sleep(0);
  bridge.close();
  await assert.rejects(ping, TypeError);
  await assert.rejects(bridge.closed, { code: "close_timeout" });
  assert.deepEqual(fake.calls, ["close undefined undefined", "terminate"]);
});

test("NativeBridge: a pong settles its ping and every ping before it, as the codec's connection does (§5.5.3)", async () => {
  const bridge = new NativeBridge("http://localhost/");
  const fake = fakeDriver({ ping: () => true });
  bridge.open(fake.driver, "", "");
  const settled: string[] = [];
  const ping = (data: string) =>
    bridge.ping(data).then(
      () => settled.push(`${data} answered`),
      () => settled.push(`${data} rejected`),
    );
  const pings = [ping("x"), ping("y"), ping("x"), ping("z")];
  await new Promise((r) => setTimeout(r, 0));
  // A peer that answers only the latest of three pings, "x" again.
  bridge.pong(new TextEncoder().encode("x"));
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(settled, ["x answered", "y answered", "x answered"]);
  bridge.close({ closeCode: 1000 });
  await Promise.all(pings);
  assert.deepEqual(settled.at(-1), "z rejected");
});

for (const server of servers) {
  test(
    `${server.name}: a broadcast reaches every native client, text and bytes, in order with each one's own writes`,
    {
      skip: server.skip,
    },
    async () => {
      const room = new Broadcast();
      const served = await server.serve(async (socket) => {
        room.add(socket);
        await socket.closed;
      });
      const clients = [nativeClient(served.url), nativeClient(served.url)];
      await Promise.all(clients.map((c) => c.opened));
      const first = await served.socket(0);
      await served.socket(1);
      const writer = (await first.opened).writable.getWriter();
      const bytes = payload(70_000, 5);
      writer.write("own 1");
      assert.equal(room.send("to all"), 2);
      assert.equal(room.send(bytes, { except: first }), 1);
      writer.write("own 2");
      await Promise.all(clients.map((c, i) => c.received(i === 0 ? 3 : 2)));
      assert.deepEqual(clients[0].messages, ["own 1", "to all", "own 2"]);
      assert.equal(clients[1].messages[0], "to all");
      assertBytes(clients[1].messages[1], bytes, "the broadcast bytes");
      for (const c of clients) c.ws.close();
      await Promise.all(clients.map((c) => c.closed));
      await served.close();
    },
  );
}

test("NativeBridge: a broadcast waits while the send buffer is full, and goes before later writes", async () => {
  const { driver, calls, setBuffered } = fakeDriver();
  const bridge = new NativeBridge("ws://x", { writeHighWaterMark: 100 });
  bridge.open(driver, "", "");
  const room = new Broadcast().add(bridge);
  const writer = (await bridge.opened).writable.getWriter();
  setBuffered(1000); // full
  const own = writer.write("own");
  assert.equal(room.send("shared"), 1);
  writer.write("later");
  assert.deepEqual(calls, ["send own"]);
  setBuffered(0);
  await own;
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(calls, ["send own", "send shared", "send later"]);
});
