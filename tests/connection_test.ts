import assert from "node:assert/strict";
import { test } from "node:test";
import {
  type WebSocketCloseInfo,
  WebSocketConnection,
  type WebSocketConnectionOptions,
} from "../src/connection.ts";
import { WebSocketError } from "../src/errors.ts";
import type { Frame, Role } from "../src/frame.ts";
import { FrameDecoder } from "../src/frame_decoder.ts";
import { FrameEncoder } from "../src/frame_encoder.ts";
import { Opcode } from "../src/opcode.ts";
import { bytes, concat, duplexPair, frame } from "./_helpers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function pair(
  clientOptions: Partial<WebSocketConnectionOptions> = {},
  serverOptions: Partial<WebSocketConnectionOptions> = {},
) {
  const [a, b] = duplexPair();
  const client = new WebSocketConnection(a, {
    role: "client",
    ...clientOptions,
  });
  const server = new WebSocketConnection(b, {
    role: "server",
    ...serverOptions,
  });
  return { client, server };
}

/**
 * Our connection in `role` against a raw peer that sends hand-built frames
 * and sees every frame we send, and whether we closed the transport.
 */
function againstRawPeer(
  role: Role,
  options: Partial<WebSocketConnectionOptions> = {},
) {
  const [ours, theirs] = duplexPair();
  const connection = new WebSocketConnection(ours, { role, ...options });
  const peerRole: Role = role === "client" ? "server" : "client";
  const encoder = new FrameEncoder({ role: peerRole });
  const writer = theirs.writable.getWriter();
  const frames: Frame[] = [];
  let transportClosed = false;
  let notify = () => {};
  (async () => {
    const decoder = new FrameDecoder({ role: peerRole });
    try {
      for await (const chunk of theirs.readable) {
        decoder.push(chunk, (f) => frames.push(f));
        notify();
      }
      transportClosed = true;
    } catch {
      transportClosed = true;
    }
    notify();
  })();
  return {
    connection,
    frames,
    get transportClosed() {
      return transportClosed;
    },
    send(f: Frame) {
      encoder.encode(f, (chunk) => writer.write(chunk).catch(() => {}));
    },
    sendBytes(chunk: Uint8Array) {
      return writer.write(chunk).catch(() => {});
    },
    closeTransport() {
      return writer.close().catch(() => {});
    },
    resetTransport() {
      return writer.abort(new Error("reset")).catch(() => {});
    },
    /** Waits until `predicate` holds, checking after each frame. */
    async until(predicate: () => boolean, ms = 2000) {
      const deadline = Date.now() + ms;
      while (!predicate()) {
        if (Date.now() > deadline) {
          throw new Error("timed out waiting for the peer");
        }
        await new Promise<void>((resolve) => {
          notify = resolve;
          setTimeout(resolve, 20);
        });
      }
    },
  };
}

const closeBody = (code: number, reason = "") => {
  const text = new TextEncoder().encode(reason);
  return bytes(code >> 8, code & 0xff, ...text);
};

function isClose(f: Frame | undefined, code?: number): boolean {
  if (f?.opcode !== Opcode.Close) return false;
  return code === undefined || ((f.payload[0] << 8) | f.payload[1]) === code;
}

async function rejectsWith(
  promise: Promise<unknown>,
  code: string,
  closeCode: number,
) {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(
      error instanceof WebSocketError,
      `not a WebSocketError: ${error}`,
    );
    assert.equal(error.code, code);
    assert.equal(error.closeCode, closeCode);
    return true;
  });
}

// Messages.

test("WebSocketConnection carries text and binary messages both ways", async () => {
  const { client, server } = pair();
  const c = await client.opened;
  const s = await server.opened;
  // An in-memory transport has no buffer: read while writing.
  const sr = s.readable.getReader();
  const cr = c.readable.getReader();
  const received = Promise.all([sr.read(), sr.read(), cr.read()]);
  const cw = c.writable.getWriter();
  const sw = s.writable.getWriter();
  await Promise.all([
    cw.write("to server"),
    cw.write(bytes(1, 2, 3)),
    sw.write("to client"),
  ]);
  const [first, second, third] = await received;
  assert.equal(first.value, "to server");
  assert.deepEqual(second.value, bytes(1, 2, 3));
  assert.equal(third.value, "to client");
  client.close({ closeCode: 1000 });
  await Promise.all([client.closed, server.closed]);
});

