// Text to UTF-8 (src/_utf8.ts): encodeUtf8 takes shortcuts (a loop for a
// few ASCII characters, encodeInto a shared slab up to a few KiB), and must
// write exactly what TextEncoder writes, lone surrogates included, without
// one result overwriting another in the slab.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { encodeUtf8 } from "../src/_utf8.ts";

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
