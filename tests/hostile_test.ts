// Hostile peers over real loopback sockets, on whichever runtime runs this
// file: the node:http upgrade server against raw TCP clients that misbehave
// on purpose, and the client against raw TCP servers that do. Each case
// checks what the other side did: refused, cut off, dropped, or kept its
// memory bounded.

import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import { test } from "node:test";
import { type NodeUpgradeOptions, upgrade } from "../src/adapters/node.ts";
import zlib from "node:zlib";
import { WebSocketStream } from "../src/client.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { WebSocketError } from "../src/errors.ts";
import { acceptKeySync, HandshakeError } from "../src/handshake.ts";
import { Opcode } from "../src/opcode.ts";
import { clientFrame, concat } from "./_helpers.ts";

const MiB = 1024 * 1024;

// Servers ---------------------------------------------------------------

interface UpgradeServer {
  port: number;
  /** Every connection upgrade() returned, in order. */
  connections: WebSocketConnection[];
  /** Resolves with the next connection. */
  next(): Promise<WebSocketConnection>;
  close(): Promise<void>;
}

function listen(server: Server | net.Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(
      0,
      "127.0.0.1",
      () => resolve((server.address() as net.AddressInfo).port),
    )
  );
}

async function upgradeServer(
  options: NodeUpgradeOptions = {},
  serverOptions: Record<string, unknown> = {},
): Promise<UpgradeServer> {
  const server = createServer(serverOptions);
  const connections: WebSocketConnection[] = [];
  let taken = 0;
  let waiting: (() => void) | null = null;
  server.on(
    "upgrade",
    (request: IncomingMessage, socket: Duplex, head: Uint8Array) => {
      const ws = upgrade(request, socket as never, head, options);
      ws.closed.catch(() => {});
      ws.opened.catch(() => {});
      connections.push(ws);
      waiting?.();
      waiting = null;
    },
  );
  const port = await listen(server);
  return {
    port,
    connections,
    async next() {
      while (taken === connections.length) {
        await new Promise<void>((resolve) => (waiting = resolve));
      }
      return connections[taken++];
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Bun and Deno keep idle keep-alive sockets otherwise.
        (server as { closeAllConnections?: () => void })
          .closeAllConnections?.();
      }),
  };
}

// Raw peers -------------------------------------------------------------

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

function requestHead(extra = ""): string {
  return "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n" +
    `Connection: Upgrade\r\nSec-WebSocket-Key: ${KEY}\r\n` +
    `Sec-WebSocket-Version: 13\r\n${extra}`;
}

/** A TCP peer that keeps what it reads, and can stop reading. */
class RawPeer {
  readonly socket: net.Socket;
  readonly closed: Promise<void>;
  #chunks: Uint8Array[] = [];
  #length = 0;
  #notify: () => void = () => {};
  #isClosed = false;
  #discard = false;

  constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("error", () => {});
    socket.on("data", (chunk: Uint8Array) => {
      if (this.#discard) return;
      this.#chunks.push(new Uint8Array(chunk));
      this.#length += chunk.length;
      this.#notify();
    });
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        this.#isClosed = true;
        this.#notify();
        resolve();
      })
    );
  }

  static async connect(port: number): Promise<RawPeer> {
    const socket = net.connect(port, "127.0.0.1");
    await new Promise((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new RawPeer(socket);
  }

  /** Opens a WebSocket connection: sends the request, reads the 101. */
  static async open(port: number, extra = ""): Promise<RawPeer> {
    const peer = await RawPeer.connect(port);
    peer.write(requestHead(extra) + "\r\n");
    const head = await peer.head();
    assert.match(head, /^HTTP\/1\.1 101 /);
    return peer;
  }

  /**
   * Reads and drops everything from now on, until the server closes: a
   * paused socket does not see the end of the connection.
   */
  async drain(): Promise<void> {
    this.#discard = true;
    this.#chunks = [];
    this.socket.resume();
    await this.closed;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  write(data: string | Uint8Array): boolean {
    return this.socket.write(data);
  }

  /** Writes, waiting for the socket to drain; false if it closed first. */
  async send(data: Uint8Array): Promise<boolean> {
    if (this.#isClosed || this.socket.destroyed) return false;
    if (this.socket.write(data)) return true;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.socket.off("drain", done);
        this.socket.off("close", done);
        resolve();
      };
      this.socket.on("drain", done);
      this.socket.on("close", done);
    });
    return !this.#isClosed && !this.socket.destroyed;
  }

  /** Everything read so far. */
  received(): Uint8Array {
    const all = concat(this.#chunks);
    this.#chunks = [all];
    return all;
  }

  /** Waits until `ready()` holds or the socket closes. */
  async until(ready: () => boolean): Promise<void> {
    while (!ready() && !this.#isClosed) {
      await new Promise<void>((resolve) => (this.#notify = resolve));
    }
  }

  /** Reads up to the blank line that ends an HTTP head; returns the head. */
  async head(): Promise<string> {
    let end = -1;
    await this.until(() => {
      end = latin1(this.received()).indexOf("\r\n\r\n");
      return end >= 0;
    });
    const all = this.received();
    if (end < 0) return latin1(all);
    this.#chunks = [all.subarray(end + 4)];
    this.#length = all.length - end - 4;
    return latin1(all.subarray(0, end));
  }

  /** Reads frames until `stop` says so or the socket closes. */
  async frames(
    stop: (frames: ServerFrame[]) => boolean,
  ): Promise<ServerFrame[]> {
    let frames: ServerFrame[] = [];
    await this.until(() => {
      frames = parseFrames(this.received());
      return stop(frames);
    });
    return frames;
  }
}

function latin1(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    out += String.fromCharCode(...bytes.subarray(i, i + 4096));
  }
  return out;
}

interface ServerFrame {
  opcode: number;
  payload: Uint8Array;
}

/** The complete frames at the start of `bytes`, unmasked. */
function parseFrames(bytes: Uint8Array): ServerFrame[] {
  const frames: ServerFrame[] = [];
  let at = 0;
  while (bytes.length - at >= 2) {
    let length = bytes[at + 1] & 0x7f;
    let start = at + 2;
    if (length === 126) {
      if (bytes.length - at < 4) break;
      length = (bytes[at + 2] << 8) | bytes[at + 3];
      start = at + 4;
    } else if (length === 127) {
      if (bytes.length - at < 10) break;
      length = Number(
        new DataView(bytes.buffer, bytes.byteOffset + at + 2, 8)
          .getBigUint64(0),
      );
      start = at + 10;
    }
    const masked = (bytes[at + 1] & 0x80) !== 0;
    const key = start;
    if (masked) start += 4;
    if (bytes.length < start + length) break;
    let payload = bytes.subarray(start, start + length);
    if (masked) {
      payload = payload.map((byte, i) => byte ^ bytes[key + (i & 3)]);
    }
    frames.push({ opcode: bytes[at] & 0x0f, payload });
    at = start + length;
  }
  return frames;
}

function closeBody(code: number): Uint8Array {
  return new Uint8Array([code >>> 8, code & 0xff]);
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  closeCode = 1006,
): Promise<void> {
  await assert.rejects(
    promise,
    (error) =>
      error instanceof WebSocketError && error.code === code &&
      error.closeCode === closeCode,
  );
}

// A ping flood against a peer that never reads --------------------------

const FLOOD = 100_000;
// 100,000 pings take seconds on a busy machine; Bun's default is 5 s.
const FLOOD_TIMEOUT = 60_000;

/** An unmasked frame, as a server sends it. */
function serverFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(2 + payload.length); // < 126 bytes here
  out[0] = 0x80 | opcode;
  out[1] = payload.length;
  out.set(payload, 2);
  return out;
}

/**
 * Stops reading, sends FLOOD pings of 125 bytes (13 MB, more than
 * loopback's socket buffers hold as pongs, so that without coalescing most
 * pongs would queue in memory), each carrying its number, then a Close;
 * then reads everything up to the Close that answers it.
 */
async function pingFlood(
  peer: RawPeer,
  frame: (opcode: number, payload: Uint8Array) => Uint8Array,
): Promise<ServerFrame[]> {
  peer.socket.pause();
  const payload = new Uint8Array(125);
  for (let sent = 0; sent < FLOOD; sent += 1000) {
    const frames: Uint8Array[] = [];
    for (let i = sent; i < sent + 1000; i++) {
      new DataView(payload.buffer).setUint32(0, i);
      frames.push(frame(Opcode.Ping, payload));
    }
    assert.ok(await peer.send(concat(frames)), "the other side hung up");
  }
  peer.write(frame(Opcode.Close, closeBody(1000)));
  peer.socket.resume();
  return await peer.frames((f) => f.at(-1)?.opcode === Opcode.Close);
}

/** Pongs in order, far fewer than the pings, the last ping answered. */
function assertCoalesced(frames: ServerFrame[]): void {
  const pongs = frames.filter((f) => f.opcode === Opcode.Pong);
  assert.equal(frames.at(-1)?.opcode, Opcode.Close);
  assert.equal(pongs.length, frames.length - 1, "only pongs before the Close");
  assert.ok(
    pongs.length < FLOOD / 2,
    `${pongs.length} pongs for ${FLOOD} pings: pongs were queued, not coalesced`,
  );
  const numbers = pongs.map((p) =>
    new DataView(p.payload.buffer, p.payload.byteOffset).getUint32(0)
  );
  for (let i = 1; i < numbers.length; i++) {
    assert.ok(numbers[i] > numbers[i - 1]);
  }
  // §5.5.2: the last ping before the Close is answered.
  assert.equal(numbers.at(-1), FLOOD - 1);
}

test(
  "upgrade answers a ping flood from a peer that never reads with one pong waiting, not one per ping",
  { timeout: FLOOD_TIMEOUT },
  async () => {
    const server = await upgradeServer();
    const peer = await RawPeer.open(server.port);
    const ws = await server.next();
    await ws.opened;
    const frames = await pingFlood(peer, clientFrame);
    assert.deepEqual(await ws.closed, { closeCode: 1000, reason: "" });
    await server.close();

    assertCoalesced(frames);
  },
);

// A peer that never reads ------------------------------------------------

test("upgrade drops a peer that never reads once unsent messages pass maxSendQueue", async () => {
  const server = await upgradeServer({ maxSendQueue: 1 * MiB });
  const peer = await RawPeer.open(server.port);
  const ws = await server.next();
  const { writable } = await ws.opened;
  peer.socket.pause();

  // An application that does not wait for write() to resolve: 64 MiB in
  // 64 KiB messages, far more than socket buffers take.
  const writer = writable.getWriter();
  const message = new Uint8Array(64 * 1024);
  const writes: Promise<void>[] = [];
  for (let i = 0; i < 1024; i++) writes.push(writer.write(message));
  await rejectsWith(ws.closed, "send_queue_full");
  const results = await Promise.allSettled(writes);
  assert.equal(results.at(-1)?.status, "rejected");
  await peer.drain();
  await server.close();
});

test("upgrade with a heartbeat drops a peer that never reads while writes wait", async () => {
  const server = await upgradeServer({
    heartbeat: { interval: 100, timeout: 200 },
  });
  const peer = await RawPeer.open(server.port);
  const ws = await server.next();
  const { writable } = await ws.opened;
  peer.socket.pause();

  // A well-behaved application: one write at a time, each waiting for the
  // transport. Its queue stays empty; the heartbeat finds the peer gone.
  const writer = writable.getWriter();
  const message = new Uint8Array(1 * MiB);
  const writing = (async () => {
    while (true) await writer.write(message);
  })();
  await rejectsWith(ws.closed, "heartbeat_timeout");
  await assert.rejects(writing);
  await peer.drain();
  await server.close();
});

// The closing handshake --------------------------------------------------

test("upgrade drops a peer that never answers its Close after closeTimeout", async () => {
  const server = await upgradeServer({ closeTimeout: 200 });
  const peer = await RawPeer.open(server.port);
  const ws = await server.next();
  await ws.opened;

  ws.close({ closeCode: 1000 });
  const frames = await peer.frames((f) => f.length > 0);
  assert.equal(frames[0].opcode, Opcode.Close);
  // The peer reads the Close but never answers it.
  await rejectsWith(ws.closed, "close_timeout");
  await peer.closed;
  await server.close();
});

test("upgrade drops a peer that neither reads nor answers its Close after closeTimeout", async () => {
  const server = await upgradeServer({ closeTimeout: 200 });
  const peer = await RawPeer.open(server.port);
  const ws = await server.next();
  const { writable } = await ws.opened;
  peer.socket.pause();
  // Our Close waits behind 32 MiB the peer never reads.
  const writer = writable.getWriter();
  const big = new Uint8Array(32 * MiB);
  writer.write(big).catch(() => {});
  ws.close({ closeCode: 1000 });
  await rejectsWith(ws.closed, "close_timeout");
  await peer.drain();
  await server.close();
});

// The opening handshake, on node:http ------------------------------------
//
// node:http reads the request head before the 'upgrade' event, so its own
// limits guard this stage: headersTimeout (default 60 s on Node; Deno
// closes after 90 s, Bun after its 10 s idle timeout) and maxHeaderSize
// (16 KiB). These cases set the timeout short and check that each runtime
// honours it.

test("node:http drops a handshake that never finishes (slowloris) at headersTimeout", async () => {
  const server = await upgradeServer({}, {
    headersTimeout: 300,
    requestTimeout: 600,
    connectionsCheckingInterval: 100,
  });
  const peer = await RawPeer.connect(server.port);
  peer.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  // One more header line every 50 ms, never the blank line.
  const trickle = setInterval(() => peer.write("X-Slow: 1\r\n"), 50);
  await peer.closed;
  clearInterval(trickle);
  assert.match(latin1(peer.received()), /^HTTP\/1\.1 408 /);
  assert.equal(server.connections.length, 0);
  await server.close();
});

test("node:http refuses an endless header block with 431 and cuts the peer off", async () => {
  const server = await upgradeServer();
  const peer = await RawPeer.connect(server.port);
  peer.write(requestHead() + "X-Endless: ");
  // Up to 256 MiB of one header value: the server must hang up long before.
  const chunk = new Uint8Array(64 * 1024).fill(0x61);
  let sent = 0;
  while (sent < 256 * MiB && await peer.send(chunk)) sent += chunk.length;
  await peer.closed;
  assert.match(latin1(peer.received()), /^HTTP\/1\.1 431 /);
  assert.ok(sent < 64 * MiB, `the server took ${sent} bytes of one header`);
  assert.equal(server.connections.length, 0);
  await server.close();
});

for (const count of [150, 2500]) {
  test(`upgrade refuses a flood of ${count} headers with 431`, async () => {
    const server = await upgradeServer();
    const peer = await RawPeer.connect(server.port);
    // "x:y" lines: the whole head stays under 16 KiB, so only the count
    // can refuse it.
    peer.write(requestHead() + "x:y\r\n".repeat(count) + "\r\n");
    const head = await peer.head();
    assert.match(head, /^HTTP\/1\.1 431 /);
    // node:http refuses 2500 itself on Node and Bun; Deno hands on the
    // first 1000, and 150 reach upgrade() everywhere.
    for (const ws of server.connections) {
      await assert.rejects(
        ws.opened,
        (error) =>
          error instanceof HandshakeError &&
          error.code === "too_many_headers" && error.status === 431,
      );
    }
    peer.socket.destroy();
    await server.close();
  });
}

test("upgrade refuses a head over its maxHeadSize with 431", async () => {
  const server = await upgradeServer({ maxHeadSize: 1024 });
  const peer = await RawPeer.connect(server.port);
  peer.write(requestHead(`X-Big: ${"a".repeat(2000)}\r\n`) + "\r\n");
  assert.match(await peer.head(), /^HTTP\/1\.1 431 /);
  await assert.rejects(
    server.connections[0].opened,
    (error) =>
      error instanceof HandshakeError && error.code === "head_too_large",
  );
  peer.socket.destroy();
  await server.close();
});

// A compression bomb ------------------------------------------------------

test("upgrade with permessage-deflate stops a compression bomb at maxMessageSize with 1009", async () => {
  const server = await upgradeServer({
    perMessageDeflate: true,
    maxMessageSize: MiB,
  });
  const peer = await RawPeer.open(
    server.port,
    "Sec-WebSocket-Extensions: permessage-deflate\r\n",
  );
  const ws = await server.next();
  const { readable } = await ws.opened;
  readable.pipeTo(new WritableStream()).catch(() => {});
  // 256 MiB of zeros, deflated to about 256 KiB, in one frame with RSV1.
  const block = zlib.deflateRawSync(new Uint8Array(MiB), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const payload = concat(Array.from({ length: 256 }, () => block));
  const frame = clientFrame(Opcode.Binary, payload);
  frame[0] |= 0x40; // RSV1: compressed
  peer.write(frame);
  const frames = await peer.frames((f) =>
    f.some((x) => x.opcode === Opcode.Close)
  );
  const close = frames.find((f) => f.opcode === Opcode.Close)!;
  assert.equal((close.payload[0] << 8) | close.payload[1], 1009);
  await rejectsWith(ws.closed, "message_too_big", 1009);
  await peer.closed;
  await server.close();
});

// Messages that end in a final DEFLATE block -------------------------------

// RFC 7692 §7.2.3.4 lets a sender end a message's DEFLATE data with a final
// block (BFINAL), as a one-shot deflateRawSync does; what follows one within
// the message is not DEFLATE data.
const FIRST = zlib.deflateRawSync("first");
const SECOND = zlib.deflateRawSync("second");
const JUNK = concat([
  zlib.deflateRawSync("third"),
  new TextEncoder().encode("junk"),
]);

/** The code of the first Close frame the peer reads. */
async function closeCode(peer: RawPeer): Promise<number> {
  const frames = await peer.frames((f) =>
    f.some((x) => x.opcode === Opcode.Close)
  );
  const close = frames.find((f) => f.opcode === Opcode.Close)!;
  return (close.payload[0] << 8) | close.payload[1];
}

// Two compressed messages that each end in a final DEFLATE block are read
// by `ws`; data after a final block fails it with 1007, in either role.
async function finalBlocks(
  peer: RawPeer,
  frame: (opcode: Opcode, payload: Uint8Array) => Uint8Array,
  ws: {
    opened: Promise<{ readable: ReadableStream<unknown> }>;
    closed: Promise<unknown>;
  },
): Promise<void> {
  const reader = (await ws.opened).readable.getReader();
  const compressed = (payload: Uint8Array) => {
    const bytes = frame(Opcode.Text, payload);
    bytes[0] |= 0x40; // RSV1: compressed
    return bytes;
  };
  peer.write(concat([compressed(FIRST), compressed(SECOND)]));
  assert.equal((await reader.read()).value, "first");
  assert.equal((await reader.read()).value, "second");
  peer.write(compressed(JUNK));
  assert.equal(await closeCode(peer), 1007);
  await rejectsWith(ws.closed, "invalid_compressed_data", 1007);
  await assert.rejects(reader.read(), WebSocketError);
}

test("upgrade with permessage-deflate reads messages that end in a final block, and fails data after one with 1007", async () => {
  const server = await upgradeServer({ perMessageDeflate: true });
  const peer = await RawPeer.open(
    server.port,
    "Sec-WebSocket-Extensions: permessage-deflate\r\n",
  );
  const ws = await server.next();
  await finalBlocks(peer, clientFrame, ws);
  await peer.closed;
  await server.close();
});

// The client against hostile servers ------------------------------------

/** A TCP server that answers every connection with `serve`. */
async function rawServer(
  serve: (socket: net.Socket) => void,
): Promise<{ port: number; sockets: net.Socket[]; close(): Promise<void> }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on("error", () => {});
    // Reads and drops what the client sends, so that it sees the client
    // hang up.
    socket.resume();
    serve(socket);
  });
  const port = await listen(server);
  return {
    port,
    sockets,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function socketClosed(socket: net.Socket): Promise<void> {
  return socket.destroyed
    ? Promise.resolve()
    : new Promise((resolve) => socket.once("close", () => resolve()));
}

test("WebSocketStream drops a server that never finishes its response head, at handshakeTimeout", async () => {
  let trickle: ReturnType<typeof setInterval> | undefined;
  const server = await rawServer((socket) => {
    socket.write("HTTP/1.1 101 Switching Protocols\r\n");
    trickle = setInterval(() => socket.write("X-Slow: 1\r\n"), 50);
  });
  const client = new WebSocketStream(`ws://127.0.0.1:${server.port}`, {
    handshakeTimeout: 300,
  });
  await rejectsWith(client.opened, "handshake_timeout");
  await rejectsWith(client.closed, "handshake_timeout");
  await socketClosed(server.sockets[0]);
  clearInterval(trickle);
  await server.close();
});

test("WebSocketStream refuses an endless response head and hangs up", async () => {
  let sent = 0;
  const server = await rawServer(async (socket) => {
    socket.write("HTTP/1.1 101 Switching Protocols\r\nX-Endless: ");
    const chunk = new Uint8Array(64 * 1024).fill(0x61);
    while (sent < 256 * MiB && !socket.destroyed) {
      sent += chunk.length;
      if (!socket.write(chunk)) {
        await new Promise((resolve) => {
          socket.once("drain", resolve);
          socket.once("close", resolve);
        });
      }
    }
  });
  const client = new WebSocketStream(`ws://127.0.0.1:${server.port}`);
  await assert.rejects(
    client.opened,
    (error) =>
      error instanceof HandshakeError && error.code === "invalid_response" &&
      /larger than 16384 bytes/.test(error.message),
  );
  await socketClosed(server.sockets[0]);
  assert.ok(sent < 64 * MiB, `the client took ${sent} bytes of one header`);
  await server.close();
});

test("WebSocketStream refuses a response with a flood of headers", async () => {
  const server = await rawServer((socket) => {
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\n" + "x:y\r\n".repeat(2500) +
        "\r\n",
    );
  });
  const client = new WebSocketStream(`ws://127.0.0.1:${server.port}`);
  await assert.rejects(
    client.opened,
    (error) =>
      error instanceof HandshakeError && error.code === "invalid_response" &&
      /more than 100 header lines/.test(error.message),
  );
  await socketClosed(server.sockets[0]);
  await server.close();
});

