// RFC 6455 §5.5.1 and §7, closing: the Close frame's body, which codes may
// be sent, answering a Close once, nothing after it, and the TCP
// connection closed afterwards (Autobahn cases 7.x). See _peer.ts.

import assert from "node:assert/strict";
import { test } from "node:test";
import { WebSocketError } from "../../src/errors.ts";
import {
  assertClosedInOrder,
  assertTransport,
  binary,
  type Case,
  close,
  connect,
  cont,
  forEachEndpoint,
  maybe,
  OP,
  ping,
  register,
  ROLES,
  T,
  testName,
  text,
  TRANSPORTS,
} from "./_peer.ts";

// §5.5.1: "If an endpoint receives a Close frame and did not previously
// send a Close frame, the endpoint MUST send a Close frame in response.
// [...] It SHOULD do so as soon as practical." and "After sending a Close
// frame, the endpoint MUST NOT send any more data frames"; §5.5.2: no pong
// is owed to a ping after a Close ("unless it already received a Close
// frame"). Every case here ends with our endpoint's Close and the end of
// the TCP connection (§7.1.1).
const handshake: Case[] = [
  {
    name: "§5.5.1 (7.1.1) echoes a message, then answers a Close with 1000",
    send: [text("Hello World!"), { wait: 1 }, close(1000)],
    expect: [T("Hello World!")],
    close: 1000,
  },
  {
    name: "§5.5.1 (7.1.2) answers the first of two Close frames, once",
    send: [close(1000), close(1000)],
    close: 1000,
  },
  {
    name: "§5.5.2 (7.1.3) sends no pong for a ping after the Close",
    send: [close(1000), ping("after close")],
    close: 1000,
  },
  {
    name: "§5.5.1 (7.1.4) echoes no message that comes after the Close",
    send: [close(1000), text("after close")],
    close: 1000,
  },
  {
    name:
      "§5.5.1 (7.1.5) a Close between two fragments ends it; the second is ignored",
    send: [text("fragment1", false), close(1000), cont("fragment2")],
    close: 1000,
  },
  {
    name:
      "§5.5.1 (7.1.6) a Close behind a 256 KiB message: the message, maybe, then the Close",
    // The RFC lets our endpoint answer the Close before its application
    // has echoed the message ("MAY delay sending a Close frame until its
    // current message is sent"): the echo is optional, the Close is not.
    send: [[text("BAsd7&jh23".repeat(26215).slice(0, 262144)), close(1000)]],
    expect: [maybe(T("BAsd7&jh23".repeat(26215).slice(0, 262144)))],
    close: 1000,
  },
  {
    name: "§5.5.1 bytes after the Close frame, even invalid ones, are ignored",
    send: [[close(1000), { opcode: 0x3, payload: "reserved" }]],
    close: 1000,
  },
  {
    name: "§5.5.1 a Close that arrives in 1-byte writes is answered",
    send: [close(1000, "bye")],
    chop: 1,
    close: 1000,
  },
];

// §5.5.1: "If there is a body, the first two bytes of the body MUST be a
// 2-byte unsigned integer [...] representing a status code"; "Following
// the 2-byte integer, the body MAY contain UTF-8-encoded data"; §5.5: at
// most 125 bytes in all.
const bodies: Case[] = [
  {
    name: "§5.5.1 (7.3.1) answers an empty Close with an empty Close",
    send: [close()],
    close: null,
  },
  {
    name: "§5.5.1 (7.3.2) fails a Close with a 1-byte body (1002)",
    send: [{ opcode: OP.close, payload: new Uint8Array([0x03]) }],
    close: 1002,
    fails: true,
  },
  {
    name: "§5.5.1 (7.3.3) answers a Close with code 1000 and no reason",
    send: [close(1000)],
    close: 1000,
  },
  {
    name: "§5.5.1 (7.3.4) answers a Close with code 1000 and a reason",
    send: [close(1000, "Hello World!")],
    close: 1000,
  },
  {
    name: "§5.5.1 (7.3.5) answers a Close with a 123-byte reason",
    send: [close(1000, "*".repeat(123))],
    close: 1000,
  },
  {
    name:
      "§5.5 (7.3.6) fails a Close with a 124-byte reason: a 126-byte control frame (1002)",
    send: [close(1000, "*".repeat(124))],
    close: 1002,
    fails: true,
  },
  {
    name: "§8.1 (7.5.1) fails a Close whose reason is not UTF-8 (1007)",
    send: [
      close(
        1000,
        new Uint8Array([
          0xce,
          0xba,
          0xe1,
          0xbd,
          0xb9,
          0xcf,
          0x83,
          0xce,
          0xbc,
          0xce,
          0xb5,
          0xed,
          0xa0,
          0x80,
          0x65,
          0x64,
        ]),
      ),
    ],
    close: 1007,
    fails: true,
  },
  {
    name:
      "§8.1 accepts a Close whose reason is multi-byte UTF-8 cut at no code point",
    send: [close(4000, "κόσμε 😀")],
    close: 4000,
  },
];

