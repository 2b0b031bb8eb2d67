import assert from "node:assert/strict";
import { test } from "node:test";
import { WebSocketError } from "../src/errors.ts";
import type { Frame } from "../src/frame.ts";
import { MessageDecoder } from "../src/message_decoder.ts";
import { Opcode } from "../src/opcode.ts";
import { bytes, frame } from "./_helpers.ts";

type Event = ["data", string | Uint8Array, boolean, boolean] | [
  "control",
  Frame,
];

function run(frames: Frame[], maxMessageSize?: number): Event[] {
  const decoder = new MessageDecoder({ maxMessageSize });
  const events: Event[] = [];
  const handler = {
    data: (d: string | Uint8Array, first: boolean, last: boolean) =>
      events.push(["data", d, first, last]),
    control: (f: Frame) => events.push(["control", f]),
  };
  for (const f of frames) decoder.push(f, handler);
  decoder.end();
  return events;
}

function rejects(
  frames: Frame[],
  code: string,
  closeCode: number,
  maxMessageSize?: number,
): number {
  const decoder = new MessageDecoder({ maxMessageSize });
  let accepted = 0;
  assert.throws(
    () => {
      for (const f of frames) {
        decoder.push(f, { data: () => {}, control: () => {} });
        accepted++;
      }
    },
    (error: unknown) => {
      assert.ok(error instanceof WebSocketError);
      assert.equal(error.code, code);
      assert.equal(error.closeCode, closeCode);
      assert.match(error.message, /^Cannot decode message: /);
      return true;
    },
  );
  return accepted;
}

test("MessageDecoder passes a single-frame message on whole", () => {
  assert.deepEqual(run([frame(Opcode.Text, "Hello")]), [[
    "data",
    "Hello",
    true,
    true,
  ]]);
  assert.deepEqual(run([frame(Opcode.Binary, bytes(1, 2))]), [
    ["data", bytes(1, 2), true, true],
  ]);
});

test("MessageDecoder hands on fragments with their bounds, control frames in between", () => {
  const ping = frame(Opcode.Ping, "?");
  assert.deepEqual(
    run([
      frame(Opcode.Text, "Hel", { fin: false }),
      ping,
      frame(Opcode.Continuation, "", { fin: false }),
      frame(Opcode.Continuation, "lo"),
    ]),
    [
      ["data", "Hel", true, false],
      ["control", ping],
      ["data", "", false, false],
      ["data", "lo", false, true],
    ],
  );
});

test("MessageDecoder keeps a leading byte order mark, which is part of the text", () => {
  assert.deepEqual(run([frame(Opcode.Text, bytes(0xef, 0xbb, 0xbf, 0x41))]), [
    ["data", "\ufeffA", true, true],
  ]);
});

test("MessageDecoder decodes a code point split across fragments", () => {
  // U+1F600 is F0 9F 98 80.
  const events = run([
    frame(Opcode.Text, bytes(0xf0), { fin: false }),
    frame(Opcode.Continuation, bytes(0x9f, 0x98), { fin: false }),
    frame(Opcode.Continuation, bytes(0x80)),
  ]);
  assert.equal(events.map((e) => e[1]).join(""), "\u{1f600}");
});

// §5.4: continuation rules.

test("MessageDecoder rejects a continuation with no message open", () => {
  rejects([frame(Opcode.Continuation, "x")], "unexpected_continuation", 1002);
  rejects(
    [frame(Opcode.Text, "a"), frame(Opcode.Continuation, "b")],
    "unexpected_continuation",
    1002,
  );
});

test("MessageDecoder rejects a new data frame while a message is open", () => {
  rejects(
    [frame(Opcode.Text, "a", { fin: false }), frame(Opcode.Binary, "b")],
    "expected_continuation",
    1002,
  );
  rejects(
    [
      frame(Opcode.Binary, "a", { fin: false }),
      frame(Opcode.Text, "b", { fin: false }),
    ],
    "expected_continuation",
    1002,
  );
});

test("MessageDecoder.end fails with 1006 when the frames stop mid-message", () => {
  const decoder = new MessageDecoder();
  decoder.push(frame(Opcode.Text, "a", { fin: false }), {
    data: () => {},
    control: () => {},
  });
  assert.ok(decoder.pending);
  assert.throws(() => decoder.end(), {
    code: "unexpected_end",
    closeCode: 1006,
  });
});

// §8.1: "When an endpoint is to interpret a byte stream as UTF-8 but finds
// that the byte stream is not, in fact, a valid UTF-8 stream, that endpoint
// MUST _Fail the WebSocket Connection_."

