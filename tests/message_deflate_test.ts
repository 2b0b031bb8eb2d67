// Compressing and decompressing messages (RFC 7692 §6, §7.2):
// MessageDeflateStream and MessageInflateStream alone, in the frame and
// message pipelines, and inside connections; with a fast-check round trip
// over any messages, parameters, fragmentation and chunking.

import assert from "node:assert/strict";
import { test } from "node:test";
import zlib from "node:zlib";
import fc from "fast-check";
import type { Stage } from "../src/_stage.ts";
import { WebSocketConnection } from "../src/connection.ts";
import { WebSocketError } from "../src/errors.ts";
import { HandshakeError } from "../src/handshake.ts";
import type { Frame, Role } from "../src/frame.ts";
import { FrameDecoderStream } from "../src/frame_decoder_stream.ts";
import { encodeFrame } from "../src/frame_encoder.ts";
import { FrameEncoderStream } from "../src/frame_encoder_stream.ts";
import type { IncomingMessage, Message } from "../src/message.ts";
import { MessageDecoderStream } from "../src/message_decoder_stream.ts";
import { MessageDeflateStream } from "../src/message_deflate_stream.ts";
import { MessageEncoderStream } from "../src/message_encoder_stream.ts";
import { MessageInflateStream } from "../src/message_inflate_stream.ts";
import { Opcode } from "../src/opcode.ts";
import {
  bytes,
  collect,
  concat,
  cut,
  duplexPair,
  frame,
  linked,
  streamOf,
} from "./_helpers.ts";

const utf8 = new TextEncoder();

/** Frames through a MessageInflateStream and a MessageDecoderStream. */
function inflateMessages(
  frames: Frame[],
  options: ConstructorParameters<typeof MessageInflateStream>[0] = {},
): Promise<Message[]> {
  return collect(
    streamOf(frames).pipeThrough(new MessageInflateStream(options))
      .pipeThrough(new MessageDecoderStream()),
  );
}

/** Messages through a MessageEncoderStream and a MessageDeflateStream. */
function deflateFrames(
  messages: Message[],
  options: ConstructorParameters<typeof MessageDeflateStream>[0] = {},
  fragmentSize?: number,
): Promise<Frame[]> {
  return collect(
    streamOf(messages).pipeThrough(new MessageEncoderStream({ fragmentSize }))
      .pipeThrough(new MessageDeflateStream(options)),
  );
}

/**
 * Stages in a row as one transform: piped, or joined by link() as a
 * connection joins them.
 */
// deno-lint-ignore no-explicit-any
function chain<I, O>(joined: boolean, ...stages: Stage<any, any>[]): {
  writable: WritableStream<I>;
  readable: ReadableStream<O>;
} {
  if (joined) return linked<I, O>(...stages);
  let readable = stages[0].readable;
  for (const stage of stages.slice(1)) readable = readable.pipeThrough(stage);
  return { writable: stages[0].writable, readable };
}

/** A compressed message's payload, inflated with an empty window. */
function inflateAlone(payload: Uint8Array): Uint8Array {
  return zlib.inflateRawSync(concat([payload, bytes(0, 0, 0xff, 0xff)]), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
}

async function failure(promise: Promise<unknown>): Promise<WebSocketError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof WebSocketError, String(error));
    return error;
  }
  assert.fail("expected a WebSocketError");
}