// §7.4.1 defines 1000–1003 and 1007–1011 (and 1012–1014 are registered
// since); §7.4.2: "0-999: Status codes in the range 0-999 are not used",
// "1000-2999 [...] reserved for definition by this protocol", "3000-3999
// [...] libraries, frameworks, and applications", "4000-4999 [...]
// private use". 1004 is reserved, 1005, 1006 and 1015 "MUST NOT be set as
// a status code in a Close control frame by an endpoint". A received code
// that may not be sent is a protocol error.
const VALID_CODES = [
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
  3999,
  4000,
  4999,
];
const INVALID_CODES = [
  0,
  999,
  1004,
  1005,
  1006,
  1015,
  1016,
  1100,
  2000,
  2999,
  5000,
  65535,
];
const codes: Case[] = [
  ...VALID_CODES.map((code): Case => ({
    name: `§7.4 (7.7) answers a Close with code ${code}, echoing the code`,
    send: [close(code, "reason")],
    close: code,
  })),
  ...INVALID_CODES.map((code): Case => ({
    name: `§7.4 (7.9, 7.13) fails a Close with code ${code} (1002)`,
    send: [close(code)],
    close: 1002,
    fails: true,
  })),
];

// §7.1.7: after a protocol error our endpoint sends its Close and closes
// the connection without waiting for the peer's answer, and reads nothing
// more (a ping behind the error gets no pong).
const failing: Case[] = [
  {
    name:
      "§7.1.7 fails the connection: Close 1002, TCP closed, nothing read after",
    send: [[{ opcode: 0x4 }, ping("ignored"), text("ignored")]],
    close: 1002,
  },
  {
    name:
      "§7.1.7 the Close for a failure goes out behind what was already sent",
    send: [binary("first"), { wait: 1 }, cont("orphan")],
    expect: ["binary 6669727374"],
    close: 1002,
  },
];

register(test, [...handshake, ...bodies, ...codes, ...failing]);

// §7.1.1: "The underlying TCP connection, in most normal cases, SHOULD be
// closed first by the server". Our server closes it right after the close
// handshake; our client waits for the server to close it, then closes too.
// Over HTTP/2 the stream stands for the TCP connection, and END_STREAM
// for its close (RFC 8441 §5).
forEachEndpoint(
  test,
  (_role, transport) =>
    `§7.1.1 the close handshake started by our endpoint, then ${
      transport === "tcp" ? "the TCP close" : "END_STREAM"
    }`,
  async (role, transport) => {
    const session = await connect(role, {}, transport);
    const { peer, ours, dispose } = session;
    try {
      assertTransport(session, transport);
      ours.close({ closeCode: 4001, reason: "done" });
      assert.ok(await peer.until(() => peer.log.length >= 1, 5000));
      assert.deepEqual(peer.log, ["close 4001"]);
      // The peer answers (see Peer in _peer.ts). Our server then closes
      // the TCP connection without waiting for the client to; our client
      // leaves that to the server (the peer ends it once the Close frames
      // have crossed), then ends its side.
      assert.ok(await peer.until(() => peer.ended, 5000));
      assert.deepEqual(peer.log, ["close 4001", "eof"]);
      await assertClosedInOrder(peer);
      assert.deepEqual(await ours.closed, { closeCode: 4001, reason: "" });
    } finally {
      await dispose();
    }
  },
);

// §7.1.5: "If _The WebSocket Connection is Closed_ and no Close control
// frame was received by the endpoint (such as could occur if the
// underlying transport connection is lost), _The WebSocket Connection
// Close Code_ is considered to be 1006." The peer closes the connection
// with no Close frame: in order (a TCP FIN; over HTTP/2, END_STREAM), or
// with a reset (a TCP RST; over HTTP/2, RST_STREAM CANCEL: RFC 8441 §5).
// After the FIN, our endpoint closes its side and sends no Close frame.
const DROPS = {
  ends: {
    tcp: "closes the TCP connection (FIN)",
    h2: "ends the stream (END_STREAM)",
  },
  resets: {
    tcp: "resets the TCP connection (RST)",
    h2: "resets the stream (RST_STREAM CANCEL)",
  },
} as const;
for (const [how, whats] of Object.entries(DROPS)) {
  for (const transport of TRANSPORTS) {
    const what = whats[transport];
    for (const role of ROLES) {
      test(
        testName(
          role,
          transport,
          `§7.1.5 the peer ${what} with no Close: closed rejects with 1006`,
        ),
        async () => {
          const session = await connect(role, {}, transport);
          const { peer, ours, dispose } = session;
          try {
            assertTransport(session, transport);
            await peer.send([text("before")]);
            assert.ok(await peer.until(() => peer.log.length >= 1, 5000));
            if (how === "ends") peer.pipe.end();
            else peer.reset();
            await assert.rejects(
              ours.closed,
              (error) =>
                error instanceof WebSocketError && error.closeCode === 1006,
            );
            if (how === "ends") {
              assert.ok(await peer.until(() => peer.ended, 5000));
              assert.deepEqual(peer.log, [T("before"), "eof"]);
              await assertClosedInOrder(peer);
            }
          } finally {
            await dispose();
          }
        },
      );
    }
  }
}