test(
  "WebSocketStream answers a ping flood from a server that never reads with one pong waiting, not one per ping",
  { timeout: FLOOD_TIMEOUT },
  async () => {
    let accepted!: (peer: RawPeer) => void;
    const connected = new Promise<RawPeer>((resolve) => (accepted = resolve));
    const server = await rawServer((socket) => accepted(new RawPeer(socket)));
    const client = new WebSocketStream(`ws://127.0.0.1:${server.port}`);
    const peer = await connected;
    const key = /sec-websocket-key: *(\S+)/i.exec(await peer.head())![1];
    peer.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
        `Connection: Upgrade\r\nSec-WebSocket-Accept: ${
          acceptKeySync(key)
        }\r\n\r\n`,
    );
    await client.opened;
    const frames = await pingFlood(peer, serverFrame);
    assert.deepEqual(await client.closed, { closeCode: 1000, reason: "" });
    assertCoalesced(frames);
    await server.close();
  },
);

test("WebSocketStream with permessage-deflate reads messages that end in a final block, and fails data after one with 1007", async () => {
  let accepted!: (peer: RawPeer) => void;
  const connected = new Promise<RawPeer>((resolve) => (accepted = resolve));
  const server = await rawServer((socket) => accepted(new RawPeer(socket)));
  const client = new WebSocketStream(`ws://127.0.0.1:${server.port}`, {
    perMessageDeflate: true,
  });
  const peer = await connected;
  const key = /sec-websocket-key: *(\S+)/i.exec(await peer.head())![1];
  peer.write(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
      `Connection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKeySync(key)}\r\n` +
      "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
  );
  await finalBlocks(peer, serverFrame, client);
  await server.close();
});