// RFC 7692 §7.2.3: the examples, as a receiver must read them.
test("MessageInflateStream reads the RFC 7692 §7.2.3 examples", async () => {
  const text = (payload: Uint8Array, fields: Partial<Frame> = {}) =>
    frame(Opcode.Text, payload, { rsv1: true, ...fields });
  // §7.2.3.1: "Hello" in one compressed frame, and in two fragments.
  const hello = bytes(0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00);
  assert.deepEqual(await inflateMessages([text(hello)]), ["Hello"]);
  assert.deepEqual(
    await inflateMessages([
      text(bytes(0xf2, 0x48, 0xcd), { fin: false }),
      frame(Opcode.Continuation, bytes(0xc9, 0xc9, 0x07, 0x00)),
    ]),
    ["Hello"],
  );
  // §7.2.3.2: the second "Hello" refers back to the first (context
  // takeover).
  assert.deepEqual(
    await inflateMessages([
      text(hello),
      text(bytes(0xf2, 0x00, 0x11, 0x00, 0x00)),
    ]),
    ["Hello", "Hello"],
  );
  // §7.2.3.3: a stored (uncompressed) DEFLATE block.
  assert.deepEqual(
    await inflateMessages([
      text(bytes(0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f)),
    ]),
    ["Hello"],
  );
  // §7.2.3.4: a block with BFINAL set, and the padding after it.
  assert.deepEqual(
    await inflateMessages([
      text(bytes(0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00)),
    ]),
    ["Hello"],
  );
  // §7.2.3.5: two DEFLATE blocks in one message.
  assert.deepEqual(
    await inflateMessages([
      text(
        bytes(
          0xf2,
          0x48,
          0x05,
          0x00,
          0x00,
          0x00,
          0xff,
          0xff,
          0xca,
          0xc9,
          0xc9,
          0x07,
          0x00,
        ),
      ),
    ]),
    ["Hello"],
  );
  // §7.2.3.6: an empty message compresses to 0x00.
  assert.deepEqual(await inflateMessages([text(bytes(0x00))]), [""]);
});

test("MessageInflateStream passes uncompressed messages and control frames through", async () => {
  const frames = [
    frame(Opcode.Text, "plain", { fin: false }),
    frame(Opcode.Ping, "?"),
    frame(Opcode.Continuation, " text"),
    frame(Opcode.Binary, bytes(1, 2, 3)),
  ];
  const out = await collect(
    streamOf(frames).pipeThrough(new MessageInflateStream()),
  );
  assert.deepEqual(out, frames);
});

test("MessageInflateStream fails on RSV1 where RFC 7692 §6.1 forbids it (1002)", async () => {
  const cases = [
    [frame(Opcode.Ping, "", { rsv1: true })],
    [frame(Opcode.Close, bytes(0x03, 0xe8), { rsv1: true })],
    [
      frame(Opcode.Text, bytes(0xf2, 0x48), { rsv1: true, fin: false }),
      frame(Opcode.Continuation, bytes(0xcd, 0xc9, 0xc9, 0x07, 0x00), {
        rsv1: true,
      }),
    ],
    [
      frame(Opcode.Text, "a", { fin: false }),
      frame(Opcode.Continuation, "b", { rsv1: true }),
    ],
  ];
  for (const frames of cases) {
    const error = await failure(inflateMessages(frames));
    assert.equal(error.closeCode, 1002);
    assert.equal(error.code, "reserved_bits");
  }
});

test("MessageInflateStream fails on data that does not inflate (1007)", async () => {
  for (
    const payload of [
      bytes(0xff, 0xff, 0xff, 0xff),
      // A block type of 3 is reserved (RFC 1951 §3.2.3).
      bytes(0x07),
      // A distance before the start of the window.
      bytes(0xf2, 0x00, 0x11, 0x00, 0x00),
    ]
  ) {
    const error = await failure(
      inflateMessages([frame(Opcode.Binary, payload, { rsv1: true })]),
    );
    assert.equal(error.closeCode, 1007);
    assert.equal(error.code, "invalid_compressed_data");
  }
});

// RFC 7692 §7.2.3.4: "implementors can choose to flush data using DEFLATE
// blocks with "BFINAL" set to 1". A one-shot deflateRawSync makes such a
// message, with nothing after its final block.
function final(text: string): Uint8Array {
  return zlib.deflateRawSync(utf8.encode(text));
}

