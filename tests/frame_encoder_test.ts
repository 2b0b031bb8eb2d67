import assert from "node:assert/strict";
import { test } from "node:test";
import type { Frame } from "../src/frame.ts";
import { encodeFrame, FrameEncoder } from "../src/frame_encoder.ts";
import { type Opcode, Opcode as Op } from "../src/opcode.ts";
import { bytes, concat, frame } from "./_helpers.ts";

const key = () => bytes(0x37, 0xfa, 0x21, 0x3d);

// RFC 6455 §5.7 examples, byte for byte.

test("encodeFrame produces the §5.7 single-frame unmasked text message", () => {
  assert.deepEqual(
    encodeFrame(frame(Op.Text, "Hello"), { role: "server" }),
    bytes(0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f),
  );
});

test("encodeFrame produces the §5.7 single-frame masked text message", () => {
  assert.deepEqual(
    encodeFrame(frame(Op.Text, "Hello"), { role: "client", maskKey: key }),
    bytes(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
  );
});

test("encodeFrame produces the §5.7 fragmented unmasked text message", () => {
  assert.deepEqual(
    encodeFrame(frame(Op.Text, "Hel", { fin: false }), { role: "server" }),
    bytes(0x01, 0x03, 0x48, 0x65, 0x6c),
  );
  assert.deepEqual(
    encodeFrame(frame(Op.Continuation, "lo"), { role: "server" }),
    bytes(0x80, 0x02, 0x6c, 0x6f),
  );
});

test("encodeFrame produces the §5.7 unmasked ping and masked pong", () => {
  assert.deepEqual(
    encodeFrame(frame(Op.Ping, "Hello"), { role: "server" }),
    bytes(0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f),
  );
  assert.deepEqual(
    encodeFrame(frame(Op.Pong, "Hello"), { role: "client", maskKey: key }),
    bytes(0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
  );
});

test("encodeFrame produces the §5.7 256-byte and 64 KiB binary headers", () => {
  const small = new Uint8Array(256).map((_, i) => i);
  assert.deepEqual(
    encodeFrame(frame(Op.Binary, small), { role: "server" }),
    concat([bytes(0x82, 0x7e, 0x01, 0x00), small]),
  );
  const large = new Uint8Array(65536).map((_, i) => i * 3);
  assert.deepEqual(
    encodeFrame(frame(Op.Binary, large), { role: "server" }),
    concat([bytes(0x82, 0x7f, 0, 0, 0, 0, 0, 1, 0, 0), large]),
  );
});

// §5.2: "the minimal number of bytes MUST be used to encode the length".

test("FrameEncoder uses the shortest length encoding at each boundary", () => {
  const cases: [number, number[]][] = [
    [0, [0x00]],
    [125, [0x7d]],
    [126, [0x7e, 0x00, 0x7e]],
    [65535, [0x7e, 0xff, 0xff]],
    [65536, [0x7f, 0, 0, 0, 0, 0, 1, 0, 0]],
  ];
  for (const [length, header] of cases) {
    const out = encodeFrame(frame(Op.Binary, new Uint8Array(length)), {
      role: "server",
    });
    assert.deepEqual(
      out.subarray(1, 1 + header.length),
      bytes(...header),
      `length ${length}`,
    );
    assert.equal(out.length, 1 + header.length + length);
  }
});

test("FrameEncoder sets the FIN and RSV bits it is given", () => {
  const out = encodeFrame(
    frame(Op.Text, "", { fin: false, rsv1: true, rsv2: true, rsv3: true }),
    { role: "server" },
  );
  assert.equal(out[0], 0x71);
});

test("FrameEncoder as client masks every frame with a fresh key", () => {
  const encoder = new FrameEncoder({ role: "client" });
  const keys = new Set<string>();
  for (let i = 0; i < 64; i++) {
    encoder.encode(frame(Op.Binary, new Uint8Array(8)), (out) => {
      assert.equal(out[1] & 0x80, 0x80);
      // The payload was zeros, so the masked payload is the key repeated.
      assert.deepEqual(out.subarray(6, 10), out.subarray(2, 6));
      keys.add(out.subarray(2, 6).join());
    });
  }
  assert.ok(keys.size > 60, `only ${keys.size} distinct keys in 64 frames`);
});

test("FrameEncoder never modifies the frame's payload", () => {
  const payload = new Uint8Array(1000).fill(0xaa);
  new FrameEncoder({ role: "client" }).encode(
    frame(Op.Binary, payload),
    () => {},
  );
  assert.ok(payload.every((b) => b === 0xaa));
});

test("FrameEncoder as server sends a large payload after its header, uncopied", () => {
  const payload = new Uint8Array(1 << 20);
  const chunks: Uint8Array[] = [];
  new FrameEncoder({ role: "server" }).encode(
    frame(Op.Binary, payload),
    (c) => chunks.push(c),
  );
  assert.equal(chunks.length, 2);
  assert.deepEqual(chunks[0], bytes(0x82, 0x7f, 0, 0, 0, 0, 0, 0x10, 0, 0));
  assert.equal(chunks[1], payload);
});

test("FrameEncoder rejects frames the protocol forbids as the caller's mistake", () => {
  const encoder = new FrameEncoder({ role: "server" });
  const reject = (f: Frame, pattern: RegExp) =>
    assert.throws(() => encoder.encode(f, () => {}), (e: unknown) => {
      assert.ok(e instanceof RangeError);
      assert.match(e.message, pattern);
      return true;
    });
  reject(frame(0x3 as Opcode, ""), /opcode 0x3 is reserved/);
  reject(frame(Op.Ping, "", { fin: false }), /cannot be fragmented/);
  reject(frame(Op.Close, new Uint8Array(126)), /at most 125 bytes/);
});

test("FrameEncoder rejects a mask key source that does not give 4 bytes", () => {
  const encoder = new FrameEncoder({
    role: "client",
    maskKey: () => bytes(1, 2, 3),
  });
  assert.throws(() => encoder.encode(frame(Op.Text, "x"), () => {}), TypeError);
});