// The close handshake, §5.5.1 and §7.

test("WebSocketConnection closes cleanly when the client starts the handshake", async () => {
  const { client, server } = pair();
  const c = await client.opened;
  const s = await server.opened;
  client.close({ closeCode: 3001, reason: "bye" });
  assert.deepEqual(await server.closed, { closeCode: 3001, reason: "bye" });
  assert.deepEqual(await client.closed, { closeCode: 3001, reason: "" });
  assert.equal((await s.readable.getReader().read()).done, true);
  assert.equal((await c.readable.getReader().read()).done, true);
});

test("WebSocketConnection closes cleanly when the server starts the handshake", async () => {
  const { client, server } = pair();
  await client.opened;
  server.close({ closeCode: 1000, reason: "shutting down" });
  assert.deepEqual(await client.closed, {
    closeCode: 1000,
    reason: "shutting down",
  });
  assert.deepEqual(await server.closed, { closeCode: 1000, reason: "" });
});

test("WebSocketConnection reports 1005 for a Close frame with no code", async () => {
  const { client, server } = pair();
  client.close();
  assert.deepEqual(await server.closed, { closeCode: 1005, reason: "" });
  assert.deepEqual(await client.closed, { closeCode: 1005, reason: "" });
});

test("WebSocketConnection.close rejects codes and reasons an application may not send", () => {
  const { client } = pair();
  for (const code of [999, 1001, 1002, 1005, 1006, 1015, 2999, 5000]) {
    assert.throws(
      () => client.close({ closeCode: code }),
      RangeError,
      String(code),
    );
  }
  assert.throws(
    () => client.close({ closeCode: 1000, reason: "x".repeat(124) }),
    RangeError,
  );
  client.close({ closeCode: 1000, reason: "\u00e9".repeat(61) }); // 122 bytes
});

test("WebSocketConnection answers a Close exactly once, echoing its code", async () => {
  const peer = againstRawPeer("server");
  peer.send(frame(Opcode.Close, closeBody(4000, "first")));
  peer.send(frame(Opcode.Close, closeBody(4001, "second")));
  await peer.until(() => peer.transportClosed);
  await peer.closeTransport();
  const closes = peer.frames.filter((f) => f.opcode === Opcode.Close);
  assert.equal(closes.length, 1);
  assert.ok(isClose(closes[0], 4000));
  assert.deepEqual(await peer.connection.closed, {
    closeCode: 4000,
    reason: "first",
  });
});

test("WebSocketConnection as server closes the transport first, right after the handshake", async () => {
  const peer = againstRawPeer("server");
  await peer.connection.opened;
  peer.send(frame(Opcode.Close, closeBody(1000)));
  // The peer (a client) has not closed its side, yet ours is closed.
  await peer.until(() => peer.transportClosed);
  await peer.closeTransport();
  assert.deepEqual(await peer.connection.closed, {
    closeCode: 1000,
    reason: "",
  });
});

test("WebSocketConnection as client waits for the server to close the transport", async () => {
  const peer = againstRawPeer("client");
  await peer.connection.opened;
  peer.send(frame(Opcode.Close, closeBody(1000)));
  await peer.until(() => peer.frames.some((f) => isClose(f, 1000)));
  await sleep(30);
  assert.equal(
    peer.transportClosed,
    false,
    "the client closed the transport before the server",
  );
  await peer.closeTransport();
  await peer.until(() => peer.transportClosed);
  assert.deepEqual(await peer.connection.closed, {
    closeCode: 1000,
    reason: "",
  });
});