test("MessageInflateStream reads each message after one that ends in a final block (§7.2.3.4)", async () => {
  const text = (payload: Uint8Array, fields: Partial<Frame> = {}) =>
    frame(Opcode.Text, payload, { rsv1: true, ...fields });
  const hello = bytes(0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00);
  // A final empty stored block, 01 00 00 ff ff, less the tail that §7.2.1
  // drops: the receiver's own 00 00 ff ff completes it, and no byte is
  // left over to show that the DEFLATE stream has ended.
  const storedFinal = bytes(0x01);
  for (const noContextTakeover of [false, true]) {
    const what = `noContextTakeover: ${noContextTakeover}`;
    assert.deepEqual(
      await inflateMessages([
        text(final("first")),
        text(final("second")),
        text(final("third")),
      ], { noContextTakeover }),
      ["first", "second", "third"],
      what,
    );
    // The RFC's own bytes: a final block, then a 0x00.
    assert.deepEqual(
      await inflateMessages([text(hello), text(hello), text(final("x"))], {
        noContextTakeover,
      }),
      ["Hello", "Hello", "x"],
      what,
    );
    assert.deepEqual(
      await inflateMessages([
        text(storedFinal),
        text(final("after")),
        text(storedFinal),
        text(storedFinal),
        text(bytes(0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00)),
      ], { noContextTakeover }),
      ["", "after", "", "", "Hello"],
      what,
    );
  }
  // With context takeover, the message after a final block starts a new
  // LZ77 window, which the one after it may refer back to (§7.2.3.2).
  assert.deepEqual(
    await inflateMessages([
      text(final("first")),
      text(bytes(0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00)),
      text(bytes(0xf2, 0x00, 0x11, 0x00, 0x00)),
    ]),
    ["first", "Hello", "Hello"],
  );
});

test("MessageInflateStream finds a final block anywhere in a fragmented message", async () => {
  const first = final("a first message, in fragments");
  const n = first.length;
  const splits: Uint8Array[][] = [
    // The final block ends inside the second fragment, the 0x00 after it.
    [first.subarray(0, 3), concat([first.subarray(3), bytes(0x00)])],
    // It ends with the second fragment; the 0x00 comes in the third.
    [first.subarray(0, 3), first.subarray(3), bytes(0x00)],
    // It ends with a fragment, and the rest are empty.
    [first.subarray(0, n - 1), first.subarray(n - 1), bytes(), bytes()],
    [bytes(), first, bytes()],
  ];
  for (const pieces of splits) {
    const frames = pieces.map((payload, i) =>
      i === 0
        ? frame(Opcode.Text, payload, { rsv1: true, fin: false })
        : frame(Opcode.Continuation, payload, { fin: i === pieces.length - 1 })
    );
    for (const noContextTakeover of [false, true]) {
      assert.deepEqual(
        await inflateMessages([
          ...frames,
          frame(Opcode.Text, final("second"), { rsv1: true }),
        ], { noContextTakeover }),
        ["a first message, in fragments", "second"],
        `${
          pieces.map((p) => p.length)
        }, noContextTakeover: ${noContextTakeover}`,
      );
    }
  }
});

test("property: messages that end in a final block, in any fragments, inflate whole", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(
        fc.record({
          text: fc.string({ maxLength: 300 }),
          // The 0x00 that §7.2.1 leaves after a final block, or nothing.
          padded: fc.boolean(),
          cuts: fc.array(fc.nat(), { maxLength: 4 }),
        }),
        { minLength: 1, maxLength: 5 },
      ),
      fc.boolean(),
      async (messages, noContextTakeover) => {
        const frames = messages.flatMap(({ text, padded, cuts }) => {
          const data = final(text);
          const pieces = cut(padded ? concat([data, bytes(0x00)]) : data, cuts);
          return pieces.map((payload, i) =>
            i === 0
              ? frame(Opcode.Text, payload, {
                rsv1: true,
                fin: pieces.length === 1,
              })
              : frame(Opcode.Continuation, payload, {
                fin: i === pieces.length - 1,
              })
          );
        });
        assert.deepEqual(
          await inflateMessages(frames, { noContextTakeover }),
          messages.map((m) => m.text),
        );
      },
    ),
    { numRuns: 100 },
  );
});

