// RFC 6455 §5.4, fragmentation: how fragments make a message, what may
// come between them, and what may not (Autobahn cases 5.x), with messages
// of 65,537 fragments and large fragmented messages (9.3, 9.4); and our
// own endpoints fragmenting what they send (10.1). See _peer.ts.

import assert from "node:assert/strict";
import { test } from "node:test";
import {
  assertClosedInOrder,
  assertTransport,
  B,
  binary,
  type Case,
  close,
  connect,
  cont,
  forEachEndpoint,
  OP,
  pattern,
  ping,
  pongs,
  register,
  T,
  text,
  type WireFrame,
} from "./_peer.ts";

/** A message cut into fragments of `size` bytes (the last may be shorter). */
function fragments(
  opcode: number,
  payload: Uint8Array,
  size: number,
): WireFrame[] {
  const out: WireFrame[] = [];
  for (let at = 0; at === 0 || at < payload.length; at += size) {
    out.push({
      opcode: at === 0 ? opcode : OP.cont,
      payload: payload.subarray(at, at + size),
      fin: at + size >= payload.length,
    });
  }
  return out;
}

const utf8 = new TextEncoder();

/** Text of `length` bytes of UTF-8 mixing 1-, 2-, 3- and 4-byte characters. */
function mixedText(length: number): Uint8Array {
  const unit = utf8.encode("aé€😀"); // 1 + 2 + 3 + 4 bytes
  const out = new Uint8Array(length);
  for (let i = 0; i + unit.length <= length; i += unit.length) out.set(unit, i);
  out.fill(0x61, length - (length % unit.length));
  return out;
}

// §5.4: "An unfragmented message consists of a single frame with the FIN
// bit set and an opcode other than 0. A fragmented message consists of a
// single frame with the FIN bit clear and an opcode other than 0, followed
// by zero or more frames with the FIN bit clear and the opcode set to 0,
// and terminated by a single frame with the FIN bit set and an opcode of 0."
const valid: Case[] = [
  {
    name: "§5.4 (5.3) echoes a text message in two fragments, in one write",
    send: [[text("fragment1", false), cont("fragment2")]],
    expect: [T("fragment1fragment2")],
  },
  {
    name: "§5.4 (5.4) echoes a text message in two fragments, in two writes",
    send: [text("fragment1", false), cont("fragment2")],
    expect: [T("fragment1fragment2")],
  },
  {
    name: "§5.4 (5.5) echoes a text message in two fragments, in 1-byte writes",
    send: [text("fragment1", false), cont("fragment2")],
    chop: 1,
    expect: [T("fragment1fragment2")],
  },
  {
    name: "§5.4 echoes a binary message in three fragments",
    send: [
      binary(pattern(3), false),
      cont(pattern(200), false),
      cont(pattern(70000)),
    ],
    expect: [
      B(new Uint8Array([...pattern(3), ...pattern(200), ...pattern(70000)])),
    ],
  },
  {
    name: "§5.4 (6.1) echoes a text message of empty fragments",
    send: [text("", false), cont("", false), cont("")],
    expect: [T("")],
  },
  {
    name: "§5.4 echoes a message whose first and last fragments are empty",
    send: [binary("", false), cont("middle", false), cont("")],
    expect: [B("middle")],
  },
  {
    name: "§5.4 a message's fragments may arrive together, with pings between",
    send: [[
      text("a", false),
      ping("1"),
      cont("b", false),
      ping("2"),
      cont("c"),
    ]],
    expect: [...pongs("1", "2"), T("abc")],
  },
  {
    name: "§5.4 fragmented messages one after another keep their own types",
    send: [
      text("t1", false),
      cont("t2"),
      binary("b1", false),
      cont("b2"),
      text("whole"),
    ],
    expect: [T("t1t2"), B("b1b2"), T("whole")],
  },
  {
    name:
      "§5.4 a message of 65,537 fragments of one byte each, code points split between them",
    send: [fragments(OP.text, mixedText(65537), 1)],
    expect: [T(mixedText(65537))],
    timeout: 15000,
  },
  {
    name: "§5.4 a message of 65,537 fragments, most of them empty",
    send: [[
      binary(pattern(1), false),
      ...Array.from(
        { length: 65535 },
        (_, i) => cont(i % 4096 === 0 ? pattern(3) : "", false),
      ),
      cont(pattern(1)),
    ]],
    expect: [
      B(
        new Uint8Array([
          ...pattern(1),
          ...Array.from({ length: 16 }, () => [...pattern(3)]).flat(),
          ...pattern(1),
        ]),
      ),
    ],
    timeout: 15000,
  },
];

// 9.3 and 9.4: a 4 MiB message in fragments of 64 B to 4 MiB.
const FRAGMENT_SIZES = [64, 1024, 65536, 1048576];
const large: Case[] = FRAGMENT_SIZES.flatMap((size): Case[] => [
  {
    name: `§5.4 (9.3) echoes 4 MiB of text in ${size}-byte fragments`,
    send: [fragments(OP.text, mixedText(4 << 20), size)],
    expect: [T(mixedText(4 << 20))],
    timeout: 20000,
  },
  {
    name: `§5.4 (9.4) echoes 4 MiB of binary in ${size}-byte fragments`,
    send: [fragments(OP.binary, pattern(4 << 20), size)],
    expect: [B(pattern(4 << 20))],
    timeout: 20000,
  },
]);

