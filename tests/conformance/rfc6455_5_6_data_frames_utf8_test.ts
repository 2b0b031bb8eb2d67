// RFC 6455 §5.6 and §8.1, text data frames: "The "Payload data" is text
// data encoded as UTF-8", and "When an endpoint is to interpret a byte
// stream as UTF-8 but finds that the byte stream is not, in fact, a valid
// UTF-8 stream, that endpoint MUST _Fail the WebSocket Connection_" (1007,
// §7.4.1). The sequences are Markus Kuhn's UTF-8 decoder test cases, as
// Autobahn's cases 6.x use them; each is sent whole, then one byte per
// fragment, where an invalid one must fail at the fragment that proves it
// (fail-fast), without the rest ever being sent. See _peer.ts.

import { test } from "node:test";
import {
  binary,
  type Case,
  cont,
  firstBad,
  hex,
  register,
  T,
  text,
  type WireFrame,
} from "./_peer.ts";

const KOSME = "ce ba e1 bd b9 cf 83 ce bc ce b5"; // κόσμε

// [what, hex bytes, valid]
const SEQUENCES: [string, string, boolean][] = [
  ["κόσμε", KOSME, true],
  ["hello$world", "68656c6c6f 24 776f726c64", true],
  ["hello¢world", "68656c6c6f c2a2 776f726c64", true],
  ["hello€world", "68656c6c6f e282ac 776f726c64", true],
  ["hello𤭢world", "68656c6c6f f0a4ada2 776f726c64", true],
  ["a BOM, kept as text", "ef bb bf 41", true],
  // Kuhn 2.1, 2.2, 2.3: boundaries.
  ["U+0000", "00", true],
  ["U+0080", "c2 80", true],
  ["U+0800", "e0 a0 80", true],
  ["U+10000", "f0 90 80 80", true],
  ["U+007F", "7f", true],
  ["U+07FF", "df bf", true],
  ["U+FFFF", "ef bf bf", true],
  ["U+10FFFF", "f4 8f bf bf", true],
  ["U+D7FF", "ed 9f bf", true],
  ["U+E000", "ee 80 80", true],
  ["U+FFFD", "ef bf bd", true],
  ["U+FFFE, a noncharacter (valid UTF-8)", "ef bf be", true],
  ["U+1FFFF, a noncharacter (valid UTF-8)", "f0 9f bf bf", true],
  ["U+10FFFE, a noncharacter (valid UTF-8)", "f4 8f bf be", true],
  ["U+FFF9..U+FFFB, specials", "ef bf b9 ef bf ba ef bf bb", true],
  ["5-byte form of U+200000", "f8 88 80 80 80", false],
  ["6-byte form of U+4000000", "fc 84 80 80 80 80", false],
  ["4-byte form beyond U+10FFFF (U+1FFFFF)", "f7 bf bf bf", false],
  ["5-byte form of U+3FFFFFF", "fb bf bf bf bf", false],
  ["6-byte form of U+7FFFFFFF", "fd bf bf bf bf bf", false],
  ["U+110000", "f4 90 80 80", false],
  // Kuhn 3.1: unexpected continuation bytes.
  ["a lone 0x80", "80", false],
  ["a lone 0xBF", "bf", false],
  ["continuations 80 BF", "80 bf", false],
  ["continuations 80 BF 80", "80 bf 80", false],
  ["continuations 80 BF 80 BF 80 BF", "80 bf 80 bf 80 bf", false],
  ["all 64 continuation bytes", range(0x80, 0xbf), false],
  ["valid text, then a continuation byte", `${KOSME} 80 65 64`, false],
  // Kuhn 3.2: lonely start characters, each followed by a space.
  ["2-byte leads, each before a space", spaced(0xc0, 0xdf), false],
  ["3-byte leads, each before a space", spaced(0xe0, 0xef), false],
  ["4-byte leads, each before a space", spaced(0xf0, 0xf7), false],
  ["5-byte leads, each before a space", spaced(0xf8, 0xfb), false],
  ["6-byte leads, each before a space", spaced(0xfc, 0xfd), false],
  // Kuhn 3.3, 3.4: sequences with their last byte missing.
  ["C0 (U+0000 short)", "c0", false],
  ["E0 80 (U+0000 short)", "e0 80", false],
  ["F0 80 80 (U+0000 short)", "f0 80 80", false],
  ["DF (U+07FF short)", "df", false],
  ["EF BF (U+FFFF short)", "ef bf", false],
  ["F4 8F BF (U+10FFFF short)", "f4 8f bf", false],
  ["valid text ending in a cut 3-byte sequence", `${KOSME} e2 82`, false],
  [
    "the incomplete sequences concatenated",
    "c0 e0 80 f0 80 80 f8 80 80 80 fc 80 80 80 80 df ef bf f7 bf bf fb bf bf bf fd bf bf bf bf",
    false,
  ],
  // Kuhn 3.5: impossible bytes.
  ["FE", "fe", false],
  ["FF", "ff", false],
  ["FE FE FF FF", "fe fe ff ff", false],
  // Kuhn 4.1–4.3: overlong forms.
  ["overlong '/' in 2 bytes", "c0 af", false],
  ["overlong '/' in 3 bytes", "e0 80 af", false],
  ["overlong '/' in 4 bytes", "f0 80 80 af", false],
  ["overlong '/' in 5 bytes", "f8 80 80 80 af", false],
  ["overlong '/' in 6 bytes", "fc 80 80 80 80 af", false],
  ["largest overlong 2-byte form", "c1 bf", false],
  ["largest overlong 3-byte form", "e0 9f bf", false],
  ["largest overlong 4-byte form", "f0 8f bf bf", false],
  ["overlong NUL in 2 bytes", "c0 80", false],
  ["overlong NUL in 3 bytes", "e0 80 80", false],
  ["overlong NUL in 4 bytes", "f0 80 80 80", false],
  // Kuhn 5.1, 5.2: UTF-16 surrogates, alone and paired.
  ["U+D800", "ed a0 80", false],
  ["U+DB7F", "ed ad bf", false],
  ["U+DBFF", "ed af bf", false],
  ["U+DC00", "ed b0 80", false],
  ["U+DFFF", "ed bf bf", false],
  ["U+D800 U+DC00", "ed a0 80 ed b0 80", false],
  ["U+DBFF U+DFFF", "ed af bf ed bf bf", false],
  [
    "valid text, then U+D800 (6.3.1)",
    `${KOSME} ed a0 80 65 64 69 74 65 64`,
    false,
  ],
];