test("MessageInflateStream fails with 1007 on data after a final block", async () => {
  const first = final("first");
  const cases: Frame[][] = [
    [frame(Opcode.Text, concat([first, utf8.encode("junk")]), { rsv1: true })],
    // More than the one 0x00 that §7.2.1 leaves after a final block.
    [frame(Opcode.Text, concat([first, bytes(0x00, 0x00)]), { rsv1: true })],
    [frame(Opcode.Text, concat([first, bytes(0x01)]), { rsv1: true })],
    // A second DEFLATE stream in the same message.
    [frame(Opcode.Text, concat([first, final("second")]), { rsv1: true })],
    // The data after it in a later fragment.
    [
      frame(Opcode.Text, first, { rsv1: true, fin: false }),
      frame(Opcode.Continuation, bytes(0x00), { fin: false }),
      frame(Opcode.Continuation, bytes(0x00)),
    ],
    // A final stored block of one byte, which takes its byte from the
    // 00 00 ff ff the receiver appends and leaves the rest.
    [frame(Opcode.Binary, bytes(0x01, 0x01, 0x00, 0xfe, 0xff), { rsv1: true })],
  ];
  for (const frames of cases) {
    for (const noContextTakeover of [false, true]) {
      const error = await failure(
        inflateMessages(
          [frame(Opcode.Text, final("before"), { rsv1: true }), ...frames],
          { noContextTakeover },
        ),
      );
      assert.equal(error.closeCode, 1007);
      assert.equal(error.code, "invalid_compressed_data");
      assert.match(error.message, /final DEFLATE block/);
    }
  }
});

test("MessageInflateStream with final blocks keeps to maxMessageSize (1009)", async () => {
  // 1 MB of zeros in a final block: about a kilobyte on the wire.
  const bomb = zlib.deflateRawSync(new Uint8Array(1_000_000));
  const frames = [
    frame(Opcode.Binary, final("small"), { rsv1: true }),
    frame(Opcode.Binary, bomb, { rsv1: true }),
  ];
  const error = await failure(collect(
    streamOf(frames).pipeThrough(new MessageInflateStream()).pipeThrough(
      new MessageDecoderStream({ maxMessageSize: 100_000 }),
    ),
  ));
  assert.equal(error.closeCode, 1009);
  assert.equal(error.code, "message_too_big");
});