test("WebSocketConnection sends nothing after its Close frame", async () => {
  const peer = againstRawPeer("client");
  const { writable } = await peer.connection.opened;
  const writer = writable.getWriter();
  await writer.write("before");
  peer.connection.close({ closeCode: 1000 });
  await assert.rejects(writer.write("after"), TypeError);
  await assert.rejects(peer.connection.ping(), TypeError);
  peer.send(frame(Opcode.Ping, "late ping"));
  peer.send(frame(Opcode.Close, closeBody(1000)));
  await peer.closeTransport();
  await peer.connection.closed;
  assert.deepEqual(peer.frames.map((f) => f.opcode), [
    Opcode.Text,
    Opcode.Close,
  ]);
});

test("WebSocketConnection still delivers messages that arrive before the peer's Close", async () => {
  const peer = againstRawPeer("client");
  const { readable } = await peer.connection.opened;
  peer.connection.close({ closeCode: 1000 });
  peer.send(frame(Opcode.Text, "in flight"));
  peer.send(frame(Opcode.Close, closeBody(1000)));
  peer.send(frame(Opcode.Text, "after close: ignored"));
  peer.closeTransport();
  const reader = readable.getReader();
  assert.equal((await reader.read()).value, "in flight");
  assert.equal((await reader.read()).done, true);
  await peer.connection.closed;
});

const badCloses: [string, Uint8Array, number, string][] = [
  ["a one-byte body", bytes(0x03), 1002, "invalid_close_frame"],
  ["code 999", closeBody(999), 1002, "invalid_close_frame"],
  ["code 1004 (reserved)", closeBody(1004), 1002, "invalid_close_frame"],
  ["code 1005 (never sent)", closeBody(1005), 1002, "invalid_close_frame"],
  ["code 1006 (never sent)", closeBody(1006), 1002, "invalid_close_frame"],
  ["code 1015 (never sent)", closeBody(1015), 1002, "invalid_close_frame"],
  ["code 1016 (unassigned)", closeBody(1016), 1002, "invalid_close_frame"],
  ["code 2999 (unassigned)", closeBody(2999), 1002, "invalid_close_frame"],
  ["code 5000", closeBody(5000), 1002, "invalid_close_frame"],
  [
    "a reason that is not UTF-8",
    bytes(0x03, 0xe8, 0xce, 0xba, 0xe1, 0xbd),
    1007,
    "invalid_utf8",
  ],
];

for (const [name, body, closeCode, code] of badCloses) {
  test(`WebSocketConnection fails with ${closeCode} on a Close frame with ${name}`, async () => {
    const peer = againstRawPeer("server");
    peer.send(frame(Opcode.Close, body));
    await rejectsWith(peer.connection.closed, code, closeCode);
    await peer.until(() => peer.transportClosed);
    assert.ok(isClose(peer.frames.at(-1), closeCode));
  });
}

test("WebSocketConnection accepts every close code a peer may send", async () => {
  for (
    const code of [
      1000,
      1001,
      1002,
      1003,
      1007,
      1008,
      1009,
      1010,
      1011,
      1012,
      1013,
      1014,
      3000,
      4999,
    ]
  ) {
    const peer = againstRawPeer("server");
    peer.send(frame(Opcode.Close, closeBody(code, "why")));
    await peer.until(() => peer.transportClosed);
    await peer.closeTransport();
    assert.deepEqual(await peer.connection.closed, {
      closeCode: code,
      reason: "why",
    });
  }
});

// Failing the connection, §7.1.7.

test("WebSocketConnection answers a protocol error with the code the RFC names, then closes", async () => {
  const peer = againstRawPeer("server");
  const { readable } = await peer.connection.opened;
  await peer.sendBytes(bytes(0x83, 0x80, 0, 0, 0, 0)); // reserved opcode 0x3, masked
  await rejectsWith(peer.connection.closed, "reserved_opcode", 1002);
  await peer.until(() => peer.transportClosed);
  assert.ok(isClose(peer.frames.at(-1), 1002));
  await assert.rejects(readable.getReader().read(), {
    code: "reserved_opcode",
  });
});

