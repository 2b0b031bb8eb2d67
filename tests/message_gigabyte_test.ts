// A 1 GiB message in streaming mode passes through with bounded memory.

import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import { FrameDecoderStream } from "../src/frame_decoder_stream.ts";
import { encodeFrame } from "../src/frame_encoder.ts";
import { MessageDecoderStream } from "../src/message_decoder_stream.ts";
import { Opcode } from "../src/opcode.ts";
import { frame } from "./_helpers.ts";

const GiB = 1024 ** 3;
const FRAGMENT = 1024 * 1024;

test("MessageDecoderStream streams a 1 GiB message with under 64 MiB of memory growth", async () => {
  // The sender is a server, so frames are unmasked and one fragment's bytes
  // can be sent again and again without being copied.
  const payload = new Uint8Array(FRAGMENT).fill(0x5a);
  const first = encodeFrame(frame(Opcode.Binary, payload, { fin: false }), {
    role: "server",
  });
  const middle = encodeFrame(
    frame(Opcode.Continuation, payload, { fin: false }),
    { role: "server" },
  );
  const last = encodeFrame(frame(Opcode.Continuation, payload), {
    role: "server",
  });
  const count = GiB / FRAGMENT;
  let sent = 0;
  const bytes = new ReadableStream<Uint8Array>({
    pull(controller) {
      const chunk = sent === 0 ? first : sent === count - 1 ? last : middle;
      // Deliver each frame in 64 KiB pieces, as a socket would.
      for (let at = 0; at < chunk.length; at += 65536) {
        controller.enqueue(chunk.subarray(at, at + 65536));
      }
      if (++sent === count) controller.close();
    },
  }, { highWaterMark: 0 });

  const before = process.memoryUsage().rss;
  let peak = before;
  let received = 0;
  let wrong = 0;
  const messages = bytes
    .pipeThrough(
      new FrameDecoderStream({ role: "client", splitFrames: true }),
    )
    .pipeThrough(new MessageDecoderStream({ streaming: true }));
  for await (const message of messages) {
    assert.equal(message.type, "binary");
    const reader = message.stream.getReader();
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      const chunk = value as Uint8Array;
      received += chunk.length;
      if (chunk[0] !== 0x5a || chunk[chunk.length - 1] !== 0x5a) wrong++;
      if ((received & (64 * FRAGMENT - 1)) === 0) {
        peak = Math.max(peak, process.memoryUsage().rss);
      }
    }
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  assert.equal(received, GiB);
  assert.equal(wrong, 0);
  const growth = (peak - before) / 1024 / 1024;
  assert.ok(growth < 64, `memory grew by ${growth.toFixed(1)} MiB`);
});