test("MessageInflateStream hands a reader that is behind the whole of a large message", async () => {
  // zlib calls back on a write once it has made its output, which a stream
  // paused for the reader may still hold: that output must reach the
  // reader too, with or without a final block.
  const data = Uint8Array.from({ length: 1 << 20 }, (_, i) => (i * 31) % 7);
  const synced = zlib.deflateRawSync(data, {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  for (
    const payload of [
      synced.subarray(0, synced.length - 4),
      zlib.deflateRawSync(data),
    ]
  ) {
    const frames = [
      frame(Opcode.Binary, payload, { rsv1: true }),
      frame(Opcode.Binary, final("after"), { rsv1: true }),
    ];
    const messages = streamOf(frames).pipeThrough(new MessageInflateStream())
      .pipeThrough(new MessageDecoderStream({ streaming: true }));
    const got: Uint8Array[] = [];
    for await (const message of messages) {
      const parts: Uint8Array[] = [];
      for await (const chunk of message.stream) {
        parts.push(chunk as Uint8Array);
        // A reader slower than zlib.
        await new Promise((resolve) => setTimeout(resolve, 1));
      }
      got.push(concat(parts));
    }
    assert.equal(got.length, 2);
    assert.equal(got[0].length, data.length);
    assert.ok(
      got[0].every((b, i) => b === data[i]),
      "the bytes are the sent bytes",
    );
    assert.deepEqual(got[1], utf8.encode("after"));
  }
});

test("a failing MessageInflateStream stops the FrameDecoderStream before it, piped or linked", async () => {
  for (const joined of [false, true]) {
    const decoder = new FrameDecoderStream({
      role: "client",
      reservedBits: { rsv1: true },
    });
    const messages = chain<Uint8Array, Message>(
      joined,
      decoder,
      new MessageInflateStream(),
      new MessageDecoderStream(),
    );
    const bad = frame(Opcode.Binary, bytes(0x07), { rsv1: true });
    const writer = messages.writable.getWriter();
    writer.write(encodeFrame(bad, { role: "server" })).catch(() => {});
    const error = await failure(collect(messages.readable));
    assert.equal(error.closeCode, 1007);
    // The frame decoder is cancelled, as a pipe cancels its source: what
    // is written to it after the failure is refused, not decoded unread.
    const closed = await writer.closed.then(() => "closed", (e) => e);
    assert.ok(closed instanceof WebSocketError, String(closed));
    assert.equal(closed.closeCode, 1007, joined ? "linked" : "piped");
  }
});

test("MessageDeflateStream compresses from the threshold on, RSV1 on the first frame only", async () => {
  const small = "x".repeat(99);
  const large = "y".repeat(100);
  const frames = await deflateFrames([small, large], { threshold: 100 });
  assert.equal(frames[0].rsv1, false);
  assert.deepEqual(frames[0].payload, utf8.encode(small));
  assert.equal(frames[1].rsv1, true);
  assert.ok(frames[1].payload.length < 20);
  // Fragmented messages are always compressed; RSV1 only on the first.
  const fragmented = await deflateFrames(["z".repeat(50)], {
    threshold: 100,
  }, 20);
  assert.deepEqual(fragmented.map((f) => [f.opcode, f.rsv1, f.fin]), [
    [Opcode.Text, true, false],
    [Opcode.Continuation, false, false],
    [Opcode.Continuation, false, true],
  ]);
  assert.deepEqual(await inflateMessages(fragmented), ["z".repeat(50)]);
});

test("MessageDeflateStream drops the 00 00 ff ff tail, and leaves control frames alone", async () => {
  const encoder = new MessageEncoderStream();
  const frames = collect(
    encoder.readable.pipeThrough(new MessageDeflateStream({ threshold: 0 })),
  );
  const writer = encoder.writable.getWriter();
  await writer.write("Hello");
  encoder.sendControl(frame(Opcode.Ping, "ping"));
  await writer.close();
  const [hello, ping] = await frames;
  assert.equal(hello.rsv1, true);
  // What zlib makes of "Hello" varies; that it is raw DEFLATE ending in a
  // sync flush minus its tail does not.
  const n = hello.payload.length;
  assert.notDeepEqual([...hello.payload.subarray(n - 4)], [0, 0, 0xff, 0xff]);
  assert.equal(
    new TextDecoder().decode(
      inflateAlone(hello.payload),
    ),
    "Hello",
  );
  assert.deepEqual(ping, frame(Opcode.Ping, "ping"));
});

test("MessageDeflateStream sends empty messages one after another that inflate (§7.2.3.6)", async () => {
  // zlib writes no flush marker for a flush with nothing new: each empty
  // message must still be a whole empty block once the tail is appended.
  for (const level of [0, -1, 9]) {
    const messages = ["", "", new Uint8Array(0), "after", ""];
    const frames = await deflateFrames(messages, { threshold: 0, level });
    assert.ok(frames.every((f) => f.rsv1 && f.payload.length > 0));
    assert.deepEqual(await inflateMessages(frames), messages);
  }
});

test("MessageDeflateStream keeps its context between messages unless told not to (§7.1.1)", async () => {
  // Letters without repeats of their own: only a context can shrink them.
  let x = 1;
  const text = Array.from({ length: 4000 }, () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return String.fromCharCode(97 + (x >>> 24) % 26);
  }).join("");
  const takeover = await deflateFrames([text, text], { threshold: 0 });
  // The second refers back to the first.
  assert.ok(takeover[1].payload.length < takeover[0].payload.length / 4);
  assert.deepEqual(await inflateMessages(takeover), [text, text]);

  const fresh = await deflateFrames([text, text, text], {
    threshold: 0,
    noContextTakeover: true,
  });
  // Each message inflates on its own, with an empty window.
  for (const f of fresh) {
    assert.equal(new TextDecoder().decode(inflateAlone(f.payload)), text);
  }
  assert.deepEqual(fresh[1].payload, fresh[0].payload);
});

test("MessageDeflateStream honours small windows: 8 to 15 bits round-trip", async () => {
  const data = new Uint8Array(20000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251 & (i >> 6);
  for (let bits = 8; bits <= 15; bits++) {
    const frames = await deflateFrames([data, data], {
      windowBits: bits,
      threshold: 0,
    });
    const messages = await collect(
      streamOf(frames)
        .pipeThrough(new MessageInflateStream({ windowBits: bits }))
        .pipeThrough(new MessageDecoderStream()),
    );
    assert.deepEqual(messages, [data, data], `window bits ${bits}`);
  }
});

// ---------------------------------------------------------------------------
// Connections

interface Pair {
  client: WebSocketConnection<boolean>;
  server: WebSocketConnection<boolean>;
}

function connect(
  extensions: string,
  client: Record<string, unknown> = {},
  server: Record<string, unknown> = {},
): Pair {
  const [a, b] = duplexPair();
  return {
    client: new WebSocketConnection(Promise.resolve({ ...a, extensions }), {
      role: "client",
      ...client,
    }),
    server: new WebSocketConnection(Promise.resolve({ ...b, extensions }), {
      role: "server",
      ...server,
    }),
  };
}

test("WebSocketConnection compresses both ways once permessage-deflate is agreed", async () => {
  for (
    const extensions of [
      "permessage-deflate",
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
      "permessage-deflate; server_max_window_bits=8; client_max_window_bits=9",
    ]
  ) {
    const { client, server } = connect(extensions, {
      perMessageDeflate: { threshold: 0 },
    }, { perMessageDeflate: { threshold: 0 } });
    const messages: Message[] = [
      "",
      "Hello",
      "é€😀".repeat(5000),
      new Uint8Array(300000).fill(42),
      bytes(),
    ];
    const { readable, writable, extensions: agreed } = await server.opened;
    assert.equal(agreed, extensions);
    const echo = readable.pipeTo(writable);
    const { readable: incoming, writable: outgoing } = await client.opened;
    const writer = outgoing.getWriter();
    const reader = incoming.getReader();
    for (const message of messages) {
      await writer.write(message);
      assert.deepEqual((await reader.read()).value, message, extensions);
    }
    await client.ping("between");
    client.close({ closeCode: 1000 });
    assert.deepEqual(await client.closed, { closeCode: 1000, reason: "" });
    await echo;
  }
});

test("WebSocketConnection with permessage-deflate streams a large message with backpressure", async () => {
  const { client, server } = connect(
    "permessage-deflate",
    {},
    { streaming: true },
  );
  const piece = utf8.encode("streaming compressed text ".repeat(4000));
  const pieces = 80; // ~8 MiB, which compresses to well under 100 KiB
  const { writable } = await client.opened;
  const writer = writable.getWriter();
  let pulled = 0;
  const sent = writer.write({
    type: "binary",
    stream: new ReadableStream<Uint8Array>({
      pull(controller) {
        if (pulled++ < pieces) controller.enqueue(piece);
        else controller.close();
      },
    }, { highWaterMark: 0 }),
  });
  const { readable } = await server.opened;
  const reader = readable.getReader();
  const message = (await reader.read()).value as IncomingMessage;
  assert.equal(message.type, "binary");
  const body = message.stream.getReader();
  const first = await body.read();
  assert.ok(!first.done && first.value.length > 0);
  // Unread, the body holds the inflater back: the sender stalls long
  // before it has sent everything.
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.ok(pulled < pieces, `the sender went on to piece ${pulled}`);
  let size = first.value.length;
  let ok = true;
  let at = first.value.length;
  while (true) {
    const { done, value } = await body.read();
    if (done) break;
    const chunk = value as Uint8Array;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== piece[(at + i) % piece.length]) ok = false;
    }
    at += chunk.length;
    size += chunk.length;
  }
  assert.equal(size, piece.length * pieces);
  assert.ok(ok, "the streamed bytes are the sent bytes");
  await sent;
  client.close();
  await Promise.all([client.closed, server.closed]);
});