test("WebSocketConnection reports a protocol error that comes after its own Close at once, not at closeTimeout", async () => {
  const peer = againstRawPeer("server", { closeTimeout: 10_000 });
  await peer.connection.opened;
  peer.connection.close({ closeCode: 1000 });
  await peer.until(() => isClose(peer.frames.at(-1), 1000));
  const started = Date.now();
  await peer.sendBytes(bytes(0x83, 0x80, 0, 0, 0, 0)); // reserved opcode 0x3
  await rejectsWith(peer.connection.closed, "reserved_opcode", 1002);
  assert.ok(Date.now() - started < 5000, "waited for closeTimeout");
  await peer.until(() => peer.transportClosed);
  // One Close only: ours, sent before the violation.
  assert.equal(peer.frames.filter((f) => isClose(f)).length, 1);
  // The peer hangs up too: nothing is left lingering for later tests.
  await peer.closeTransport();
});

test("WebSocketConnection delivers the messages before a protocol error, then sends the Close once they are read", async () => {
  const peer = againstRawPeer("server");
  const { readable } = await peer.connection.opened;
  // A message and a violation in one read.
  const message = new FrameEncoder({ role: "client" });
  const chunks: Uint8Array[] = [];
  message.encode(frame(Opcode.Text, "before"), (c) => chunks.push(c.slice()));
  await peer.sendBytes(concat([...chunks, bytes(0x83, 0x80, 0, 0, 0, 0)]));
  await new Promise((r) => setTimeout(r, 20));
  // Not yet: the application has not read "before".
  assert.equal(peer.frames.length, 0);
  const reader = readable.getReader();
  assert.equal((await reader.read()).value, "before");
  await assert.rejects(reader.read(), { code: "reserved_opcode" });
  await rejectsWith(peer.connection.closed, "reserved_opcode", 1002);
  await peer.until(() => peer.transportClosed);
  assert.ok(isClose(peer.frames.at(-1), 1002));
  await peer.closeTransport();
});

test("WebSocketConnection sends the Close after a protocol error within closeTimeout even if the application never reads", async () => {
  const peer = againstRawPeer("server", { closeTimeout: 100 });
  await peer.connection.opened;
  const message = new FrameEncoder({ role: "client" });
  const chunks: Uint8Array[] = [];
  message.encode(frame(Opcode.Text, "unread"), (c) => chunks.push(c.slice()));
  await peer.sendBytes(concat([...chunks, bytes(0x83, 0x80, 0, 0, 0, 0)]));
  await peer.until(() => isClose(peer.frames.at(-1), 1002));
  await rejectsWith(peer.connection.closed, "reserved_opcode", 1002);
  await peer.until(() => peer.transportClosed);
  await peer.closeTransport();
});

test("WebSocketConnection fails with 1007 on invalid UTF-8 and 1009 on a message too big", async () => {
  const utf8 = againstRawPeer("client");
  utf8.send(frame(Opcode.Text, bytes(0xc0, 0x80)));
  await rejectsWith(utf8.connection.closed, "invalid_utf8", 1007);
  await utf8.until(() => utf8.transportClosed);
  assert.ok(isClose(utf8.frames.at(-1), 1007));

  const big = againstRawPeer("client", { maxMessageSize: 10 });
  big.send(frame(Opcode.Binary, new Uint8Array(11)));
  await rejectsWith(big.connection.closed, "message_too_big", 1009);
  await big.until(() => big.transportClosed);
  assert.ok(isClose(big.frames.at(-1), 1009));
});

