// A compression bomb against a server with permessage-deflate: one 1 MiB
// frame that inflates to 1 GiB. The message-size limit applies to the
// inflated bytes as zlib produces them, so the connection closes with 1009
// long before the gigabyte exists; in streaming mode without a limit, an
// unread body holds the inflater back. Memory is sampled throughout.

import assert from "node:assert/strict";
import process from "node:process";
import { test } from "node:test";
import zlib from "node:zlib";
import { WebSocketConnection } from "../src/connection.ts";
import { WebSocketError } from "../src/errors.ts";
import { encodeFrame } from "../src/frame_encoder.ts";
import type { IncomingMessage } from "../src/message.ts";
import { Opcode } from "../src/opcode.ts";
import { collect, concat, duplexPair, frame } from "./_helpers.ts";

const MiB = 1024 * 1024;
const LIMIT = 16 * MiB;

// 1 MiB of zeros deflates to about 1 KiB ending on a sync flush, so the
// block repeated 1024 times is a valid stream of 1 GiB of zeros.
function bomb(): Uint8Array {
  const block = zlib.deflateRawSync(new Uint8Array(MiB), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const payload = new Uint8Array(block.length * 1024);
  for (let i = 0; i < 1024; i++) payload.set(block, i * block.length);
  return payload;
}

const BOMB = encodeFrame(
  frame(Opcode.Binary, bomb(), { rsv1: true }),
  { role: "client" },
);

/** Samples the resident set size until stopped; returns the peak growth. */
function sampleMemory(): () => number {
  const before = process.memoryUsage().rss;
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 2);
  return () => {
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().rss);
    return peak - before;
  };
}

function serverUnderAttack(options: Record<string, unknown>) {
  const [client, server] = duplexPair();
  const connection = new WebSocketConnection<boolean>(
    Promise.resolve({ ...server, extensions: "permessage-deflate" }),
    { role: "server", ...options },
  );
  const writer = client.writable.getWriter();
  // As a socket delivers it: 64 KiB at a time, each a fresh copy (the
  // decoder unmasks in place).
  const sent = (async () => {
    for (let at = 0; at < BOMB.length; at += 65536) {
      await writer.write(BOMB.slice(at, at + 65536));
    }
  })();
  // The server drops the transport once it has said 1009.
  sent.catch(() => {});
  const answer = collect(client.readable);
  answer.catch(() => {});
  return { connection, sent, answer, writer };
}

function closeCodeOf(answer: Uint8Array[]): number {
  const bytes = concat(answer);
  // The server's Close frame: 0x88, a length, then the code.
  const at = bytes.findIndex((b, i) => b === 0x88 && i + 3 < bytes.length);
  assert.ok(at >= 0, "the server sent a Close frame");
  return (bytes[at + 2] << 8) | bytes[at + 3];
}

for (const streaming of [false, true]) {
  test(
    `WebSocketConnection closes with 1009 on a 1 MiB frame inflating to 1 GiB, ${
      streaming ? "streaming" : "whole"
    } messages, memory growth under 16 MiB`,
    async () => {
      const stop = sampleMemory();
      const { connection, answer } = serverUnderAttack({
        streaming,
        maxMessageSize: MiB,
      });
      const { readable } = await connection.opened;
      const reading = (async () => {
        for await (const message of readable) {
          if (streaming) {
            await (message as IncomingMessage).bytes().catch(() => {});
          }
        }
      })().catch(() => {});
      const error = await connection.closed.then(
        () => assert.fail("the connection closed cleanly"),
        (error) => error,
      );
      const growth = stop();
      assert.ok(error instanceof WebSocketError, String(error));
      assert.equal(error.closeCode, 1009);
      assert.equal(error.code, "message_too_big");
      assert.equal(closeCodeOf(await answer), 1009);
      await reading;
      assert.ok(
        growth < LIMIT,
        `memory grew by ${(growth / MiB).toFixed(1)} MiB`,
      );
    },
  );
}

test("WebSocketConnection in streaming mode without a limit: an unread bomb stays bounded by backpressure", async () => {
  const stop = sampleMemory();
  const { connection, writer } = serverUnderAttack({ streaming: true });
  const { readable } = await connection.opened;
  const reader = readable.getReader();
  const message = (await reader.read()).value as IncomingMessage;
  const body = message.stream.getReader();
  const first = await body.read();
  assert.ok(!first.done);
  let read = (first.value as Uint8Array).length;
  // Read a little more, then stop reading for a while: the inflater must
  // wait rather than fill memory with the rest of the gigabyte.
  while (read < 4 * MiB) {
    const { done, value } = await body.read();
    assert.ok(!done);
    assert.ok((value as Uint8Array).every((b) => b === 0));
    read += (value as Uint8Array).length;
  }
  await new Promise((resolve) => setTimeout(resolve, 300));
  const growth = stop();
  assert.ok(read < 1024 * MiB);
  assert.ok(growth < LIMIT, `memory grew by ${(growth / MiB).toFixed(1)} MiB`);
  await body.cancel();
  connection.close();
  await writer.abort().catch(() => {});
  await connection.closed.catch(() => {});
});
