// Pings: which pings a pong settles (RFC 6455 §5.5.3), the one rule every
// endpoint shares.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { Pings } from "../src/_pings.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

test("Pings: a pong settles the latest ping with its data and every ping before it", async () => {
  fc.assert(
    await fc.asyncProperty(
      fc.array(fc.constantFrom<string>("a", "b", "c"), {
        minLength: 1,
        maxLength: 12,
      }),
      fc.constantFrom("a", "b", "c", "d"),
      async (sent, answer) => {
        const pings = new Pings();
        const outcome: boolean[] = sent.map(() => false);
        const settled = sent.map((data, i) =>
          pings.add(bytes(data)).then(() => (outcome[i] = true), () => {})
        );
        pings.pong(bytes(answer));
        pings.rejectAll(new Error("closed"));
        await Promise.all(settled);
        const latest = sent.lastIndexOf(answer);
        assert.deepEqual(outcome, sent.map((_, i) => i <= latest));
      },
    ),
  );
});

test("Pings: rejectAll rejects what waits, and a later pong settles nothing", async () => {
  const pings = new Pings();
  const first = pings.add(bytes("1"));
  pings.rejectAll(new TypeError("closing"));
  await assert.rejects(first, TypeError);
  pings.pong(bytes("1"));
  const second = pings.add(bytes("2"));
  pings.pong(bytes("2"));
  await second;
});
