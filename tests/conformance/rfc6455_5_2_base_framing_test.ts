// RFC 6455 §5.1–§5.3, base framing: payload lengths in each encoding,
// masking, reserved bits and reserved opcodes, on the wire against our
// server and our client (Autobahn cases 1.x, 3.x and 4.x cover the same
// ground). See _peer.ts for how a case runs.

import { test } from "node:test";
import {
  B,
  binary,
  type Case,
  close,
  cont,
  ECHO_LIMIT,
  OP,
  pattern,
  ping,
  register,
  T,
  text,
  wait,
} from "./_peer.ts";

/** ASCII text of an exact length. */
function ascii(length: number): string {
  let out = "";
  const word = "Hello, WebSocket! ";
  while (out.length < length) out += word;
  return out.slice(0, length);
}

// §5.2: "The length of the "Payload data", in bytes: if 0-125, that is the
// payload length. If 126, the following 2 bytes [...] If 127, the following
// 8 bytes". The edges of each encoding, both kinds of message.
const SIZES = [0, 1, 125, 126, 127, 128, 65535, 65536];

const lengths: Case[] = SIZES.flatMap((size): Case[] => [
  {
    name: `§5.2 (1.1) echoes a ${size}-byte text message`,
    send: [text(ascii(size))],
    expect: [T(ascii(size))],
  },
  {
    name: `§5.2 (1.2) echoes a ${size}-byte binary message`,
    send: [binary(pattern(size, size))],
    expect: [B(pattern(size, size))],
  },
]);

const chopped: Case[] = [
  {
    name:
      "§5.2 (1.1.8) echoes a 65536-byte text message sent in 997-byte writes",
    send: [text(ascii(65536))],
    chop: 997,
    expect: [T(ascii(65536))],
  },
  {
    name:
      "§5.2 (1.2.8) echoes a 65536-byte binary message sent in 997-byte writes",
    send: [binary(pattern(65536))],
    chop: 997,
    expect: [B(pattern(65536))],
  },
  {
    name: "§5.2 reads frames chopped into 1-byte TCP writes",
    send: [
      text("Hello"),
      binary(pattern(130)),
      wait(2),
      text("x", false),
      ping("p"),
      cont("yz"),
    ],
    chop: 1,
    expect: [T("Hello"), B(pattern(130)), "pong 70", T("xyz")],
  },
  {
    name: "§5.2 reads a 16-bit length split between two writes",
    send: [{ ...binary(pattern(300)), parts: [-1] }],
    expect: [B(pattern(300))],
  },
  {
    name: "§5.2 reads a 64-bit length split between two writes",
    send: [{ ...binary(pattern(70000)), parts: [-5, -4] }],
    expect: [B(pattern(70000))],
  },
  {
    name: "§5.2 reads a frame whose payload arrives in three writes",
    send: [{ ...text(ascii(1000)), parts: [1, 500] }],
    expect: [T(ascii(1000))],
  },
  {
    name: "§5.2 reads several frames that arrive in one write",
    send: [[ping("p"), text("one"), binary(pattern(200)), text("two")]],
    expect: ["pong 70", T("one"), B(pattern(200)), T("two")],
  },
];

// §5.2: "the most significant bit MUST be 0" in the 64-bit length.
// §10.4: a frame beyond our limit is refused on its header (1009), before
// its payload is read: the peer sends only the header.
const lengthLimits: Case[] = [
  {
    name: "§5.2 fails a 64-bit length with its most significant bit set (1002)",
    send: [text("ok"), wait(), { opcode: OP.binary, declaredLength: 2 ** 63 }],
    expect: [T("ok")],
    close: 1002,
  },
  {
    name: "§10.4 refuses a frame over maxFrameSize on its header (1009)",
    send: [{ opcode: OP.binary, declaredLength: ECHO_LIMIT + 1 }],
    close: 1009,
  },
  {
    name: "§10.4 refuses a 2^53-byte frame on its header (1009)",
    send: [{ opcode: OP.text, declaredLength: 2 ** 53 }],
    close: 1009,
  },
];