const invalid: [string, number[]][] = [
  ["a lone continuation byte", [0x80]],
  ["an overlong two-byte form", [0xc0, 0x80]],
  ["an overlong three-byte form", [0xe0, 0x80, 0x80]],
  ["an overlong four-byte form", [0xf0, 0x80, 0x80, 0x80]],
  ["a UTF-16 surrogate", [0xed, 0xa0, 0x80]],
  ["a code point above U+10FFFF", [0xf4, 0x90, 0x80, 0x80]],
  ["a byte that never appears (0xFF)", [0xff]],
  ["a lead byte that never appears (0xF5)", [0xf5, 0x80, 0x80, 0x80]],
];

for (const [name, sequence] of invalid) {
  test(`MessageDecoder rejects ${name} in the first fragment, before the message ends`, () => {
    const accepted = rejects(
      [
        frame(Opcode.Text, bytes(0x41, ...sequence), { fin: false }),
        frame(Opcode.Continuation, "never reached", { fin: false }),
      ],
      "invalid_utf8",
      1007,
    );
    assert.equal(accepted, 0);
  });

  test(`MessageDecoder rejects ${name} in a middle fragment, at that fragment`, () => {
    const accepted = rejects(
      [
        frame(Opcode.Text, "ok", { fin: false }),
        frame(Opcode.Continuation, bytes(...sequence, 0x41), { fin: false }),
        frame(Opcode.Continuation, "never reached"),
      ],
      "invalid_utf8",
      1007,
    );
    assert.equal(accepted, 1);
  });
}

test("MessageDecoder rejects an invalid sequence split across fragments at the byte that proves it", () => {
  // F4 90 is already above U+10FFFF: the second fragment proves it.
  const accepted = rejects(
    [
      frame(Opcode.Text, bytes(0x41, 0xf4), { fin: false }),
      frame(Opcode.Continuation, bytes(0x90), { fin: false }),
      frame(Opcode.Continuation, bytes(0x80, 0x80)),
    ],
    "invalid_utf8",
    1007,
  );
  assert.equal(accepted, 1);
});

test("MessageDecoder rejects text that ends inside a code point", () => {
  const accepted = rejects(
    [
      frame(Opcode.Text, bytes(0x41, 0xe2, 0x82), { fin: false }),
      frame(Opcode.Continuation, ""),
    ],
    "invalid_utf8",
    1007,
  );
  assert.equal(accepted, 1);
  rejects([frame(Opcode.Text, bytes(0xce))], "invalid_utf8", 1007);
});

test("MessageDecoder does not check binary messages as UTF-8", () => {
  assert.deepEqual(run([frame(Opcode.Binary, bytes(0xff, 0xc0))]), [
    ["data", bytes(0xff, 0xc0), true, true],
  ]);
});

// Limits.

test("MessageDecoder rejects a message over maxMessageSize at the fragment that crosses it", () => {
  const accepted = rejects(
    [
      frame(Opcode.Binary, new Uint8Array(60), { fin: false }),
      frame(Opcode.Continuation, new Uint8Array(40), { fin: false }),
      frame(Opcode.Continuation, new Uint8Array(1)),
    ],
    "message_too_big",
    1009,
    100,
  );
  assert.equal(accepted, 2);
});

test("MessageDecoder accepts a message of exactly maxMessageSize", () => {
  const events = run([frame(Opcode.Binary, new Uint8Array(100))], 100);
  assert.equal(events.length, 1);
});

test("MessageDecoder counts the limit per message, not per connection", () => {
  const events = run(
    Array.from({ length: 10 }, () => frame(Opcode.Binary, new Uint8Array(100))),
    100,
  );
  assert.equal(events.length, 10);
});

test("MessageDecoder does not count control frames toward the message limit", () => {
  const events = run(
    [
      frame(Opcode.Binary, new Uint8Array(100), { fin: false }),
      frame(Opcode.Ping, new Uint8Array(125)),
      frame(Opcode.Continuation, new Uint8Array(0)),
    ],
    100,
  );
  assert.equal(events.length, 3);
});

test("MessageDecoder rejects bad options as the caller's mistake", () => {
  assert.throws(() => new MessageDecoder({ maxMessageSize: -1 }), RangeError);
  assert.throws(() => new MessageDecoder({ maxMessageSize: NaN }), RangeError);
  new MessageDecoder({ maxMessageSize: Infinity });
});
