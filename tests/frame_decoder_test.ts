import assert from "node:assert/strict";
import { test } from "node:test";
import { WebSocketError } from "../src/errors.ts";
import type { Frame, Role } from "../src/frame.ts";
import {
  FrameDecoder,
  type FrameDecoderOptions,
} from "../src/frame_decoder.ts";
import { Opcode } from "../src/opcode.ts";
import { bytes, concat, frame } from "./_helpers.ts";

function decode(
  input: Uint8Array | Uint8Array[],
  options: FrameDecoderOptions,
): Frame[] {
  const decoder = new FrameDecoder(options);
  const frames: Frame[] = [];
  for (const chunk of Array.isArray(input) ? input : [input]) {
    decoder.push(chunk, (f) => frames.push(f));
  }
  decoder.end();
  return frames;
}

function rejects(
  input: Uint8Array,
  role: Role,
  code: string,
  closeCode: number,
  options: Partial<FrameDecoderOptions> = {},
): void {
  const decoder = new FrameDecoder({ role, ...options });
  assert.throws(
    () => decoder.push(input, () => {}),
    (error: unknown) => {
      assert.ok(error instanceof WebSocketError);
      assert.equal(error.code, code);
      assert.equal(error.closeCode, closeCode);
      assert.match(error.message, /^Cannot decode frame: /);
      return true;
    },
  );
}

const hello = new TextEncoder().encode("Hello");
// The decoder unmasks in place, so each use gets fresh bytes.
const maskedHello = () =>
  bytes(
    0x81,
    0x85,
    0x37,
    0xfa,
    0x21,
    0x3d,
    0x7f,
    0x9f,
    0x4d,
    0x51,
    0x58,
  );

// RFC 6455 §5.7 examples, byte for byte.

test("FrameDecoder decodes the §5.7 single-frame unmasked text message", () => {
  assert.deepEqual(
    decode(bytes(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f), { role: "client" }),
    [frame(Opcode.Text, hello)],
  );
});

test("FrameDecoder decodes the §5.7 single-frame masked text message", () => {
  assert.deepEqual(decode(maskedHello(), { role: "server" }), [
    frame(Opcode.Text, hello),
  ]);
});

test("FrameDecoder decodes the §5.7 fragmented unmasked text message", () => {
  assert.deepEqual(
    decode(bytes(0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f), {
      role: "client",
    }),
    [
      frame(Opcode.Text, "Hel", { fin: false }),
      frame(Opcode.Continuation, "lo"),
    ],
  );
});