// §5.1: "The server MUST close the connection upon receiving a frame that
// is not masked. [...] A client MUST close a connection if it detects a
// masked frame." §7.4.1: 1002.
const masking: Case[] = [
  {
    name: "§5.1 the server fails the connection on an unmasked frame (1002)",
    roles: ["server"],
    send: [text("ok"), wait(), { ...text("bare"), masked: false }],
    expect: [T("ok")],
    close: 1002,
  },
  {
    name: "§5.1 the server fails the connection on an unmasked ping (1002)",
    roles: ["server"],
    send: [{ ...ping("bare"), masked: false }],
    close: 1002,
  },
  {
    name: "§5.1 the client fails the connection on a masked frame (1002)",
    roles: ["client"],
    send: [text("ok"), wait(), { ...text("masked"), masked: true }],
    expect: [T("ok")],
    close: 1002,
  },
  {
    name: "§5.1 the client fails the connection on a masked close (1002)",
    roles: ["client"],
    send: [{ ...close(1000), masked: true }],
    close: 1002,
    fails: true,
  },
  {
    name: "§5.3 the server unmasks with an all-zero key",
    roles: ["server"],
    // A zero key is a key like any other ("masking-key ... 32-bit value").
    send: [hexFrame("81 85 00 00 00 00 48 65 6c 6c 6f")],
    expect: [T("Hello")],
  },
  {
    name: "§5.7 the server reads the RFC's masked 'Hello'",
    roles: ["server"],
    send: [hexFrame("81 85 37 fa 21 3d 7f 9f 4d 51 58")],
    expect: [T("Hello")],
  },
  {
    name:
      "§5.7 the client reads the RFC's unmasked 'Hello' and 256-byte binary",
    roles: ["client"],
    send: [
      hexFrame("81 05 48 65 6c 6c 6f"),
      new Uint8Array([0x82, 0x7e, 0x01, 0x00, ...pattern(256)]),
    ],
    expect: [T("Hello"), B(pattern(256))],
  },
];

function hexFrame(bytes: string): Uint8Array {
  return new Uint8Array(bytes.split(" ").map((b) => parseInt(b, 16)));
}

// §5.2: "RSV1, RSV2, RSV3: 1 bit each. MUST be 0 unless an extension is
// negotiated that defines meanings for non-zero values. If a nonzero value
// is received and none of the negotiated extensions defines the meaning of
// such a nonzero value, the receiving endpoint MUST _Fail the WebSocket
// Connection_." Every combination, on each kind of frame, after a valid
// message (which must come back) and before a ping (which must not).
const reserved: Case[] = [1, 2, 3, 4, 5, 6, 7].flatMap((rsv): Case[] =>
  (
    [
      ["text", text("rsv")],
      ["binary", binary(pattern(4))],
      ["continuation", cont("rsv")],
      ["ping", ping("rsv")],
      ["pong", { opcode: OP.pong, payload: "rsv" }],
      ["close", close(1000)],
    ] as const
  ).map(([kind, frame]): Case => {
    const lead = kind === "continuation" ? [text("a", false)] : [];
    return {
      name: `§5.2 (3.x) fails RSV=${rsv} on a ${kind} frame (1002)`,
      send: [text("before"), wait(), ...lead, { ...frame, rsv }, ping("after")],
      expect: [T("before")],
      close: 1002,
      fails: true,
    };
  })
);

// §5.2: "Opcode: 4 bits [...] %x3-7 are reserved for further non-control
// frames, %xB-F are reserved for further control frames"; §5.2 again: an
// unknown opcode MUST _Fail the WebSocket Connection_.
const RESERVED_OPCODES = [3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf];
const opcodes: Case[] = RESERVED_OPCODES.flatMap((opcode): Case[] => [
  {
    name: `§5.2 (4.x) fails reserved opcode 0x${opcode.toString(16)} (1002)`,
    send: [{ opcode }],
    close: 1002,
  },
  {
    name: `§5.2 (4.x) fails reserved opcode 0x${
      opcode.toString(16)
    } with a payload, after a message and before a ping (1002)`,
    send: [
      text("before"),
      wait(),
      { opcode, payload: "reserved" },
      ping("after"),
    ],
    expect: [T("before")],
    close: 1002,
  },
]);

// Strict: the valid message and the violation come in one TCP write, so
// both arrive in one read. The message is still delivered, and echoed,
// before the Close (as Autobahn's 3.2 and 4.1.3 count as strict).
const sameRead: Case[] = [
  {
    name:
      "§5.2 (3.2, strict) echoes a message that came in the same read as a frame with RSV2 (1002)",
    send: [[text("before"), { ...text("x"), rsv: 2 }, ping("after")]],
    expect: [T("before")],
    close: 1002,
  },
  {
    name:
      "§5.2 (4.1.3, strict) echoes a message that came in the same read as a reserved opcode (1002)",
    send: [[text("before"), { opcode: 5, payload: "x" }, ping("after")]],
    expect: [T("before")],
    close: 1002,
  },
  {
    name:
      "§5.2 (4.2.3, strict) echoes a message that came in the same read as a reserved control opcode (1002)",
    send: [[text("before"), { opcode: 0xb, payload: "x" }, ping("after")]],
    expect: [T("before")],
    close: 1002,
  },
];

opcodes.push({
  name: "§5.2 fails reserved opcode 0x3 inside a fragmented message (1002)",
  send: [text("frag", false), { opcode: 3, payload: "x" }, cont("ment")],
  close: 1002,
});

register(test, [
  ...lengths,
  ...chopped,
  ...lengthLimits,
  ...masking,
  ...reserved,
  ...opcodes,
  ...sameRead,
]);
