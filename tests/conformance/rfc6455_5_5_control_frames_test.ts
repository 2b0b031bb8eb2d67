// RFC 6455 §5.5, control frames: pings and pongs, their size limit and
// their place between fragments (Autobahn cases 2.x). Close frames have
// their own file (§7). See _peer.ts for how a case runs.

import { test } from "node:test";
import {
  type Case,
  cont,
  hex,
  OP,
  P,
  ping,
  pong,
  pongs,
  register,
  T,
  text,
  wait,
} from "./_peer.ts";

const BINARY_PING = hex("00 ff fe fd fc fb 00 ff");
const bytes125 = new Uint8Array(125).map((_, i) => i * 7);
const bytes126 = new Uint8Array(126).map((_, i) => i * 7);

const pings: Case[] = [
  // §5.5.2: "Upon receipt of a Ping frame, an endpoint MUST send a Pong
  // frame in response"; §5.5.3: "A Pong frame sent in response to a Ping
  // frame must have identical "Application data" as found in the message
  // body of the Ping frame being replied to."
  {
    name: "§5.5.2 (2.1) answers a ping with no payload",
    send: [ping()],
    expect: [P()],
  },
  {
    name: "§5.5.2 (2.2) answers a ping with a text payload, echoing it",
    send: [ping("Hello, world!")],
    expect: [P("Hello, world!")],
  },
  {
    name: "§5.5.2 (2.3) answers a ping with a binary payload, echoing it",
    send: [ping(BINARY_PING)],
    expect: [P(BINARY_PING)],
  },
  {
    name: "§5.5.2 (2.4) answers a ping with a 125-byte payload",
    send: [ping(bytes125)],
    expect: [P(bytes125)],
  },
  {
    name: "§5.5.2 (2.6) answers a 125-byte ping sent in 1-byte writes",
    send: [ping(bytes125)],
    chop: 1,
    expect: [P(bytes125)],
  },
  // §5.5.3 lets an endpoint that has not yet answered earlier pings
  // answer only the latest: each pong but the last may be missing, and
  // those sent carry their own ping's payload, in order.
  {
    name:
      "§5.5.2 (2.10) answers 10 pings: the last surely, the others with their payloads, in order",
    send: Array.from({ length: 10 }, (_, i) => ping(`payload-${i}`)),
    expect: pongs(...Array.from({ length: 10 }, (_, i) => `payload-${i}`)),
  },
  {
    name:
      "§5.5.2 (2.11) answers 10 pings sent in 1-byte writes, the last surely",
    send: Array.from({ length: 10 }, (_, i) => ping(`payload-${i}`)),
    chop: 1,
    expect: pongs(...Array.from({ length: 10 }, (_, i) => `payload-${i}`)),
  },
  {
    name: "§5.5.2 answers 10 pings that arrive in one write, the last surely",
    send: [Array.from({ length: 10 }, (_, i) => ping(`p${i}`))],
    expect: pongs(...Array.from({ length: 10 }, (_, i) => `p${i}`)),
  },
  // §5.5.3: "A Pong frame MAY be sent unsolicited. This serves as a
  // unidirectional heartbeat. A response to an unsolicited Pong frame is
  // not expected."
  {
    name: "§5.5.3 (2.7) ignores an unsolicited pong with no payload",
    send: [pong(), text("after")],
    expect: [T("after")],
  },
  {
    name: "§5.5.3 (2.8) ignores an unsolicited pong with a payload",
    send: [pong("unsolicited"), text("after")],
    expect: [T("after")],
  },
  {
    name: "§5.5.3 (2.9) ignores an unsolicited pong, then answers a ping",
    send: [pong("unsolicited"), ping("solicited")],
    expect: [P("solicited")],
  },
];

// §5.5: "All control frames MUST have a payload length of 125 bytes or
// less and MUST NOT be fragmented."
const limits: Case[] = [
  {
    name: "§5.5 (2.5) fails a ping with a 126-byte payload (1002)",
    send: [ping(bytes126)],
    close: 1002,
  },
  {
    name: "§5.5 fails a pong with a 126-byte payload (1002)",
    send: [pong(bytes126)],
    close: 1002,
  },
  {
    name: "§5.5 fails a ping with a 64-bit length, on its header (1002)",
    // The 7-bit field says 127, which no control frame may use.
    send: [{ opcode: OP.ping, declaredLength: 70000 }],
    close: 1002,
  },
  {
    name: "§5.5 (5.1) fails a ping fragmented into two (1002)",
    send: [{ ...ping("frag"), fin: false }, cont("ment")],
    close: 1002,
  },
  {
    name: "§5.5 (5.2) fails a pong fragmented into two (1002)",
    send: [{ ...pong("frag"), fin: false }, cont("ment")],
    close: 1002,
  },
  {
    name: "§5.5 fails a fragmented ping inside a fragmented message (1002)",
    send: [text("a", false), { ...ping("x"), fin: false }, cont("b")],
    close: 1002,
  },
  {
    name:
      "§5.5 fails a ping with a 126-byte payload sent in 1-byte writes, on its header (1002)",
    send: [{ opcode: OP.ping, declaredLength: 126 }],
    chop: 1,
    close: 1002,
  },
];

// §5.4: "Control frames (see Section 5.5) MAY be injected in the middle of
// a fragmented message." and "An endpoint MUST be capable of handling
// control frames in the middle of a fragmented message."
const between: Case[] = [
  {
    name: "§5.4 (5.6) answers a ping between two fragments",
    send: [text("fragment1", false), ping("ping payload"), cont("fragment2")],
    expect: [P("ping payload"), T("fragment1fragment2")],
  },
  {
    name: "§5.4 (5.7) answers a ping between two fragments, in 1-byte writes",
    send: [text("fragment1", false), ping("ping payload"), cont("fragment2")],
    chop: 1,
    expect: [P("ping payload"), T("fragment1fragment2")],
  },
  {
    name: "§5.4 ignores a pong between two fragments",
    send: [text("fragment1", false), pong("x"), cont("fragment2")],
    expect: [T("fragment1fragment2")],
  },
  {
    name: "§5.4 (5.19) answers pings between five fragments",
    send: [
      text("f1", false),
      cont("f2", false),
      ping("p1"),
      cont("f3", false),
      cont("f4", false),
      ping("p2"),
      cont("f5"),
    ],
    expect: [...pongs("p1", "p2"), T("f1f2f3f4f5")],
  },
  {
    name: "§5.4 (5.20) answers pings between five fragments, with pauses",
    send: [
      text("f1", false),
      cont("f2", false),
      ping("p1"),
      wait(1),
      cont("f3", false),
      cont("f4", false),
      ping("p2"),
      wait(2),
      cont("f5"),
    ],
    chop: 1,
    expect: [P("p1"), P("p2"), T("f1f2f3f4f5")],
  },
];

register(test, [...pings, ...limits, ...between]);