test("WebSocketConnection with permessage-deflate closes with 1009 when a message inflates past maxMessageSize", async () => {
  const { client, server } = connect(
    "permessage-deflate",
    {},
    { maxMessageSize: 100000 },
  );
  const { writable } = await client.opened;
  await server.opened;
  // 1 MB of zeros compresses to about 1 KB: small on the wire, too big
  // once inflated.
  await writable.getWriter().write(new Uint8Array(1_000_000));
  const error = await failure(server.closed);
  assert.equal(error.closeCode, 1009);
  assert.equal(error.code, "message_too_big");
  const closed = await client.closed.then(() => null, (e) => e);
  assert.ok(
    closed === null || closed instanceof WebSocketError,
    String(closed),
  );
});

test("WebSocketConnection with permessage-deflate takes a 16 MiB incompressible message as one slightly larger frame", async () => {
  const { client, server } = connect("permessage-deflate", {
    // Stored blocks: the frame is the message plus a few bytes per block.
    perMessageDeflate: { level: 0 },
    fragmentSize: Infinity,
  });
  const message = new Uint8Array(16 * 1024 * 1024);
  for (let at = 0; at < message.length; at += 65536) {
    crypto.getRandomValues(message.subarray(at, at + 65536));
  }
  const { writable } = await client.opened;
  const { readable } = await server.opened;
  const writing = writable.getWriter().write(message);
  const received = (await readable.getReader().read()).value as Uint8Array;
  await writing;
  assert.equal(received.length, message.length);
  assert.ok(received.every((b, i) => b === message[i]));
  client.close();
  await Promise.all([client.closed, server.closed]);
});

