import assert from "node:assert/strict";
import { test } from "node:test";
import { WebSocketError } from "../src/errors.ts";
import type { Frame, Role } from "../src/frame.ts";
import { FrameDecoderStream } from "../src/frame_decoder_stream.ts";
import { encodeFrame } from "../src/frame_encoder.ts";
import { FrameEncoderStream } from "../src/frame_encoder_stream.ts";
import type { IncomingMessage } from "../src/message.ts";
import { MessageDecoderStream } from "../src/message_decoder_stream.ts";
import { MessageEncoderStream } from "../src/message_encoder_stream.ts";
import { Opcode } from "../src/opcode.ts";
import { bytes, collect, concat, frame, streamOf } from "./_helpers.ts";

const tick = () => new Promise((resolve) => setTimeout(resolve, 10));

function wire(frames: Frame[], role: Role = "server"): Uint8Array {
  return concat(frames.map((f) => encodeFrame(f, { role })));
}

/** A byte source that counts how many chunks were pulled from it. */
function counted(chunks: Uint8Array[]) {
  const source = { pulled: 0, cancelled: undefined as unknown };
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (source.pulled < chunks.length) {
        controller.enqueue(chunks[source.pulled++]);
      } else controller.close();
    },
    cancel(reason) {
      source.cancelled = reason;
    },
  }, { highWaterMark: 0 });
  return { source, stream };
}

test("FrameDecoderStream piped into MessageDecoderStream yields messages, in both roles", async () => {
  for (
    const [sender, receiver] of [["client", "server"], [
      "server",
      "client",
    ]] as const
  ) {
    const bytesOnWire = wire([
      frame(Opcode.Text, "Hel", { fin: false }),
      frame(Opcode.Continuation, "lo"),
      frame(Opcode.Binary, bytes(1, 2, 3)),
      frame(Opcode.Text, ""),
    ], sender);
    const messages = await collect(
      streamOf([bytesOnWire.subarray(0, 5), bytesOnWire.subarray(5)])
        .pipeThrough(new FrameDecoderStream({ role: receiver }))
        .pipeThrough(new MessageDecoderStream()),
    );
    assert.deepEqual(messages, ["Hello", bytes(1, 2, 3), ""]);
  }
});

test("MessageDecoderStream hands control frames to onControl in arrival order", async () => {
  const seen: string[] = [];
  const messages = await collect(
    streamOf([
      wire([
        frame(Opcode.Ping, "1"),
        frame(Opcode.Text, "a", { fin: false }),
        frame(Opcode.Pong, "2"),
        frame(Opcode.Ping, "3"),
        frame(Opcode.Continuation, "b"),
        frame(Opcode.Close, bytes(0x03, 0xe8)),
      ], "server"),
    ])
      .pipeThrough(new FrameDecoderStream({ role: "client" }))
      .pipeThrough(
        new MessageDecoderStream({
          onControl: (f) => seen.push(`${f.opcode}:${f.payload.join(",")}`),
        }),
      ),
  );
  assert.deepEqual(messages, ["ab"]);
  assert.deepEqual(seen, ["9:49", "10:50", "9:51", "8:3,232"]);
});

test("MessageDecoderStream errors with 1007 on invalid UTF-8 and cancels the bytes", async () => {
  const { source, stream } = counted([
    wire([frame(Opcode.Text, bytes(0x41, 0xc0), { fin: false })], "server"),
    wire([frame(Opcode.Continuation, "x")], "server"),
  ]);
  await assert.rejects(
    collect(
      stream.pipeThrough(new FrameDecoderStream({ role: "client" }))
        .pipeThrough(
          new MessageDecoderStream(),
        ),
    ),
    { name: "WebSocketError", code: "invalid_utf8", closeCode: 1007 },
  );
  await tick();
  assert.ok(source.cancelled instanceof WebSocketError);
});

test("MessageDecoderStream errors with 1006 when the bytes end mid-message", async () => {
  await assert.rejects(
    collect(
      streamOf([wire([frame(Opcode.Binary, "a", { fin: false })], "server")])
        .pipeThrough(new FrameDecoderStream({ role: "client" }))
        .pipeThrough(new MessageDecoderStream()),
    ),
    { code: "unexpected_end", closeCode: 1006 },
  );
});

test("Cancelling the messages cancels the byte source with the same reason", async () => {
  for (const fused of [true, false]) {
    const chunk = wire([frame(Opcode.Text, "x")], "server");
    const { source, stream } = counted(Array(100).fill(chunk));
    const options = fused ? undefined : {};
    const messages = stream
      .pipeThrough(new FrameDecoderStream({ role: "client" }), options)
      .pipeThrough(new MessageDecoderStream(), options);
    const reader = messages.getReader();
    assert.equal((await reader.read()).value, "x");
    await reader.cancel("bye");
    await tick();
    assert.equal(source.cancelled, "bye", fused ? "fused" : "composed");
  }
});