// §5.4: a continuation with no message open, or a new data frame inside
// one, breaks the rules above: §7.1.7 _Fail the WebSocket Connection_ with
// 1002 (§7.4.1: "a protocol error").
const invalid: Case[] = [
  {
    name: "§5.4 (5.9) fails a final continuation with no message (1002)",
    send: [cont("non-continuation payload"), text("Hello, world!")],
    close: 1002,
  },
  {
    name:
      "§5.4 (5.10) fails a final continuation with no message, in 1-byte writes (1002)",
    send: [cont("non-continuation payload"), text("Hello, world!")],
    chop: 1,
    close: 1002,
  },
  {
    name: "§5.4 (5.12) fails a non-final continuation with no message (1002)",
    send: [cont("fragment1", false), text("Hello, world!")],
    close: 1002,
  },
  {
    name:
      "§5.4 (5.15) fails a continuation after a finished fragmented message (1002)",
    send: [
      text("fragment1", false),
      cont("fragment2"),
      { wait: 1 },
      cont("fragment3", false),
      text("fragment4"),
    ],
    expect: [T("fragment1fragment2")],
    close: 1002,
  },
  {
    name:
      "§5.4 (5.15, strict) echoes a fragmented message that came in the same read as a stray continuation (1002)",
    send: [[
      text("fragment1", false),
      cont("fragment2"),
      cont("fragment3", false),
      text("fragment4"),
    ]],
    expect: [T("fragment1fragment2")],
    close: 1002,
  },
  {
    name: "§5.4 (5.16) fails continuation, text, continuation (1002)",
    send: [
      cont("fragment1", false),
      text("fragment2", false),
      cont("fragment3"),
    ],
    close: 1002,
  },
  {
    name:
      "§5.4 (5.17) fails final continuation, final-less text, final continuation (1002)",
    send: [cont("fragment1"), text("fragment2", false), cont("fragment3")],
    close: 1002,
  },
  {
    name: "§5.4 (5.18) fails a text frame where a continuation belongs (1002)",
    send: [text("fragment1", false), text("fragment2")],
    close: 1002,
  },
  {
    name: "§5.4 fails a binary frame where a continuation belongs (1002)",
    send: [text("fragment1", false), binary("fragment2")],
    close: 1002,
  },
  {
    name: "§5.4 fails a continuation after a whole message (1002)",
    send: [binary("whole"), { wait: 1 }, cont("more")],
    expect: [B("whole")],
    close: 1002,
  },
  {
    name:
      "§5.4 fails a second message begun inside one, in 1-byte writes (1002)",
    send: [binary("a", false), binary("b", false)],
    chop: 1,
    close: 1002,
  },
];

register(test, [...valid, ...large, ...invalid]);

// §5.4: "An endpoint MAY fragment a message" and, from the sending side,
// messages larger than fragmentSize go out in fragments of that size
// (10.1.1: 64 KiB sent with fragments of 1300 bytes), which the peer must
// read back as the same message.
forEachEndpoint(
  test,
  "§5.4 (10.1) sends a 65,536-byte message in fragments of fragmentSize",
  async (role, transport) => {
    const session = await connect(role, { fragmentSize: 1300 }, transport);
    const { peer, dispose } = session;
    try {
      assertTransport(session, transport);
      const sizes: number[] = [];
      const opcodes: number[] = [];
      const message = mixedText(65536);
      // Watch the raw frames our endpoint sends, as well as the log.
      const raw: Uint8Array[] = [];
      peer.pipe.on("data", (chunk: Uint8Array) => raw.push(chunk));
      await peer.send([text(message)]);
      await peer.until(() => peer.log.length >= 1, 10000);
      assert.deepEqual(peer.log, [T(message)]);
      // Parse the frame headers (server → client frames are unmasked,
      // client → server masked: the mask bit sets the header size).
      const all = Buffer.concat(raw);
      for (let at = 0; at < all.length;) {
        const b1 = all[at + 1];
        let length = b1 & 0x7f;
        let header = 2;
        if (length === 126) {
          length = all.readUInt16BE(at + 2);
          header += 2;
        }
        if (b1 & 0x80) header += 4;
        opcodes.push(all[at] & 0x8f);
        sizes.push(length);
        at += header + length;
      }
      const count = Math.ceil(65536 / 1300);
      assert.equal(sizes.length, count);
      assert.ok(sizes.slice(0, -1).every((size) => size === 1300));
      assert.equal(sizes.at(-1), 65536 - 1300 * (count - 1));
      // Text without FIN, continuations without FIN, a final continuation.
      assert.deepEqual(opcodes, [
        0x01,
        ...new Array(count - 2).fill(0x00),
        0x80,
      ]);
      await peer.send([close(1000)]);
      assert.ok(await peer.until(() => peer.ended, 5000));
      await assertClosedInOrder(peer);
    } finally {
      await dispose();
    }
  },
);