function range(from: number, to: number): string {
  const out: string[] = [];
  for (let b = from; b <= to; b++) out.push(b.toString(16));
  return out.join(" ");
}

function spaced(from: number, to: number): string {
  const out: string[] = [];
  for (let b = from; b <= to; b++) out.push(b.toString(16), "20");
  return out.join(" ");
}

/** One fragment a byte: the first a text frame, the rest continuations. */
function perByte(
  bytes: Uint8Array,
  count: number,
  final: boolean,
): WireFrame[] {
  return Array.from({ length: count }, (_, i) => ({
    ...(i === 0 ? text(bytes.subarray(0, 1)) : cont(bytes.subarray(i, i + 1))),
    fin: final && i === count - 1,
  }));
}

const sequences: Case[] = SEQUENCES.flatMap(
  ([what, hexBytes, valid]): Case[] => {
    const bytes = hex(hexBytes);
    const bad = firstBad(bytes);
    if ((bad === -1) !== valid) {
      throw new Error(`the table disagrees with firstBad on ${what}`);
    }
    if (valid) {
      return [{
        name: `§8.1 (6.x) echoes valid UTF-8: ${what}`,
        send: [text(bytes)],
        expect: [T(bytes)],
      }, {
        name: `§8.1 (6.x) echoes valid UTF-8 one byte a fragment: ${what}`,
        send: [perByte(bytes, bytes.length, true)],
        expect: [T(bytes)],
      }];
    }
    // Fail-fast: fragments up to the byte that proves the text invalid, and
    // nothing after (the message is never finished); a sequence that is
    // only cut short is proved invalid by the final fragment.
    const cutShort = bad === bytes.length;
    return [{
      name: `§8.1 (6.x) fails invalid UTF-8 (1007): ${what}`,
      send: [text(bytes)],
      close: 1007,
    }, {
      name:
        `§8.1 (6.x) fails invalid UTF-8 at the fragment that proves it (1007): ${what}`,
      send: [perByte(bytes, cutShort ? bytes.length : bad + 1, cutShort)],
      close: 1007,
    }];
  },
);