test("an echo (readable.pipeTo(writable)) sends each text back byte for byte, and still fails invalid UTF-8 with 1007", async () => {
  // The direct pipe hands unfragmented texts on as checked bytes: they
  // must go out as the same Text frames, and bad ones must fail as before.
  const peer = againstRawPeer("client");
  const { readable, writable } = await peer.connection.opened;
  const echo = readable.pipeTo(writable).catch(() => {});
  const texts = [
    bytes(0x68, 0xc3, 0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9d, 0x84, 0x9e), // hé€𝄞
    bytes(0xef, 0xbb, 0xbf, 0x41), // a BOM, which is part of the text
    bytes(),
    new TextEncoder().encode("x".repeat(70_000)),
  ];
  for (const text of texts) peer.send(frame(Opcode.Text, text));
  // A fragmented text, a code point split between its fragments.
  peer.send(frame(Opcode.Text, bytes(0x61, 0xe2, 0x82), { fin: false }));
  peer.send(frame(Opcode.Continuation, bytes(0xac, 0x62)));
  await peer.until(() => peer.frames.length === texts.length + 1);
  assert.deepEqual(
    peer.frames.map((f) => [f.opcode, f.fin, [...f.payload]]),
    [...texts, bytes(0x61, 0xe2, 0x82, 0xac, 0x62)].map((
      t,
    ) => [Opcode.Text, true, [...t]]),
  );

  peer.send(frame(Opcode.Text, bytes(0x61, 0xed, 0xa0, 0x80))); // a surrogate
  await peer.until(() => peer.transportClosed);
  await rejectsWith(peer.connection.closed, "invalid_utf8", 1007);
  assert.ok(isClose(peer.frames.at(-1), 1007));
  assert.equal(peer.frames.length, texts.length + 2);
  await echo;
});

test("an echo fails a fragmented text with 1007 at the fragment that shows it is not UTF-8", async () => {
  // Passed on as bytes, a fragmented text is checked fragment by fragment
  // (§8.1): the failure comes before the message ends.
  for (
    const bad of [
      bytes(0xed, 0xa0), // the start of a surrogate
      bytes(0xe2, 0x82, 0x61), // a sequence cut by ASCII
      bytes(0xf5), // a byte that never begins a sequence
    ]
  ) {
    const peer = againstRawPeer("client");
    const { readable, writable } = await peer.connection.opened;
    readable.pipeTo(writable).catch(() => {});
    peer.send(frame(Opcode.Text, bytes(0x61, 0xc3), { fin: false }));
    peer.send(frame(Opcode.Continuation, bytes(0xa9), { fin: false }));
    peer.send(frame(Opcode.Continuation, bad, { fin: false }));
    await peer.until(() => peer.transportClosed);
    await rejectsWith(peer.connection.closed, "invalid_utf8", 1007);
    assert.equal(peer.frames.length, 1);
    assert.ok(isClose(peer.frames[0], 1007));
  }
});

test("an echo fragments a text it passes on as bytes at its own fragmentSize", async () => {
  const peer = againstRawPeer("client", { fragmentSize: 4 });
  const { readable, writable } = await peer.connection.opened;
  readable.pipeTo(writable).catch(() => {});
  const text = new TextEncoder().encode("héllo wörld");
  peer.send(frame(Opcode.Text, text));
  await peer.until(() => peer.frames.at(-1)?.fin === true);
  assert.deepEqual(
    peer.frames.map((f) => [f.opcode, f.fin, f.payload.length]),
    [
      [Opcode.Text, false, 4],
      [Opcode.Continuation, false, 4],
      [Opcode.Continuation, false, 4],
      [Opcode.Continuation, true, 1],
    ],
  );
  assert.deepEqual(concat(peer.frames.map((f) => f.payload)), text);
  peer.connection.close({ closeCode: 1000 });
});

test("an echo's pipe resolves when the peer closes while replies go out in fragments", async () => {
  // The reply's fragments and the peer's Close cross; the close handshake
  // ends the connection's writable right after the pipe's last write. An
  // ordinary pipe resolves there, and so must the direct one.
  for (const messages of [2, 3]) {
    const peer = againstRawPeer("client", { fragmentSize: 4 });
    const { readable, writable } = await peer.connection.opened;
    const echo = readable.pipeTo(writable);
    for (let i = 0; i < messages; i++) {
      peer.send(frame(Opcode.Text, new TextEncoder().encode("x".repeat(24))));
    }
    peer.send(frame(Opcode.Close, closeBody(1000)));
    await peer.until(() => isClose(peer.frames.at(-1)));
    await peer.closeTransport();
    assert.deepEqual(await peer.connection.closed, {
      closeCode: 1000,
      reason: "",
    });
    await echo;
  }
});

