// Text to UTF-8 and back (src/_utf8.ts): encodeUtf8 takes shortcuts (a loop
// for a few ASCII characters, encodeInto a shared slab up to a few KiB), and
// must write exactly what TextEncoder writes, lone surrogates included,
// without one result overwriting another in the slab. decodeUtf8 takes
// shortcuts for ASCII on Deno (a loop up to 16 bytes, latin1Slice above),
// and must read exactly what a fatal TextDecoder reads, throwing where it
// throws. isValidUtf8 checks without decoding (node:buffer's isUtf8), and
// must accept exactly what a fatal TextDecoder accepts.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import {
  decodeUtf8,
  encodeUtf8,
  isValidUtf8,
  Utf8Validator,
} from "../src/_utf8.ts";
import { cut } from "./_helpers.ts";

const encoder = new TextEncoder();

// Where the shortcuts change: 16 (the loop), 1365 (a slab slice holds
// 3 bytes for each of them), and lengths on either side.
const lengths = [0, 1, 15, 16, 17, 100, 1364, 1365, 1366, 5000];
const units = ["a", "é", "✓", "😀", "\ud800", "\udfff", "\u007f", "\u0080"];

/** `unit` repeated to `length` UTF-16 code units, after an ASCII prefix. */
function textOf(unit: string, length: number, prefix: number): string {
  const head = "x".repeat(Math.min(prefix, length));
  const rest = length - head.length;
  return head + unit.repeat(Math.ceil(rest / unit.length)).slice(0, rest);
}

test("encodeUtf8 writes what TextEncoder writes at every length where its shortcuts change", () => {
  const results: [string, Uint8Array][] = [];
  for (const length of lengths) {
    for (const unit of units) {
      for (const prefix of [0, Math.max(length - 1, 0), length]) {
        const text = textOf(unit, length, prefix);
        results.push([text, encodeUtf8(text)]);
      }
    }
  }
  // Checked after all of them, so a slab slice handed out twice shows.
  for (const [text, bytes] of results) {
    assert.deepEqual(
      bytes,
      encoder.encode(text),
      `${JSON.stringify(text.slice(0, 20))}… (${text.length} units)`,
    );
  }
});

test("property: encodeUtf8 ≡ TextEncoder.encode for any strings, one after another", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.string({ unit: "binary", maxLength: 40 }),
          fc.string({ unit: "grapheme", maxLength: 1500 }),
          fc.string({ unit: "binary", minLength: 1300, maxLength: 1400 }),
        ),
        { maxLength: 60 },
      ),
      (texts) => {
        const results = texts.map(encodeUtf8);
        texts.forEach((text, i) =>
          assert.deepEqual(results[i], encoder.encode(text))
        );
      },
    ),
    { numRuns: 200 },
  );
});

const fatal = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// What decodeUtf8 gives for `bytes`: the text, or "error".
function decoded(decode: (bytes: Uint8Array) => string, bytes: Uint8Array) {
  try {
    return decode(bytes);
  } catch (error) {
    assert.ok(error instanceof TypeError, String(error));
    return "error";
  }
}

test("decodeUtf8 reads what a fatal TextDecoder reads on either side of its shortcuts", () => {
  // ASCII, then one last byte that is ASCII, a lead byte with no
  // continuation, a whole two-byte character, a stray continuation byte.
  const lasts = [[0x41], [0xc3], [0xc3, 0xa9], [0x80], [0xef, 0xbb, 0xbf]];
  for (const length of [0, 1, 15, 16, 17, 63, 64, 65, 100, 4096, 70000]) {
    for (const last of lasts) {
      for (const bom of [false, true]) {
        const bytes = new Uint8Array(length + last.length + (bom ? 3 : 0));
        let at = 0;
        if (bom) bytes.set([0xef, 0xbb, 0xbf], (at += 3) - 3);
        for (let i = 0; i < length; i++) bytes[at++] = 0x20 + (i % 95);
        bytes.set(last, at);
        assert.equal(
          decoded(decodeUtf8, bytes),
          decoded((b) => fatal.decode(b), bytes),
          `${length} bytes, then ${last}, BOM ${bom}`,
        );
      }
    }
  }
});

test("property: decodeUtf8 ≡ a fatal TextDecoder for any bytes, mostly ASCII or not", () => {
  const ascii = fc.integer({ min: 0, max: 0x7f });
  const any = fc.integer({ min: 0, max: 0xff });
  fc.assert(
    fc.property(
      fc.oneof(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.oneof({ weight: 30, arbitrary: ascii }, any), {
          maxLength: 300,
        }).map((b) => new Uint8Array(b)),
        fc.string({ unit: "grapheme", maxLength: 300 }).map((t) =>
          encoder.encode(t)
        ),
      ),
      fc.nat(8),
      (bytes, offset) => {
        // At an offset in a larger buffer too, as frame payloads are.
        const inside = new Uint8Array(bytes.length + offset);
        inside.set(bytes, offset);
        const view = inside.subarray(offset);
        assert.equal(
          decoded(decodeUtf8, view),
          decoded((b) => fatal.decode(b), bytes),
        );
      },
    ),
    { numRuns: 500 },
  );
});

function accepts(bytes: Uint8Array): boolean {
  try {
    fatal.decode(bytes);
    return true;
  } catch {
    return false;
  }
}