test("MessageDecoderStream applies backpressure: unread messages stop the bytes", async () => {
  const chunk = wire([frame(Opcode.Text, "x")], "server");
  const { source, stream } = counted(Array(1000).fill(chunk));
  const messages = stream
    .pipeThrough(new FrameDecoderStream({ role: "client" }))
    .pipeThrough(new MessageDecoderStream());
  await tick();
  assert.ok(
    source.pulled < 10,
    `pulled ${source.pulled} chunks with no reader`,
  );
  const reader = messages.getReader();
  for (let i = 0; i < 20; i++) await reader.read();
  await tick();
  assert.ok(source.pulled < 40, `pulled ${source.pulled} chunks for 20 reads`);
  await reader.cancel();
});

// Streaming mode.

test("MessageDecoderStream in streaming mode yields a message at its first fragment", async () => {
  const { stream } = counted([
    wire([frame(Opcode.Text, "Hel", { fin: false })], "server"),
    wire([frame(Opcode.Continuation, "lo")], "server"),
  ]);
  const reader = stream
    .pipeThrough(new FrameDecoderStream({ role: "client" }))
    .pipeThrough(new MessageDecoderStream({ streaming: true }))
    .getReader();
  const { value: message } = await reader.read();
  assert.equal(message!.type, "text");
  const body = message!.stream.getReader();
  assert.equal((await body.read()).value, "Hel");
  assert.equal((await body.read()).value, "lo");
  assert.equal((await body.read()).done, true);
  assert.equal((await reader.read()).done, true);
});

test("MessageDecoderStream in streaming mode stops pulling frames while a message's stream is unread", async () => {
  const fragment = wire([
    frame(Opcode.Continuation, new Uint8Array(1000), { fin: false }),
  ], "server");
  const chunks = [
    wire(
      [frame(Opcode.Binary, new Uint8Array(1000), { fin: false })],
      "server",
    ),
    ...Array(1000).fill(fragment),
  ];
  const { source, stream } = counted(chunks);
  const reader = stream
    .pipeThrough(new FrameDecoderStream({ role: "client" }))
    .pipeThrough(new MessageDecoderStream({ streaming: true }))
    .getReader();
  const { value: message } = await reader.read();
  await tick();
  assert.ok(
    source.pulled < 10,
    `pulled ${source.pulled} chunks while the body was unread`,
  );
  const body = message!.stream.getReader();
  for (let i = 0; i < 50; i++) {
    assert.equal((await body.read()).value!.length, 1000);
  }
  await tick();
  assert.ok(
    source.pulled < 60,
    `pulled ${source.pulled} chunks for 50 body reads`,
  );
  await reader.cancel();
});

test("MessageDecoderStream in streaming mode drops the rest of a cancelled message", async () => {
  const reader = streamOf([
    wire([
      frame(Opcode.Binary, bytes(1), { fin: false }),
      frame(Opcode.Continuation, bytes(2), { fin: false }),
      frame(Opcode.Continuation, bytes(3)),
      frame(Opcode.Text, "next"),
    ], "server"),
  ])
    .pipeThrough(new FrameDecoderStream({ role: "client" }))
    .pipeThrough(new MessageDecoderStream({ streaming: true }))
    .getReader();
  const first = (await reader.read()).value!;
  await first.stream.cancel();
  const second = (await reader.read()).value!;
  assert.equal(await second.text(), "next");
  assert.equal((await reader.read()).done, true);
});

test("MessageDecoderStream in streaming mode errors the message's stream on invalid UTF-8", async () => {
  const reader = streamOf([
    wire([frame(Opcode.Text, "ok", { fin: false })], "server"),
    wire([frame(Opcode.Continuation, bytes(0xed, 0xa0, 0x80))], "server"),
  ])
    .pipeThrough(new FrameDecoderStream({ role: "client" }))
    .pipeThrough(new MessageDecoderStream({ streaming: true }))
    .getReader();
  const message: IncomingMessage = (await reader.read()).value!;
  await assert.rejects(message.text(), {
    code: "invalid_utf8",
    closeCode: 1007,
  });
  await assert.rejects(reader.read(), { code: "invalid_utf8" });
});

test("IncomingMessage text() and bytes() read the whole message", async () => {
  const reader = streamOf([
    wire([
      frame(Opcode.Text, "h\u00e9", { fin: false }),
      frame(Opcode.Continuation, "llo"),
      frame(Opcode.Binary, bytes(1), { fin: false }),
      frame(Opcode.Continuation, bytes(2)),
    ], "server"),
  ])
    .pipeThrough(new FrameDecoderStream({ role: "client" }))
    .pipeThrough(new MessageDecoderStream({ streaming: true }))
    .getReader();
  assert.deepEqual(
    await (await reader.read()).value!.bytes(),
    new TextEncoder().encode("h\u00e9llo"),
  );
  assert.deepEqual(await (await reader.read()).value!.bytes(), bytes(1, 2));
});

// Outgoing.