test("WebSocketConnection reports 1006 when the transport closes without a Close frame", async () => {
  const peer = againstRawPeer("client");
  const { readable, writable } = await peer.connection.opened;
  await peer.closeTransport();
  await rejectsWith(peer.connection.closed, "connection_lost", 1006);
  await assert.rejects(readable.getReader().read(), { closeCode: 1006 });
  await assert.rejects(writable.getWriter().write("x"), { closeCode: 1006 });
});

test("WebSocketConnection reports 1006 when the transport resets mid-frame", async () => {
  const peer = againstRawPeer("server");
  await peer.sendBytes(bytes(0x82, 0x85, 1, 2, 3, 4, 5));
  await peer.resetTransport();
  await rejectsWith(peer.connection.closed, "connection_lost", 1006);
});

test("WebSocketConnection reports 1006 when the transport ends mid-frame", async () => {
  const peer = againstRawPeer("server");
  await peer.sendBytes(bytes(0x82, 0x85, 1, 2, 3, 4, 5));
  await peer.closeTransport();
  await rejectsWith(peer.connection.closed, "unexpected_end", 1006);
});

test("WebSocketConnection drops a peer that never answers its Close after closeTimeout", async () => {
  const peer = againstRawPeer("server", { closeTimeout: 50 });
  await peer.connection.opened;
  const started = Date.now();
  peer.connection.close({ closeCode: 1000 });
  await rejectsWith(peer.connection.closed, "close_timeout", 1006);
  assert.ok(Date.now() - started >= 45);
  await peer.until(() => peer.transportClosed);
});

// Ping and pong, §5.5.2 and §5.5.3.

test("WebSocketConnection answers a ping with a pong carrying the same data", async () => {
  const peer = againstRawPeer("server");
  peer.send(frame(Opcode.Ping, "are you there"));
  await peer.until(() => peer.frames.length > 0);
  assert.deepEqual(peer.frames[0], frame(Opcode.Pong, "are you there"));
  peer.connection.close();
  await peer.closeTransport();
});

test("WebSocketConnection with autoPong off leaves pings unanswered", async () => {
  const peer = againstRawPeer("server", { autoPong: false });
  peer.send(frame(Opcode.Ping, "x"));
  peer.send(frame(Opcode.Close, closeBody(1000)));
  await peer.until(() => peer.transportClosed);
  await peer.closeTransport();
  assert.deepEqual(peer.frames.map((f) => f.opcode), [Opcode.Close]);
  await peer.connection.closed;
});

test("WebSocketConnection.ping resolves when its pong arrives", async () => {
  const { client, server } = pair();
  await client.ping();
  await server.ping("from server");
  client.close();
  await Promise.all([client.closed, server.closed]);
});

test("WebSocketConnection.ping rejects when the connection closes first", async () => {
  const { client } = pair({}, { autoPong: false });
  const pong = client.ping();
  client.close();
  await assert.rejects(pong);
  await client.closed;
});

test("WebSocketConnection heartbeat drops a peer that stops answering, with 1006", async () => {
  const { client, server } = pair(
    { heartbeat: { interval: 20, timeout: 20 } },
    { autoPong: false },
  );
  await rejectsWith(client.closed, "heartbeat_timeout", 1006);
  await assert.rejects(server.closed);
});

test("WebSocketConnection heartbeat keeps a live connection open", async () => {
  const { client, server } = pair({ heartbeat: { interval: 10 } });
  await sleep(80);
  client.close({ closeCode: 1000 });
  assert.deepEqual(await server.closed, { closeCode: 1000, reason: "" });
});

test("WebSocketConnection idleTimeout closes a silent connection with 1001", async () => {
  const { client, server } = pair({}, { idleTimeout: 20 });
  assert.deepEqual(await client.closed, {
    closeCode: 1001,
    reason: "idle timeout",
  });
  assert.deepEqual(await server.closed, { closeCode: 1001, reason: "" });
});