// The sequences RFC 3629 rules out, each alone and after valid text.
const INVALID: number[][] = [
  [0x80], // a continuation byte with no lead
  [0xc0, 0x80], // overlong NUL
  [0xc1, 0xbf], // overlong
  [0xe0, 0x80, 0x80], // overlong 3-byte
  [0xf0, 0x80, 0x80, 0x80], // overlong 4-byte
  [0xed, 0xa0, 0x80], // U+D800, a surrogate
  [0xed, 0xbf, 0xbf], // U+DFFF
  [0xf4, 0x90, 0x80, 0x80], // above U+10FFFF
  [0xf5, 0x80, 0x80, 0x80],
  [0xff],
  [0xe2, 0x82], // a sequence cut short
  [0xf0, 0x9f, 0x98], // the same, 4-byte
];

test("isValidUtf8 refuses what RFC 3629 rules out, and takes the limits it allows", () => {
  const valid = [
    [],
    [0xef, 0xbb, 0xbf], // a BOM, which is text
    [0xed, 0x9f, 0xbf], // U+D7FF
    [0xee, 0x80, 0x80], // U+E000
    [0xf4, 0x8f, 0xbf, 0xbf], // U+10FFFF
    [0xf0, 0x90, 0x80, 0x80], // U+10000
  ];
  const prefix = encoder.encode("x".repeat(100) + "é");
  for (const sequence of valid) {
    assert.equal(isValidUtf8(new Uint8Array(sequence)), true);
    assert.equal(isValidUtf8(new Uint8Array([...prefix, ...sequence])), true);
  }
  for (const sequence of INVALID) {
    assert.equal(isValidUtf8(new Uint8Array(sequence)), false, `${sequence}`);
    assert.equal(
      isValidUtf8(new Uint8Array([...prefix, ...sequence])),
      false,
      `after text: ${sequence}`,
    );
  }
});

const textBytes = fc.string({ unit: "grapheme", maxLength: 200 }).map((t) =>
  encoder.encode(t)
);

/** Any bytes; text; text with one invalid sequence in it or one byte changed. */
const textish = fc.oneof(
  fc.uint8Array({ maxLength: 300 }),
  textBytes,
  fc.tuple(textBytes, fc.constantFrom(...INVALID), fc.nat()).map(
    ([t, bad, at]) => {
      const cut = t.length === 0 ? 0 : at % t.length;
      return new Uint8Array([
        ...t.subarray(0, cut),
        ...bad,
        ...t.subarray(cut),
      ]);
    },
  ),
  fc.tuple(textBytes, fc.nat(), fc.integer({ min: 0, max: 0xff })).map(
    ([t, at, value]) => {
      const out = t.slice();
      if (out.length > 0) out[at % out.length] = value;
      return out;
    },
  ),
);

test("property: isValidUtf8 ≡ whether a fatal TextDecoder accepts, for any bytes", () => {
  fc.assert(
    fc.property(textish, fc.nat(8), (bytes, offset) => {
      // Behind bytes that are never valid, so the view's offset counts.
      const inside = new Uint8Array(bytes.length + offset).fill(0xff);
      inside.set(bytes, offset);
      assert.equal(isValidUtf8(inside.subarray(offset)), accepts(bytes));
    }),
    { numRuns: 500 },
  );
});

// Which piece a fatal streaming TextDecoder fails at (pieces.length: at the
// end), or -1 if it takes them all.
function decoderFailsAt(pieces: Uint8Array[]): number {
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  for (let i = 0; i <= pieces.length; i++) {
    try {
      if (i < pieces.length) decoder.decode(pieces[i], { stream: true });
      else decoder.decode();
    } catch {
      return i;
    }
  }
  return -1;
}

function validatorFailsAt(pieces: Uint8Array[]): number {
  const validator = new Utf8Validator();
  for (let i = 0; i < pieces.length; i++) {
    if (!validator.push(pieces[i])) return i;
  }
  return validator.end() ? -1 : pieces.length;
}

test("Utf8Validator fails at the piece where a streaming fatal TextDecoder fails, for every cut of every edge case", () => {
  const sequences = [
    ...INVALID,
    [0xef, 0xbb, 0xbf],
    [0xed, 0x9f, 0xbf],
    [0xf4, 0x8f, 0xbf, 0xbf],
    [0xf0, 0x90, 0x80, 0x80],
    [0xc3, 0xa9],
  ];
  let checked = 0;
  for (const sequence of sequences) {
    const bytes = new Uint8Array([0x61, ...sequence, 0x62, 0xe2, 0x82, 0xac]);
    // Every way of cutting it in two and in three, and byte by byte.
    const ways: number[][] = [[...bytes.keys()]];
    for (let a = 0; a <= bytes.length; a++) {
      ways.push([a]);
      for (let b = a; b <= bytes.length; b++) ways.push([a, b]);
    }
    for (const cuts of ways) {
      const pieces = cut(bytes, cuts);
      assert.equal(
        validatorFailsAt(pieces),
        decoderFailsAt(pieces),
        `${[...sequence]} cut at ${cuts}`,
      );
      checked++;
    }
  }
  assert.equal(checked, 912);
});

test("property: Utf8Validator fails at the piece where a streaming fatal TextDecoder fails, for any bytes in any pieces", () => {
  fc.assert(
    fc.property(
      textish,
      fc.array(fc.nat(), { maxLength: 12 }),
      (bytes, cuts) => {
        const pieces = cut(bytes, cuts);
        assert.equal(validatorFailsAt(pieces), decoderFailsAt(pieces));
      },
    ),
    { numRuns: 1000 },
  );
});