test("WebSocketConnection fails to open when the agreed permessage-deflate value is invalid", async () => {
  const [a] = duplexPair();
  const ws = new WebSocketConnection(
    Promise.resolve({ ...a, extensions: "permessage-deflate; x_unknown" }),
    { role: "client" },
  );
  await assert.rejects(ws.opened, HandshakeError);
  await assert.rejects(ws.closed, HandshakeError);
});

// ---------------------------------------------------------------------------
// Property: compress → frames → bytes → frames → decompress

const message: fc.Arbitrary<Message> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }),
  fc.string({ unit: "grapheme", maxLength: 3000 }),
  fc.uint8Array({ maxLength: 300 }),
  // Compressible data of some size.
  fc.tuple(fc.integer({ min: 0, max: 20000 }), fc.integer({ min: 1, max: 7 }))
    .map(([size, period]) =>
      Uint8Array.from({ length: size }, (_, i) => (i % period) * 37)
    ),
);

const settings = fc.record({
  windowBits: fc.integer({ min: 8, max: 15 }),
  noContextTakeover: fc.boolean(),
  threshold: fc.constantFrom(0, 1, 64, 1024),
  level: fc.integer({ min: -1, max: 9 }),
  memLevel: fc.integer({ min: 1, max: 9 }),
});

function rechunk(data: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const edges = [
    0,
    ...cuts.map((c) => c % (data.length + 1)).sort((a, b) => a - b),
    data.length,
  ];
  const out: Uint8Array[] = [];
  for (let i = 0; i + 1 < edges.length; i++) {
    out.push(data.slice(edges[i], edges[i + 1]));
  }
  return out;
}