test("WebSocketConnection idleTimeout counts messages as activity, not only pings", async () => {
  const { client, server } = pair({}, { idleTimeout: 30 });
  const { writable } = await client.opened;
  const { readable } = await server.opened;
  const writer = writable.getWriter();
  const reader = readable.getReader();
  // Five idle timeouts' worth of messages, one every 10 ms.
  for (let i = 0; i < 15; i++) {
    await writer.write(`${i}`);
    assert.equal((await reader.read()).value, `${i}`);
    await sleep(10);
  }
  client.close({ closeCode: 1000 });
  assert.deepEqual(await server.closed, { closeCode: 1000, reason: "" });
});

// Backpressure.

test("WebSocketConnection stops reading the transport while messages go unread", async () => {
  const peer = againstRawPeer("client");
  const { readable } = await peer.connection.opened;
  let sent = 0;
  let settled = 0;
  for (let i = 0; i < 200; i++) {
    sent++;
    peer.sendBytes(bytes(0x82, 0x01, i & 0xff)).then(() => settled++);
  }
  await sleep(50);
  assert.ok(
    settled < 50,
    `${settled} of ${sent} writes were taken with no reader`,
  );
  const reader = readable.getReader();
  for (let i = 0; i < 200; i++) await reader.read();
  await sleep(10);
  assert.equal(settled, 200);
  peer.connection.close();
  await peer.closeTransport();
});

test("WebSocketConnection write() resolves only when the transport has room", async () => {
  const [ours, theirs] = duplexPair();
  const connection = new WebSocketConnection(ours, {
    role: "server",
    closeTimeout: 50,
  });
  const { writable } = await connection.opened;
  const writer = writable.getWriter();
  let resolved = 0;
  for (let i = 0; i < 100; i++) {
    writer.write(new Uint8Array(1000)).then(() => resolved++, () => {});
  }
  await sleep(50);
  assert.ok(
    resolved < 20,
    `${resolved} writes resolved with nobody reading the transport`,
  );
  const reader = theirs.readable.getReader();
  // 100 frames of 4 header bytes and 1000 payload bytes, in any chunking.
  for (let bytes = 0; bytes < 100 * 1004;) {
    bytes += (await reader.read()).value!.length;
  }
  await sleep(10);
  assert.equal(resolved, 100);
  // The peer stops reading and never answers the Close: whether the Close
  // frame was still pending (connection_lost) or already out (close_timeout)
  // depends on timing; either way it is a 1006.
  connection.close();
  await reader.cancel();
  await assert.rejects(connection.closed, {
    name: "WebSocketError",
    closeCode: 1006,
  });
});

// Cancel and abort.

test("Cancelling a WebSocketConnection's readable closes the connection", async () => {
  const { client, server } = pair();
  const { readable } = await client.opened;
  await readable.cancel();
  assert.deepEqual(await server.closed, { closeCode: 1005, reason: "" });
  await client.closed;
});

test("Closing or aborting a WebSocketConnection's writable closes the connection", async () => {
  for (const how of ["close", "abort"] as const) {
    const { client, server } = pair();
    const { writable } = await client.opened;
    await writable[how]();
    assert.deepEqual(await server.closed, { closeCode: 1005, reason: "" }, how);
    await client.closed;
  }
});

test("WebSocketConnection over a promised transport opens when it resolves, and fails if it rejects", async () => {
  const [a, b] = duplexPair();
  const client = new WebSocketConnection(
    Promise.resolve({ ...a, protocol: "chat", extensions: "" }),
    { role: "client" },
  );
  const server = new WebSocketConnection(b, { role: "server" });
  assert.equal((await client.opened).protocol, "chat");
  client.close();
  await Promise.all([client.closed, server.closed]);

  const failed = new WebSocketConnection(Promise.reject(new Error("refused")), {
    role: "client",
  });
  await assert.rejects(failed.opened, /refused/);
  await assert.rejects(failed.closed, /refused/);
});

