// Pieces: a message's bytes gathered piece by piece, at a cost in memory
// proportional to its bytes however it is cut.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Pieces } from "../src/_pieces.ts";
import { concat } from "./_helpers.ts";

test("Pieces joins any pieces, of any sizes and buffers, in order", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          bytes: fc.uint8Array({ maxLength: 3000 }),
          before: fc.nat(70_000),
        }),
        { maxLength: 40 },
      ),
      (specs) => {
        const pieces = new Pieces();
        const originals = specs.map(({ bytes, before }) => {
          // The piece as a view in the middle of a larger buffer.
          const buffer = new Uint8Array(before + bytes.length + 7);
          buffer.set(bytes, before);
          pieces.push(buffer.subarray(before, before + bytes.length));
          return bytes;
        });
        assert.deepEqual(pieces.take(), concat(originals));
        // Taken: it starts afresh.
        assert.deepEqual(pieces.take(), new Uint8Array(0));
      },
    ),
  );
});

test("Pieces copies small pieces of large buffers instead of keeping the buffers", () => {
  // 200 pieces of 1 KiB, each the only part of a 64 KiB buffer a peer made
  // its own read: kept as views, they would hold 12.5 MiB for 200 KiB.
  const pieces = new Pieces();
  const buffers: Uint8Array[] = [];
  for (let i = 0; i < 200; i++) {
    const buffer = new Uint8Array(64 * 1024);
    buffers.push(buffer);
    pieces.push(buffer.subarray(0, 1024));
  }
  // Which were kept as views shows when their buffers change (the caller
  // never does this; the test does to look).
  for (const buffer of buffers) buffer.fill(1);
  const whole = pieces.take();
  const viewed = whole.reduce((sum, byte) => sum + byte, 0);
  assert.equal(whole.length, 200 * 1024);
  // Views may hold as many unused bytes as the message has, plus 64 KiB.
  assert.ok(viewed <= 4 * 1024, `${viewed / 1024} KiB kept as views`);
});

test("Pieces keeps the reads of a large message as views", () => {
  const pieces = new Pieces();
  const reads = Array.from({ length: 4 }, () => new Uint8Array(64 * 1024));
  for (const read of reads) pieces.push(read);
  for (const read of reads) read.fill(1);
  // Every byte came from a view: nothing was copied before the join.
  assert.ok(pieces.take().every((byte) => byte === 1));
});