// 6.2: valid text split into two fragments at every byte, code points
// included; all of it in one connection.
const HELLO = new TextEncoder().encode("Hello-µ@ßöäüàá-UTF-8!!");
const splits: Case[] = [{
  name: "§5.4 (6.2) echoes valid UTF-8 split into two fragments at every byte",
  send: Array.from({ length: HELLO.length - 1 }, (_, i) => [
    text(HELLO.subarray(0, i + 1), false),
    cont(HELLO.subarray(i + 1)),
  ]),
  expect: Array.from({ length: HELLO.length - 1 }, () => T(HELLO)),
}, {
  name:
    "§5.4 (6.2.4) echoes κόσμε in fragments of one byte, sent in 1-byte writes",
  send: [perByte(hex(KOSME), hex(KOSME).length, true)],
  chop: 1,
  expect: [T(hex(KOSME))],
}, {
  name: "§5.6 binary messages are not UTF-8 checked",
  send: [binary(hex("ff fe c0 80 ed a0 80"))],
  expect: ["binary fffec080eda080"],
}];

// 6.4: fail-fast across fragments and within a frame.
const PART1 = hex(KOSME);
const PART2 = hex("f4 90 80 80"); // U+110000: invalid at its second byte
const PART3 = hex("65 64 69 74 65 64");
const failFast: Case[] = [
  {
    name:
      "§8.1 (6.4.1) fails at the invalid fragment, before the rest is sent (1007)",
    send: [text(PART1, false), cont(PART2, false)],
    close: 1007,
  },
  {
    name:
      "§8.1 (6.4.2) fails at the byte that proves a code point invalid, split between fragments (1007)",
    send: [
      text(hex(`${KOSME} f4`), false),
      cont(hex("90"), false),
    ],
    close: 1007,
  },
  {
    name:
      "§8.1 (6.4.3) fails invalid UTF-8 in the middle of a frame sent in three writes (1007)",
    send: [{
      ...text(new Uint8Array([...PART1, ...PART2, ...PART3])),
      parts: [PART1.length, PART1.length + PART2.length],
    }],
    close: 1007,
  },
  {
    name:
      "§8.1 (6.4.3, strict) fails in the middle of a frame before the rest arrives (1007)",
    send: [{
      ...text(new Uint8Array([...PART1, ...PART2, ...PART3])),
      parts: [PART1.length],
      cut: PART1.length + PART2.length,
    }],
    close: 1007,
  },
  {
    name:
      "§8.1 (6.4.4, strict) fails at the byte that proves it in the middle of a frame (1007)",
    send: [{
      ...text(new Uint8Array([...PART1, ...PART2, ...PART3])),
      parts: [PART1.length + 1],
      cut: PART1.length + 2,
    }],
    close: 1007,
  },
  {
    name:
      "§8.1 (6.4.3, strict) streaming: fails in the middle of a frame before the rest arrives (1007)",
    options: { streaming: true },
    send: [{
      ...text(new Uint8Array([...PART1, ...PART2, ...PART3])),
      parts: [PART1.length],
      cut: PART1.length + PART2.length,
    }],
    close: 1007,
  },
  {
    name:
      "§8.1 (6.4.4, strict) streaming: fails at the byte that proves it in the middle of a frame (1007)",
    options: { streaming: true },
    send: [{
      ...text(new Uint8Array([...PART1, ...PART2, ...PART3])),
      parts: [PART1.length + 1],
      cut: PART1.length + 2,
    }],
    close: 1007,
  },
  {
    name:
      "§8.1 a message that passed validation is echoed before the invalid one fails (1007)",
    send: [text(PART1), { wait: 1 }, text(PART2)],
    expect: [T(PART1)],
    close: 1007,
  },
];

register(test, [...sequences, ...splits, ...failFast]);