test("MessageEncoderStream piped into FrameEncoderStream yields bytes that decode back", async () => {
  const messages = [
    "Hello",
    bytes(1, 2, 3),
    "",
    new Uint8Array(5000).fill(7),
    "\u{1f600}".repeat(100),
  ];
  const decoded = await collect(
    streamOf<string | Uint8Array>(messages)
      .pipeThrough(new MessageEncoderStream({ fragmentSize: 1000 }))
      .pipeThrough(new FrameEncoderStream({ role: "client" }))
      .pipeThrough(new FrameDecoderStream({ role: "server" }))
      .pipeThrough(new MessageDecoderStream()),
  );
  assert.deepEqual(decoded, messages);
});

test("MessageEncoderStream fragments at fragmentSize", async () => {
  const frames = await collect(
    streamOf(["abcdefg"]).pipeThrough(
      new MessageEncoderStream({ fragmentSize: 3 }),
    ),
  );
  assert.deepEqual(
    frames.map((f) => [f.opcode, f.fin, new TextDecoder().decode(f.payload)]),
    [
      [Opcode.Text, false, "abc"],
      [Opcode.Continuation, false, "def"],
      [Opcode.Continuation, true, "g"],
    ],
  );
});

test("MessageEncoderStream accepts ArrayBuffers and other views as binary", async () => {
  const frames = await collect(
    streamOf([
      new Uint16Array([0x0201]).buffer,
      new DataView(bytes(9, 8, 7).buffer, 1, 2),
    ])
      .pipeThrough(new MessageEncoderStream()),
  );
  assert.deepEqual(frames, [
    frame(Opcode.Binary, bytes(1, 2)),
    frame(Opcode.Binary, bytes(8, 7)),
  ]);
});

test("MessageEncoderStream errors with a TypeError on something that is not a message", async () => {
  await assert.rejects(
    collect(
      streamOf([42 as unknown as string]).pipeThrough(
        new MessageEncoderStream(),
      ),
    ),
    TypeError,
  );
});

test("MessageEncoderStream slots a pong between the fragments of a large message", async () => {
  // 64 MiB as 64 fragments of 1 MiB; the reader takes one fragment, then a
  // pong is sent: it must come next, not after the other 63.
  const encoder = new MessageEncoderStream({ fragmentSize: 1 << 20 });
  const writer = encoder.writable.getWriter();
  const written = writer.write(new Uint8Array(64 << 20));
  const reader = encoder.readable.getReader();
  const first = (await reader.read()).value!;
  assert.equal(first.opcode, Opcode.Binary);
  encoder.sendControl(frame(Opcode.Pong, "pong"));
  const order: string[] = [];
  for (let i = 0; i < 64; i++) {
    const f = (await reader.read()).value!;
    order.push(f.opcode === Opcode.Pong ? "pong" : f.fin ? "last" : "fragment");
  }
  assert.ok(
    order.indexOf("pong") <= 1,
    `pong came at ${order.indexOf("pong")}`,
  );
  assert.equal(order.at(-1), "last");
  await written;
  await writer.close();
});

test("MessageEncoderStream slots a pong into a streamed upload that has not ended", async () => {
  let produced = 0;
  const upload = new ReadableStream<Uint8Array>({
    pull(controller) {
      produced++;
      controller.enqueue(new Uint8Array(64 * 1024));
    },
  });
  const encoder = new MessageEncoderStream();
  const writer = encoder.writable.getWriter();
  writer.write({ type: "binary", stream: upload }).catch(() => {});
  const reader = encoder.readable.getReader();
  for (let i = 0; i < 3; i++) {
    assert.equal((await reader.read()).value!.fin, false);
  }
  encoder.sendControl(frame(Opcode.Pong, ""));
  const next = [(await reader.read()).value!, (await reader.read()).value!];
  assert.ok(
    next.some((f) => f.opcode === Opcode.Pong),
    "the pong did not come within two frames",
  );
  assert.ok(
    produced < 10,
    `the upload was read ${produced} times ahead of the reader`,
  );
  await reader.cancel();
  await tick();
});

test("MessageEncoderStream ends a streamed message with an empty final fragment", async () => {
  const frames = await collect(
    streamOf([{ type: "text" as const, stream: streamOf(["Hel", "", "lo"]) }])
      .pipeThrough(new MessageEncoderStream()),
  );
  assert.deepEqual(frames, [
    frame(Opcode.Text, "Hel", { fin: false }),
    frame(Opcode.Continuation, "lo", { fin: false }),
    frame(Opcode.Continuation, ""),
  ]);
  const empty = await collect(
    streamOf([{ type: "binary" as const, stream: streamOf<Uint8Array>([]) }])
      .pipeThrough(new MessageEncoderStream()),
  );
  assert.deepEqual(empty, [frame(Opcode.Binary, "")]);
});

test("MessageEncoderStream.sendControl rejects what is not a control frame, and sends nothing after close", async () => {
  const encoder = new MessageEncoderStream();
  assert.throws(() => encoder.sendControl(frame(Opcode.Text, "x")), RangeError);
  assert.throws(
    () => encoder.sendControl(frame(Opcode.Ping, new Uint8Array(126))),
    RangeError,
  );
  await encoder.writable.close();
  await collect(encoder.readable);
  assert.throws(() => encoder.sendControl(frame(Opcode.Ping, "")), TypeError);
});
