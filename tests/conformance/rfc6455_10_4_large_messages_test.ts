// RFC 6455 §10.4 (implementation-specific limits) and large messages:
// messages up to 16 MiB whole, 1 MiB in small TCP writes, a thousand
// round trips, and the size limits refusing what is larger with 1009
// (Autobahn cases 9.1, 9.2, 9.5–9.8). See _peer.ts.

import { test } from "node:test";
import {
  B,
  binary,
  type Case,
  cont,
  P,
  pattern,
  register,
  type Sendable,
  T,
  text,
  wait,
} from "./_peer.ts";

const utf8 = new TextEncoder();

/** UTF-8 text of exactly `length` bytes, multi-byte characters included. */
function largeText(length: number): Uint8Array {
  const unit = utf8.encode("BAsd7&jh23 κόσμε 😀 ");
  const out = new Uint8Array(length);
  for (let i = 0; i + unit.length <= length; i += unit.length) out.set(unit, i);
  out.fill(0x2a, length - (length % unit.length));
  return out;
}

const SIZES = [64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20];
const label = (size: number) =>
  size >= 1 << 20 ? `${size >> 20} MiB` : `${size >> 10} KiB`;

// 9.1, 9.2: one frame each.
const whole: Case[] = SIZES.flatMap((size): Case[] => [
  {
    name: `§10.4 (9.1) echoes a ${label(size)} text message`,
    send: [text(largeText(size))],
    expect: [T(largeText(size))],
    timeout: 20000,
  },
  {
    name: `§10.4 (9.2) echoes a ${label(size)} binary message`,
    send: [binary(pattern(size))],
    expect: [B(pattern(size))],
    timeout: 20000,
  },
]);

// 9.5, 9.6: 1 MiB sent in TCP writes of a few sizes.
const chopped: Case[] = [997, 65536].flatMap((chop): Case[] => [
  {
    name: `§10.4 (9.5) echoes 1 MiB of text sent in ${chop}-byte writes`,
    send: [text(largeText(1 << 20))],
    chop,
    expect: [T(largeText(1 << 20))],
    timeout: 20000,
  },
  {
    name: `§10.4 (9.6) echoes 1 MiB of binary sent in ${chop}-byte writes`,
    send: [binary(pattern(1 << 20))],
    chop,
    expect: [B(pattern(1 << 20))],
    timeout: 20000,
  },
]);

// 9.7, 9.8: a thousand messages, each sent once the one before is back.
function roundTrips(kind: "text" | "binary", size: number): Case {
  const send: Sendable[] = [];
  const expect: string[] = [];
  for (let i = 0; i < 1000; i++) {
    const payload = pattern(size, i + 1);
    if (kind === "binary") {
      send.push(binary(payload), wait(i + 1));
      expect.push(B(payload));
    } else {
      const clean = size === 0 ? "" : `${i}:`.padEnd(size, "é").slice(0, size);
      send.push(text(clean), wait(i + 1));
      expect.push(T(clean));
    }
  }
  return {
    name: `§10.4 (9.${
      kind === "text" ? 7 : 8
    }) 1000 ${kind} messages of ${size} bytes, one round trip each`,
    send,
    expect,
    timeout: 20000,
  };
}
const trips: Case[] = [
  roundTrips("text", 0),
  roundTrips("text", 1024),
  roundTrips("binary", 256),
];

// §10.4: "implementations will likely wish to impose a limit [...] on the
// maximum size of a message"; §7.4.1: 1009 "a message that is too big for
// it to process". Our limits count a message across its fragments.
const LIMITS = { maxFrameSize: 1000, maxMessageSize: 1000 };
const limits: Case[] = [
  {
    name: "§10.4 accepts a message of exactly maxMessageSize",
    options: LIMITS,
    send: [binary(pattern(1000))],
    expect: [B(pattern(1000))],
  },
  {
    name:
      "§10.4 refuses a frame one byte over maxFrameSize, on its header (1009)",
    options: LIMITS,
    send: [{ ...binary(pattern(1001)), cut: 0 }],
    close: 1009,
  },
  {
    name:
      "§10.4 refuses a message whose fragments add up to one byte over maxMessageSize (1009)",
    options: LIMITS,
    send: [binary(pattern(600), false), cont(pattern(401), false)],
    close: 1009,
  },
  {
    name:
      "§10.4 counts a message's fragments towards maxMessageSize, not the pings between them",
    options: LIMITS,
    send: [
      text(largeText(500), false),
      { opcode: 0x9, payload: pattern(125) },
      cont(largeText(500)),
    ],
    expect: [
      P(pattern(125)),
      T(new Uint8Array([...largeText(500), ...largeText(500)])),
    ],
  },
];

register(test, [...whole, ...chopped, ...trips, ...limits]);