test("FrameDecoder decodes the §5.7 unmasked ping and masked pong", () => {
  assert.deepEqual(
    decode(bytes(0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f), { role: "client" }),
    [frame(Opcode.Ping, hello)],
  );
  assert.deepEqual(
    decode(
      bytes(0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
      {
        role: "server",
      },
    ),
    [frame(Opcode.Pong, hello)],
  );
});

test("FrameDecoder decodes the §5.7 256-byte binary message (16-bit length)", () => {
  const payload = new Uint8Array(256).map((_, i) => i);
  assert.deepEqual(
    decode(concat([bytes(0x82, 0x7e, 0x01, 0x00), payload]), {
      role: "client",
    }),
    [frame(Opcode.Binary, payload)],
  );
});

test("FrameDecoder decodes the §5.7 64 KiB binary message (64-bit length)", () => {
  const payload = new Uint8Array(65536).map((_, i) => i * 7);
  assert.deepEqual(
    decode(
      concat([bytes(0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0), payload]),
      { role: "client" },
    ),
    [frame(Opcode.Binary, payload)],
  );
});

// Chunking and copying.

test("FrameDecoder decodes a frame split at every byte", () => {
  for (let split = 0; split <= maskedHello().length; split++) {
    const input = maskedHello();
    assert.deepEqual(
      decode([input.subarray(0, split), input.subarray(split)], {
        role: "server",
      }),
      [frame(Opcode.Text, hello)],
      `split at ${split}`,
    );
  }
});

test("FrameDecoder decodes frames fed one byte at a time", () => {
  const input = concat([
    bytes(0x01, 0x03, 0x48, 0x65, 0x6c),
    bytes(0x89, 0x00),
    bytes(0x80, 0x02, 0x6c, 0x6f),
    bytes(0x82, 0x7e, 0x00, 0x80),
    new Uint8Array(128).fill(9),
  ]);
  const chunks = Array.from(input, (b) => bytes(b));
  assert.deepEqual(decode(chunks, { role: "client" }), [
    frame(Opcode.Text, "Hel", { fin: false }),
    frame(Opcode.Ping, new Uint8Array()),
    frame(Opcode.Continuation, "lo"),
    frame(Opcode.Binary, new Uint8Array(128).fill(9)),
  ]);
});

test("FrameDecoder decodes many frames from one chunk", () => {
  const one = bytes(0x82, 0x01, 0x2a);
  const frames = decode(concat(Array(1000).fill(one)), { role: "client" });
  assert.equal(frames.length, 1000);
  assert.ok(
    frames.every((f) => f.payload.length === 1 && f.payload[0] === 0x2a),
  );
});

test("FrameDecoder does not copy a payload that arrives in one chunk", () => {
  const chunk = bytes(0x82, 0x03, 1, 2, 3, 0x82, 0x01, 4);
  const frames = decode(chunk, { role: "client" });
  assert.equal(frames[0].payload.buffer, chunk.buffer);
  assert.equal(frames[0].payload.byteOffset, 2);
  assert.equal(frames[1].payload.buffer, chunk.buffer);
  assert.equal(frames[1].payload.byteOffset, 7);
});

test("FrameDecoder holds a partial header without emitting or failing", () => {
  const decoder = new FrameDecoder({ role: "client" });
  const frames: Frame[] = [];
  decoder.push(bytes(0x82, 0x7f, 0, 0), (f) => frames.push(f));
  assert.equal(frames.length, 0);
  assert.ok(decoder.pending);
  decoder.push(bytes(0, 0, 0, 0, 0, 1, 7), (f) => frames.push(f));
  assert.deepEqual(frames, [frame(Opcode.Binary, bytes(7))]);
  assert.ok(!decoder.pending);
});

test("FrameDecoder.end fails with 1006 when the input stops mid-frame", () => {
  for (const partial of [bytes(0x82), bytes(0x82, 0x05, 1, 2)]) {
    const decoder = new FrameDecoder({ role: "client" });
    decoder.push(partial, () => {});
    assert.throws(() => decoder.end(), {
      code: "unexpected_end",
      closeCode: 1006,
    });
  }
});

// §5.2: reserved bits.

test("FrameDecoder rejects each RSV bit unless an extension allows it", () => {
  for (
    const [bit, name] of [[0x40, "rsv1"], [0x20, "rsv2"], [
      0x10,
      "rsv3",
    ]] as const
  ) {
    rejects(bytes(0x82 | bit, 0x00), "client", "reserved_bits", 1002);
    const frames = decode(bytes(0x82 | bit, 0x00), {
      role: "client",
      reservedBits: { [name]: true },
    });
    assert.equal(frames[0][name], true);
  }
});

test("FrameDecoder allowing RSV1 still rejects RSV2", () => {
  rejects(bytes(0xa2, 0x00), "client", "reserved_bits", 1002, {
    reservedBits: { rsv1: true },
  });
});

// §5.2: "If an unknown opcode is received, the receiving endpoint MUST _Fail
// the WebSocket Connection_."

test("FrameDecoder rejects every reserved opcode", () => {
  for (const opcode of [0x3, 0x4, 0x5, 0x6, 0x7, 0xb, 0xc, 0xd, 0xe, 0xf]) {
    rejects(bytes(0x80 | opcode, 0x00), "client", "reserved_opcode", 1002);
  }
});

test("FrameDecoder rejects a reserved opcode as soon as the first two bytes arrive", () => {
  rejects(bytes(0x83, 0x7f), "client", "reserved_opcode", 1002);
});

// §5.5: control frames.

test("FrameDecoder rejects a fragmented control frame", () => {
  for (const opcode of [Opcode.Close, Opcode.Ping, Opcode.Pong]) {
    rejects(bytes(opcode, 0x00), "client", "fragmented_control_frame", 1002);
  }
});

test("FrameDecoder rejects a control frame longer than 125 bytes", () => {
  rejects(
    bytes(0x89, 0x7e, 0x00, 0x7e),
    "client",
    "control_frame_too_long",
    1002,
  );
  rejects(
    bytes(0x88, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0x7e),
    "client",
    "control_frame_too_long",
    1002,
  );
});

test("FrameDecoder accepts a control frame of exactly 125 bytes", () => {
  const payload = new Uint8Array(125).fill(1);
  assert.deepEqual(
    decode(concat([bytes(0x89, 0x7d), payload]), { role: "client" }),
    [frame(Opcode.Ping, payload)],
  );
});

// §5.1: masking by role.

test("FrameDecoder as server rejects an unmasked frame", () => {
  rejects(
    bytes(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f),
    "server",
    "unmasked_frame",
    1002,
  );
});

test("FrameDecoder as client rejects a masked frame", () => {
  rejects(maskedHello(), "client", "masked_frame", 1002);
});

// §5.2: payload length.

test("FrameDecoder rejects a 64-bit length with the top bit set", () => {
  rejects(
    bytes(0x82, 0x7f, 0x80, 0, 0, 0, 0, 0, 0, 0),
    "client",
    "invalid_length",
    1002,
  );
});

test("FrameDecoder rejects a length beyond 2^53 - 1 as too big", () => {
  rejects(
    bytes(0x82, 0x7f, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
    "client",
    "frame_too_big",
    1009,
  );
});

test("FrameDecoder rejects a frame over maxFrameSize from its header alone", () => {
  // Only the header: the limit must not wait for (or allocate) the payload.
  rejects(bytes(0x82, 0x7e, 0x04, 0x01), "client", "frame_too_big", 1009, {
    maxFrameSize: 1024,
  });
  const payload = new Uint8Array(1024);
  assert.equal(
    decode(concat([bytes(0x82, 0x7e, 0x04, 0x00), payload]), {
      role: "client",
      maxFrameSize: 1024,
    })[0].payload.length,
    1024,
  );
});

test("FrameDecoder defaults maxFrameSize to 16 MiB", () => {
  rejects(
    bytes(0x82, 0x7f, 0, 0, 0, 0, 0x01, 0, 0, 0x01),
    "client",
    "frame_too_big",
    1009,
  );
  const decoder = new FrameDecoder({ role: "client" });
  decoder.push(bytes(0x82, 0x7f, 0, 0, 0, 0, 0x01, 0, 0, 0x00), () => {});
  assert.ok(decoder.pending);
});

test("FrameDecoder keeps failing with the same error after a violation", () => {
  const decoder = new FrameDecoder({ role: "client" });
  let first: unknown;
  try {
    decoder.push(bytes(0x83, 0x00), () => {});
  } catch (error) {
    first = error;
  }
  assert.ok(first instanceof WebSocketError);
  assert.throws(
    () => decoder.push(bytes(0x82, 0x00), () => {}),
    (e) => e === first,
  );
  assert.throws(() => decoder.end(), (e) => e === first);
});

test("FrameDecoder rejects bad options as the caller's mistake", () => {
  assert.throws(() => new FrameDecoder({ role: "peer" as Role }), TypeError);
  assert.throws(
    () => new FrameDecoder({ role: "client", maxFrameSize: -1 }),
    RangeError,
  );
  assert.throws(
    () => new FrameDecoder({ role: "client", maxFrameSize: 1.5 }),
    RangeError,
  );
  assert.throws(
    () => new FrameDecoder({ role: "client", maxFrameSize: 2 ** 53 }),
    RangeError,
  );
});

// Split mode.

test("FrameDecoder with splitFrames hands on a data frame in pieces as it arrives", () => {
  const payload = new Uint8Array(300).map((_, i) => i);
  const whole = concat([bytes(0x41 | 0x80, 0x7e, 0x01, 0x2c), payload]); // RSV1, FIN, text
  const input = whole.slice();
  const frames = decode(
    [
      input.subarray(0, 10),
      input.subarray(10, 4 + 150),
      input.subarray(4 + 150),
    ],
    { role: "client", splitFrames: true, reservedBits: { rsv1: true } },
  );
  assert.deepEqual(frames, [
    frame(Opcode.Text, payload.subarray(0, 6), { fin: false, rsv1: true }),
    frame(Opcode.Continuation, payload.subarray(6, 150), { fin: false }),
    frame(Opcode.Continuation, payload.subarray(150)),
  ]);
  // The pieces are views of the chunks, not copies.
  assert.equal(frames[1].payload.buffer, input.buffer);
});

test("FrameDecoder with splitFrames unmasks each piece at its own offset", () => {
  const key = [0x37, 0xfa, 0x21, 0x3d];
  const text = new TextEncoder().encode("Hello, world");
  const masked = concat([
    bytes(0x81, 0x80 | text.length, ...key),
    text.map((b, i) => b ^ key[i % 4]),
  ]);
  for (let split = 7; split < masked.length; split++) {
    const input = masked.slice();
    const frames = decode([input.subarray(0, split), input.subarray(split)], {
      role: "server",
      splitFrames: true,
    });
    assert.equal(
      frames.map((f) => new TextDecoder().decode(f.payload)).join(""),
      "Hello, world",
      `split at ${split}`,
    );
    assert.equal(frames.at(-1)!.fin, true);
  }
});

test("FrameDecoder with splitFrames keeps control frames and RSV2/RSV3 frames whole", () => {
  const ping = concat([bytes(0x89, 0x05), new TextEncoder().encode("Hello")]);
  assert.deepEqual(
    decode([ping.subarray(0, 4), ping.subarray(4)], {
      role: "client",
      splitFrames: true,
    }),
    [frame(Opcode.Ping, "Hello")],
  );
  const rsv2 = concat([bytes(0xa2, 0x03), bytes(1, 2, 3)]);
  assert.deepEqual(
    decode([rsv2.subarray(0, 3), rsv2.subarray(3)], {
      role: "client",
      splitFrames: true,
      reservedBits: { rsv2: true },
    }),
    [frame(Opcode.Binary, bytes(1, 2, 3), { rsv2: true })],
  );
});

test("FrameDecoder does not copy a payload whose header ended the previous chunk", () => {
  const payload = new Uint8Array(70000).fill(3);
  const decoder = new FrameDecoder({ role: "client" });
  const frames: Frame[] = [];
  decoder.push(
    bytes(0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0x11, 0x70),
    (f) => frames.push(f),
  );
  assert.ok(decoder.pending);
  decoder.push(payload, (f) => frames.push(f));
  assert.equal(frames.length, 1);
  assert.equal(frames[0].payload.buffer, payload.buffer);
});