test("WebSocketConnection.close before it opens closes as soon as it does", async () => {
  const [a, b] = duplexPair();
  const client = new WebSocketConnection(Promise.resolve(a), {
    role: "client",
  });
  client.close({ closeCode: 1000 });
  const server = new WebSocketConnection(b, { role: "server" });
  assert.deepEqual(await server.closed, { closeCode: 1000, reason: "" });
  const closed: WebSocketCloseInfo = await client.closed;
  assert.equal(closed.closeCode, 1000);
});

test("WebSocketConnection.ping: pings with the same data each get their pong", async () => {
  const { client, server } = pair();
  await Promise.all([
    client.ping("same"),
    client.ping("same"),
    client.ping("same"),
  ]);
  client.close();
  await Promise.all([client.closed, server.closed]);
});

test("WebSocketConnection.ping: a pong answers its ping and every earlier one (§5.5.3)", async () => {
  const peer = againstRawPeer("server");
  await peer.connection.opened;
  const first = peer.connection.ping("1");
  const second = peer.connection.ping("2");
  await peer.until(() => peer.frames.length === 2);
  peer.send(frame(Opcode.Pong, "2")); // only the latest is answered
  await Promise.all([first, second]);
  peer.send(frame(Opcode.Close, closeBody(1000)));
  await peer.until(() => peer.transportClosed);
  await peer.closeTransport();
  await peer.connection.closed;
});

test("WebSocketConnection.close with a reason and no code closes with 1000", async () => {
  const { client, server } = pair();
  client.close({ reason: "just because" });
  assert.deepEqual(await server.closed, {
    closeCode: 1000,
    reason: "just because",
  });
  await client.closed;
});

test("WebSocketConnection.close completes while received messages go unread", async () => {
  const { client, server } = pair({}, { closeTimeout: 1000 });
  const c = await client.opened;
  await server.opened;
  c.readable.pipeTo(new WritableStream()).catch(() => {});
  const writer = c.writable.getWriter();
  // Writes past what the transport buffers stay pending: not awaited.
  for (let i = 0; i < 10; i++) writer.write(`unread ${i}`).catch(() => {});
  await sleep(20);
  server.close({ closeCode: 1000, reason: "done" });
  assert.deepEqual(await server.closed, { closeCode: 1000, reason: "" });
  assert.deepEqual(await client.closed, { closeCode: 1000, reason: "done" });
});

test("WebSocketConnection: a protocol error in the bytes past the handshake closes with 1002 and leaves no timer", async () => {
  // Node lists the timers that keep the process alive; Deno and Bun have
  // no such list, and the test checks the close alone there.
  const timers = () =>
    (globalThis as {
      process?: { getActiveResourcesInfo?: () => string[] };
    }).process?.getActiveResourcesInfo?.().filter((name) => name === "Timeout")
      .length;
  const before = timers();
  const [ours, theirs] = duplexPair();
  const connection = new WebSocketConnection(
    // An unmasked frame from a client: §5.1, 1002.
    Promise.resolve({ ...ours, head: bytes(0x81, 0x00) }),
    {
      role: "server",
      idleTimeout: 60_000,
      heartbeat: { interval: 60_000 },
      closeTimeout: 60_000,
    },
  );
  const sent = (async () => {
    const chunks: Uint8Array[] = [];
    for await (const chunk of theirs.readable) chunks.push(chunk);
    return chunks;
  })();
  await assert.rejects(
    connection.closed,
    (error: WebSocketError) => error.closeCode === 1002,
  );
  const frames: Frame[] = [];
  const decoder = new FrameDecoder({ role: "client" });
  for (const chunk of await sent) decoder.push(chunk, (f) => frames.push(f));
  assert.deepEqual(frames.map((f) => [f.opcode, f.payload[0], f.payload[1]]), [
    [Opcode.Close, 0x03, 0xea],
  ]);
  await theirs.writable.close();
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(timers(), before);
});