test("property: any messages, parameters, fragmentation and chunking round-trip through deflate and inflate", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(message, { minLength: 1, maxLength: 6 }),
      settings,
      fc.constantFrom<Role>("client", "server"),
      fc.integer({ min: 64, max: 5000 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.boolean(),
      async (messages, deflate, role, fragmentSize, cuts, streaming) => {
        const encoding = (joined: boolean) => {
          const encoder = new MessageEncoderStream({ fragmentSize });
          const compress = new MessageDeflateStream(deflate);
          // One mask key, so that both ways write the same bytes.
          const frameEncoder = new FrameEncoderStream({
            role,
            maskKey: () => bytes(0x37, 0xfa, 0x21, 0x3d),
          });
          return chain<Message, Uint8Array>(
            joined,
            encoder,
            compress,
            frameEncoder,
          );
        };
        const wire = concat(
          await collect(streamOf(messages).pipeThrough(encoding(false))),
        );
        // Stages linked as a connection links them write the same bytes.
        assert.deepEqual(
          concat(await collect(streamOf(messages).pipeThrough(encoding(true)))),
          wire,
        );
        const peer: Role = role === "client" ? "server" : "client";
        const decoding = (joined: boolean) =>
          chain(
            joined,
            new FrameDecoderStream({
              role: peer,
              reservedBits: { rsv1: true },
              splitFrames: streaming,
            }),
            new MessageInflateStream({
              windowBits: deflate.windowBits,
              noContextTakeover: deflate.noContextTakeover,
            }),
            new MessageDecoderStream({ streaming }),
          );
        for (const joined of [false, true]) {
          const decoded = streamOf(rechunk(wire, cuts))
            .pipeThrough(decoding(joined));
          const got: Message[] = [];
          for await (const item of decoded) {
            if (!streaming) {
              got.push(item as Message);
              continue;
            }
            const incoming = item as unknown as IncomingMessage;
            got.push(
              incoming.type === "text"
                ? await incoming.text()
                : await incoming.bytes(),
            );
          }
          assert.deepEqual(got, messages, joined ? "linked" : "piped");
        }
      },
    ),
    { numRuns: 100 },
  );
});

test("property: arbitrary frames, compressed or not, end in messages or a WebSocketError, never another error", async () => {
  const arbitraryFrame = fc.record({
    fin: fc.boolean(),
    rsv1: fc.boolean(),
    opcode: fc.constantFrom<Opcode>(
      Opcode.Continuation,
      Opcode.Text,
      Opcode.Binary,
      Opcode.Ping,
    ),
    payload: fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      // Valid compressed data now and then.
      fc.string({ maxLength: 200 }).map((s) =>
        zlib.deflateRawSync(utf8.encode(s), {
          finishFlush: zlib.constants.Z_SYNC_FLUSH,
        }).subarray(0, -4)
      ),
      // Some ending in a final block (§7.2.3.4).
      fc.string({ maxLength: 200 }).map((s) => final(s)),
    ),
  }).map((f) => ({
    ...f,
    rsv2: false,
    rsv3: false,
    fin: f.fin || !!(f.opcode & 0x8),
  }));
  await fc.assert(
    fc.asyncProperty(
      fc.array(arbitraryFrame, { maxLength: 8 }),
      fc.boolean(),
      async (frames, streaming) => {
        const outcome = async (joined: boolean) => {
          const decoded = streamOf(frames as Frame[]).pipeThrough(
            chain(
              joined,
              new MessageInflateStream(),
              new MessageDecoderStream({ streaming }),
            ),
          );
          const got: Message[] = [];
          try {
            for await (const item of decoded) {
              got.push(
                streaming
                  ? await (item as unknown as IncomingMessage).bytes()
                  : item as Message,
              );
            }
          } catch (error) {
            assert.ok(
              error instanceof WebSocketError,
              `not a WebSocketError: ${String(error)}`,
            );
            return { got, code: error.code };
          }
          return { got, code: null };
        };
        // Stages linked as a connection links them end as piped ones do.
        assert.deepEqual(await outcome(true), await outcome(false));
      },
    ),
    { numRuns: 200 },
  );
});
