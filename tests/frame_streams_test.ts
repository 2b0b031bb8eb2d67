import assert from "node:assert/strict";
import { test } from "node:test";
import { WebSocketError } from "../src/errors.ts";
import { FrameDecoderStream } from "../src/frame_decoder_stream.ts";
import { FrameEncoderStream } from "../src/frame_encoder_stream.ts";
import { Opcode } from "../src/opcode.ts";
import { bytes, collect, concat, frame, streamOf } from "./_helpers.ts";

test("FrameDecoderStream turns chunks into frames", async () => {
  const frames = await collect(
    streamOf([
      bytes(0x01, 0x03, 0x48),
      bytes(0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f),
    ])
      .pipeThrough(new FrameDecoderStream({ role: "client" })),
  );
  assert.deepEqual(frames, [
    frame(Opcode.Text, "Hel", { fin: false }),
    frame(Opcode.Continuation, "lo"),
  ]);
});

test("FrameDecoderStream errors with the WebSocketError of a violation", async () => {
  await assert.rejects(
    collect(
      streamOf([bytes(0x82, 0x00), bytes(0x8b, 0x00)]).pipeThrough(
        new FrameDecoderStream({ role: "client" }),
      ),
    ),
    (error: unknown) =>
      error instanceof WebSocketError && error.code === "reserved_opcode" &&
      error.closeCode === 1002,
  );
});

test("FrameDecoderStream errors with 1006 when the bytes end mid-frame", async () => {
  await assert.rejects(
    collect(
      streamOf([bytes(0x82, 0x05, 1)]).pipeThrough(
        new FrameDecoderStream({ role: "client" }),
      ),
    ),
    { name: "WebSocketError", code: "unexpected_end", closeCode: 1006 },
  );
});

test("FrameEncoderStream and FrameDecoderStream round-trip in both roles", async () => {
  const frames = [
    frame(Opcode.Text, "Hel", { fin: false }),
    frame(Opcode.Ping, "are you there?"),
    frame(Opcode.Continuation, "lo"),
    frame(Opcode.Binary, new Uint8Array(70000).fill(7)),
    frame(Opcode.Close, bytes(0x03, 0xe8)),
  ];
  for (
    const [sender, receiver] of [["client", "server"], [
      "server",
      "client",
    ]] as const
  ) {
    const decoded = await collect(
      streamOf(frames)
        .pipeThrough(new FrameEncoderStream({ role: sender }))
        .pipeThrough(new FrameDecoderStream({ role: receiver })),
    );
    assert.deepEqual(decoded, frames, `${sender} → ${receiver}`);
  }
});

test("FrameEncoderStream writes the §5.7 masked frame with an injected key", async () => {
  const out = await collect(
    streamOf([frame(Opcode.Text, "Hello")]).pipeThrough(
      new FrameEncoderStream({
        role: "client",
        maskKey: () => bytes(0x37, 0xfa, 0x21, 0x3d),
      }),
    ),
  );
  assert.deepEqual(
    concat(out),
    bytes(0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58),
  );
});

test("FrameEncoderStream errors with a RangeError on a forbidden frame", async () => {
  await assert.rejects(
    collect(
      streamOf([frame(Opcode.Ping, new Uint8Array(200))]).pipeThrough(
        new FrameEncoderStream({ role: "server" }),
      ),
    ),
    RangeError,
  );
});

test("FrameDecoderStream applies backpressure: it stops pulling bytes when frames are not read", async () => {
  let pulled = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(bytes(0x82, 0x01, pulled & 0xff));
    },
  }, { highWaterMark: 0 });
  const frames = source.pipeThrough(new FrameDecoderStream({ role: "client" }));
  await new Promise((resolve) => setTimeout(resolve, 50));
  const before = pulled;
  assert.ok(before < 10, `pulled ${before} chunks with no reader`);
  const reader = frames.getReader();
  await reader.read();
  await reader.cancel();
});
