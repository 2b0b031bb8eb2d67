// Property tests of the message layer (RFC 6455 §5.4, §5.6, §8.1), with
// fast-check: messages fragmented any way, with control frames anywhere,
// round-trip through both roles and both modes; the fused pipeline behaves
// as the composed one; arbitrary bytes only ever end in a WebSocketError;
// invalid UTF-8 fails at the first fragment that proves it, checked against
// a validator written from Unicode Table 3-7.
//
// Messages are mostly small (under 300 bytes), with some up to ~1.6 KB so
// 16-bit lengths are exercised. Fused and composed pipelines must agree on
// any bytes, errors included: a stage reports a failure only after its
// reader has had what came before it.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";
import { WebSocketError, type WebSocketErrorCode } from "../src/errors.ts";
import type { Frame, Role } from "../src/frame.ts";
import { FrameDecoder } from "../src/frame_decoder.ts";
import { FrameDecoderStream } from "../src/frame_decoder_stream.ts";
import { FrameEncoder } from "../src/frame_encoder.ts";
import { FrameEncoderStream } from "../src/frame_encoder_stream.ts";
import type {
  IncomingMessage,
  Message,
  MessageType,
  OutgoingMessage,
} from "../src/message.ts";
import { MessageDecoder } from "../src/message_decoder.ts";
import { MessageDecoderStream } from "../src/message_decoder_stream.ts";
import {
  MessageEncoderStream,
  type MessageInput,
} from "../src/message_encoder_stream.ts";
import { Opcode } from "../src/opcode.ts";
import {
  collect,
  concat,
  cut,
  frame,
  linked,
  positions,
  streamOf,
} from "./_helpers.ts";

// ---------------------------------------------------------------------------
// Helpers

const utf8Encoder = new TextEncoder();
const lenient = new TextDecoder("utf-8", { ignoreBOM: true });

const other = (role: Role): Role => role === "client" ? "server" : "client";

function bytesOf(message: Message): Uint8Array {
  return typeof message === "string" ? utf8Encoder.encode(message) : message;
}

function typeOfMessage(message: Message): MessageType {
  return typeof message === "string" ? "text" : "binary";
}

/** How the wire is cut into chunks: one byte each, or at raw positions. */
type Chunking = "bytes" | number[];

/** Fresh chunks every call: the frame decoder unmasks chunks in place. */
function split(bytes: Uint8Array, chunking: Chunking): Uint8Array[] {
  if (chunking === "bytes") return Array.from(bytes, (b) => Uint8Array.of(b));
  return cut(bytes, chunking);
}

/** A message's data frames: opcode on the first, fin on the last. */
function fragments(message: Message, raw: readonly number[]): Frame[] {
  const pieces = cut(bytesOf(message), raw);
  const opcode = typeof message === "string" ? Opcode.Text : Opcode.Binary;
  return pieces.map((payload, i) =>
    frame(i === 0 ? opcode : Opcode.Continuation, payload, {
      fin: i === pieces.length - 1,
    })
  );
}

interface Control {
  /** Where it goes among the data frames (taken modulo their count + 1). */
  at: number;
  opcode: Opcode;
  payload: Uint8Array;
}

/** Slots control frames in between `frames`; returns the control frames in order. */
function interleave(
  frames: readonly Frame[],
  controls: readonly Control[],
): { frames: Frame[]; controls: Frame[] } {
  const slots: Frame[][] = Array.from({ length: frames.length + 1 }, () => []);
  for (const c of controls) {
    slots[c.at % (frames.length + 1)].push(frame(c.opcode, c.payload));
  }
  const out: Frame[] = [];
  const inOrder: Frame[] = [];
  for (let i = 0; i <= frames.length; i++) {
    out.push(...slots[i]);
    inOrder.push(...slots[i]);
    if (i < frames.length) out.push(frames[i]);
  }
  return { frames: out, controls: inOrder };
}

/** Deterministic mask keys from a seed (xorshift32). */
function maskKeys(seed: number): () => Uint8Array {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return new Uint8Array([x >>> 24, x >>> 16, x >>> 8, x]);
  };
}

/** The wire bytes of `frames` as `sender` sends them. */
function encodeFrames(
  frames: readonly Frame[],
  sender: Role,
  seed: number,
): Uint8Array {
  const encoder = new FrameEncoder({ role: sender, maskKey: maskKeys(seed) });
  const chunks: Uint8Array[] = [];
  for (const f of frames) encoder.encode(f, (chunk) => chunks.push(chunk));
  return concat(chunks);
}

/** Rejects if `promise` takes longer than 2 s; the timer is always cleared. */
async function guarded<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang: ${what}`)), 2000);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Options for async properties: a hang fails its case after 2 s (see
 * guarded), and the whole property, shrinking included, after 15 s.
 */
function runs(numRuns: number, more: fc.Parameters<unknown> = {}) {
  return {
    numRuns,
    interruptAfterTimeLimit: 15_000,
    markInterruptAsFailure: true,
    ...more,
  };
}

/** How a stream ended: normally, or with which error. */
type End =
  | "closed"
  | { name: string; code?: WebSocketErrorCode; closeCode?: number };

function endOf(error: unknown): End {
  if (error instanceof WebSocketError) {
    return { name: error.name, code: error.code, closeCode: error.closeCode };
  }
  const e = error as { name?: unknown; message?: unknown } | null;
  return { name: `${String(e?.name)}: ${String(e?.message)}` };
}

/** How a streamed message's body is read. */
type Reader = "stream" | "text" | "bytes";

/** A message received in streaming mode, read with `reader`. */
interface Streamed {
  type: MessageType;
  reader: Reader;
  data: string | Uint8Array | (string | Uint8Array)[];
  end: End;
}

interface Outcome {
  messages: (Message | Streamed)[];
  controls: Frame[];
  end: End;
}

interface DecodeOptions {
  /** The decoding end. */
  role: Role;
  /** Pipe with no options (fusing the stages), or with `{}` (a real pipe). */
  fused: boolean;
  /** With fused: wire the stages with link(), as a connection does. */
  linked?: boolean;
  streaming: boolean;
  /** For streamed messages, in turn. */
  readers: readonly Reader[];
  maxFrameSize?: number;
  maxMessageSize?: number;
  /** Enqueue every chunk at once (as ReadableStream.from does), not on pull. */
  eager?: boolean;
}

/** A stream of `chunks`, all enqueued at the start. */
function eagerStreamOf<T>(chunks: readonly T[]): ReadableStream<T> {
  return new ReadableStream<T>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

async function readBody(
  message: IncomingMessage,
  reader: Reader,
): Promise<Streamed> {
  const got: Streamed = { type: message.type, reader, data: "", end: "closed" };
  try {
    if (reader === "text") got.data = await message.text();
    else if (reader === "bytes") got.data = await message.bytes();
    else {
      const chunks: (string | Uint8Array)[] = [];
      got.data = chunks;
      const body = message.stream.getReader();
      while (true) {
        const { done, value } = await body.read();
        if (done) break;
        chunks.push(value);
      }
    }
  } catch (error) {
    got.end = endOf(error);
  }
  return got;
}

/** Runs `chunks` through FrameDecoderStream → MessageDecoderStream. */
function decode(chunks: Uint8Array[], o: DecodeOptions): Promise<Outcome> {
  return guarded(decodeUnguarded(chunks, o), "decode");
}

async function decodeUnguarded(
  chunks: Uint8Array[],
  o: DecodeOptions,
): Promise<Outcome> {
  const controls: Frame[] = [];
  const frameOptions = { role: o.role, maxFrameSize: o.maxFrameSize };
  const messageOptions = {
    streaming: o.streaming,
    maxMessageSize: o.maxMessageSize,
    onControl: (f: Frame) =>
      controls.push({ ...f, payload: f.payload.slice() }),
  };
  const source = o.eager ? eagerStreamOf(chunks) : streamOf(chunks);
  const messages = o.linked
    ? source.pipeThrough(
      linked<Uint8Array, Message | IncomingMessage>(
        new FrameDecoderStream(frameOptions),
        new MessageDecoderStream(messageOptions),
      ),
    )
    : o.fused
    ? source
      .pipeThrough(new FrameDecoderStream(frameOptions))
      .pipeThrough(new MessageDecoderStream(messageOptions))
    : source
      .pipeThrough(new FrameDecoderStream(frameOptions), {})
      .pipeThrough(new MessageDecoderStream(messageOptions), {});
  const out: (Message | Streamed)[] = [];
  const reader = messages.getReader();
  try {
    for (let i = 0;; i++) {
      const { done, value } = await reader.read();
      if (done) return { messages: out, controls, end: "closed" };
      if (o.streaming) {
        const reading = o.readers[i % o.readers.length];
        out.push(await readBody(value as IncomingMessage, reading));
      } else {
        out.push(value as Message);
      }
    }
  } catch (error) {
    return { messages: out, controls, end: endOf(error) };
  }
}

/** Checks a streamed message against the message that was sent. */
function assertStreamed(
  got: Message | Streamed,
  want: Message,
  frameCount: number,
): void {
  assert.ok(typeof got === "object" && "reader" in got, "a streamed message");
  assert.equal(got.end, "closed");
  assert.equal(got.type, typeOfMessage(want));
  if (got.reader === "text") {
    assert.equal(
      got.data,
      typeof want === "string" ? want : lenient.decode(want),
    );
  } else if (got.reader === "bytes") {
    assert.deepEqual(got.data, bytesOf(want));
  } else {
    const chunks = got.data as (string | Uint8Array)[];
    // One chunk per data frame at most, and none empty.
    assert.ok(chunks.length <= frameCount, "at most one chunk per fragment");
    for (const chunk of chunks) assert.ok(chunk.length > 0, "empty chunk");
    if (typeof want === "string") {
      for (const chunk of chunks) assert.equal(typeof chunk, "string");
      assert.equal(chunks.join(""), want);
    } else {
      for (const chunk of chunks) assert.ok(chunk instanceof Uint8Array);
      assert.deepEqual(concat(chunks as Uint8Array[]), want);
    }
  }
}

function assertControls(got: readonly Frame[], want: readonly Frame[]): void {
  assert.deepEqual(
    got.map((f) => [f.fin, f.opcode, f.payload]),
    want.map((f) => [f.fin, f.opcode, f.payload]),
  );
}

// The close code each error of the incoming pipeline carries.
const CLOSE_CODES: Partial<Record<WebSocketErrorCode, number>> = {
  reserved_bits: 1002,
  reserved_opcode: 1002,
  fragmented_control_frame: 1002,
  control_frame_too_long: 1002,
  unmasked_frame: 1002,
  masked_frame: 1002,
  invalid_length: 1002,
  frame_too_big: 1009,
  unexpected_continuation: 1002,
  expected_continuation: 1002,
  invalid_utf8: 1007,
  message_too_big: 1009,
  unexpected_end: 1006,
};

/** Normal completion, or a WebSocketError with the right close code. */
function assertProtocolEnd(end: End): void {
  if (end === "closed") return;
  assert.equal(end.name, "WebSocketError", `not a WebSocketError: ${end.name}`);
  assert.ok(
    end.code !== undefined && end.code in CLOSE_CODES,
    String(end.code),
  );
  assert.equal(end.closeCode, CLOSE_CODES[end.code!]);
}

// ---------------------------------------------------------------------------
// A reference UTF-8 validator, from the Unicode Standard, Table 3-7
// (well-formed UTF-8 byte sequences):
//
//   00..7F
//   C2..DF 80..BF
//   E0     A0..BF 80..BF
//   E1..EC 80..BF 80..BF
//   ED     80..9F 80..BF
//   EE..EF 80..BF 80..BF
//   F0     90..BF 80..BF 80..BF
//   F1..F3 80..BF 80..BF 80..BF
//   F4     80..8F 80..BF 80..BF

/**
 * The index of the first byte that proves `bytes` is not UTF-8; its length
 * if it is only cut short at the end; -1 if it is well formed.
 */
function firstInvalid(bytes: Uint8Array): number {
  let need = 0;
  let lo = 0x80;
  let hi = 0xbf;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (need === 0) {
      if (b <= 0x7f) continue;
      if (b >= 0xc2 && b <= 0xdf) {
        need = 1;
      } else if (b >= 0xe0 && b <= 0xef) {
        need = 2;
        lo = b === 0xe0 ? 0xa0 : 0x80;
        hi = b === 0xed ? 0x9f : 0xbf;
      } else if (b >= 0xf0 && b <= 0xf4) {
        need = 3;
        lo = b === 0xf0 ? 0x90 : 0x80;
        hi = b === 0xf4 ? 0x8f : 0xbf;
      } else {
        return i;
      }
    } else {
      if (b < lo || b > hi) return i;
      lo = 0x80;
      hi = 0xbf;
      need--;
    }
  }
  return need === 0 ? -1 : bytes.length;
}

/**
 * Which of `pieces` (the fragments of one text message) must fail: the one
 * holding the first invalid byte, or the last if the text is only cut
 * short; -1 if the text is valid.
 */
function failingFragment(pieces: readonly Uint8Array[]): number {
  const bad = firstInvalid(concat(pieces));
  if (bad === -1) return -1;
  let start = 0;
  for (let i = 0; i < pieces.length; i++) {
    const end = start + pieces[i].length;
    if (bad < end) return i;
    start = end;
  }
  return pieces.length - 1;
}

// ---------------------------------------------------------------------------
// Arbitraries

const role = fc.constantFrom<Role>("client", "server");

/** One code point, biased to the UTF-8 length boundaries and U+FEFF. */
const codePoint: fc.Arbitrary<string> = fc.oneof(
  {
    arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 1 }),
    weight: 4,
  },
  {
    arbitrary: fc.string({
      unit: "grapheme-ascii",
      minLength: 1,
      maxLength: 1,
    }),
    weight: 3,
  },
  {
    arbitrary: fc.constantFrom(
      "\0",
      "\x7f",
      "\x80",
      "\u07ff",
      "\u0800",
      "\ud7ff",
      "\ue000",
      "\ufeff",
      "\ufffd",
      "\uffff",
      "\u{10000}",
      "\u{1f600}",
      "\u{10ffff}",
    ),
    weight: 2,
  },
);

/** Well-formed text, sometimes starting with a BOM, which is kept. */
const text: fc.Arbitrary<string> = fc.oneof(
  {
    arbitrary: fc.tuple(
      fc.boolean(),
      fc.string({ unit: codePoint, maxLength: 40 }),
    )
      .map(([bom, s]) => bom ? "\ufeff" + s : s),
    weight: 8,
  },
  {
    arbitrary: fc.string({ unit: codePoint, minLength: 60, maxLength: 400 }),
    weight: 1,
  },
);

const binary: fc.Arbitrary<Uint8Array> = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 48 }), weight: 8 },
  { arbitrary: fc.uint8Array({ minLength: 120, maxLength: 1200 }), weight: 1 },
);

const message: fc.Arbitrary<Message> = fc.oneof(text, binary);

/** Raw cut positions, made to fit a length later; duplicates give empty pieces. */
const cuts = fc.array(fc.nat(), { maxLength: 5 });

const control: fc.Arbitrary<Control> = fc.record({
  at: fc.nat(),
  opcode: fc.constantFrom<Opcode>(Opcode.Ping, Opcode.Pong),
  payload: fc.oneof(
    fc.uint8Array({ maxLength: 8 }),
    fc.uint8Array({ maxLength: 125 }),
    fc.uint8Array({ minLength: 125, maxLength: 125 }),
  ),
});

const chunking: fc.Arbitrary<Chunking> = fc.oneof(
  { arbitrary: fc.constant<Chunking>("bytes"), weight: 1 },
  { arbitrary: fc.array(fc.nat(), { maxLength: 12 }), weight: 5 },
);

const readers = fc.array(fc.constantFrom<Reader>("stream", "text", "bytes"), {
  minLength: 1,
  maxLength: 4,
});

/** Messages, each fragmented any way, with ping/pong anywhere between. */
const conversation = fc.record({
  messages: fc.array(fc.record({ message, cuts }), { maxLength: 5 }),
  controls: fc.array(control, { maxLength: 5 }),
});

interface Wire {
  frames: Frame[];
  controls: Frame[];
  /** Data frames per message. */
  counts: number[];
}

function wireOf(
  c: { messages: { message: Message; cuts: number[] }[]; controls: Control[] },
): Wire {
  const data: Frame[] = [];
  const counts: number[] = [];
  for (const m of c.messages) {
    const frames = fragments(m.message, m.cuts);
    counts.push(frames.length);
    data.push(...frames);
  }
  return { ...interleave(data, c.controls), counts };
}

// ---------------------------------------------------------------------------
// 1. Round trip through the incoming streams, from frames built by hand

test("MessageDecoderStream returns any fragmentation of any messages, with control frames anywhere, in both roles and modes", async () => {
  await fc.assert(
    fc.asyncProperty(
      conversation,
      role,
      fc.integer(),
      chunking,
      fc.boolean(),
      readers,
      fc.boolean(),
      async (c, sender, seed, chunks, streaming, reading, fused) => {
        const wire = wireOf(c);
        const bytes = encodeFrames(wire.frames, sender, seed);
        const got = await decode(split(bytes, chunks), {
          role: other(sender),
          fused,
          streaming,
          readers: reading,
        });
        assert.equal(got.end, "closed");
        assertControls(got.controls, wire.controls);
        const sent = c.messages.map((m) => m.message);
        if (!streaming) {
          assert.deepEqual(got.messages, sent);
          return;
        }
        assert.equal(got.messages.length, sent.length);
        for (let i = 0; i < sent.length; i++) {
          assertStreamed(got.messages[i], sent[i], wire.counts[i]);
        }
      },
    ),
    runs(200),
  );
});

// ---------------------------------------------------------------------------
// 2. Round trip through the outgoing streams

/** The data frames a message must go out as, by fragment size. */
function expectedFragments(message: Message, size: number): Frame[] {
  const bytes = bytesOf(message);
  const opcode = typeof message === "string" ? Opcode.Text : Opcode.Binary;
  if (bytes.length === 0) return [frame(opcode, bytes)];
  const out: Frame[] = [];
  for (let at = 0; at < bytes.length; at += size) {
    out.push(
      frame(
        at === 0 ? opcode : Opcode.Continuation,
        bytes.slice(at, at + size),
        { fin: at + size >= bytes.length },
      ),
    );
  }
  return out;
}

/** An OutgoingMessage to build afresh per pipeline: its data in pieces. */
interface Streaming {
  type: MessageType;
  pieces: (string | Uint8Array)[];
}

/** The same message, in pieces: text as UTF-8 bytes cut anywhere (splitting characters), or as strings cut between code points. */
const streamingMessage: fc.Arbitrary<Streaming> = fc.oneof(
  fc.tuple(text, cuts).map(([s, at]): Streaming => ({
    type: "text",
    pieces: cut(utf8Encoder.encode(s), at),
  })),
  fc.tuple(text, cuts).map(([s, at]): Streaming => {
    const points = Array.from(s);
    const edges = [0, ...positions(at, points.length), points.length];
    const pieces: string[] = [];
    for (let i = 0; i + 1 < edges.length; i++) {
      pieces.push(points.slice(edges[i], edges[i + 1]).join(""));
    }
    return { type: "text", pieces };
  }),
  fc.tuple(binary, cuts).map(([b, at]): Streaming => ({
    type: "binary",
    pieces: cut(b, at),
  })),
);

const outgoing = fc.array(
  fc.oneof(
    message,
    streamingMessage,
  ),
  { maxLength: 5 },
);

function isStreaming(item: Message | Streaming): item is Streaming {
  return typeof item === "object" && "pieces" in item;
}

/** What MessageEncoderStream takes, built afresh (streams are read once). */
function inputs(items: readonly (Message | Streaming)[]): MessageInput[] {
  return items.map((item): MessageInput =>
    isStreaming(item)
      ? {
        type: item.type,
        stream: streamOf(
          item.pieces.map((p) => typeof p === "string" ? p : p.slice()),
        ),
      } satisfies OutgoingMessage
      : item
  );
}

/** The message the receiver must get back. */
function sentMessage(item: Message | Streaming): Message {
  if (!isStreaming(item)) return item;
  const bytes = concat(item.pieces.map(bytesOf));
  return item.type === "text" ? lenient.decode(bytes) : bytes;
}

/** The data frames an item must go out as. */
function expectedFrames(item: Message | Streaming, size: number): Frame[] {
  if (!isStreaming(item)) return expectedFragments(item, size);
  const out: Frame[] = [];
  let opcode: Opcode = item.type === "text" ? Opcode.Text : Opcode.Binary;
  for (const piece of item.pieces) {
    const bytes = bytesOf(piece);
    for (let at = 0; at < bytes.length; at += size) {
      out.push(frame(opcode, bytes.slice(at, at + size), { fin: false }));
      opcode = Opcode.Continuation;
    }
  }
  out.push(frame(opcode, new Uint8Array(0)));
  return out;
}

/** Runs items through MessageEncoderStream → FrameEncoderStream. */
function encode(
  items: readonly (Message | Streaming)[],
  fragmentSize: number,
  sender: Role,
  seed: number,
  fused: boolean,
  link = false,
): Promise<Uint8Array[]> {
  const source = streamOf(inputs(items));
  const frameOptions = { role: sender, maskKey: maskKeys(seed) };
  const bytes = link
    ? source.pipeThrough(
      linked<MessageInput, Uint8Array>(
        new MessageEncoderStream({ fragmentSize }),
        new FrameEncoderStream(frameOptions),
      ),
    )
    : fused
    ? source
      .pipeThrough(new MessageEncoderStream({ fragmentSize }))
      .pipeThrough(new FrameEncoderStream(frameOptions))
    : source
      .pipeThrough(new MessageEncoderStream({ fragmentSize }), {})
      .pipeThrough(new FrameEncoderStream(frameOptions), {});
  return guarded(collect(bytes), "encode");
}

test("MessageEncoderStream → FrameEncoderStream → FrameDecoderStream → MessageDecoderStream returns the messages, fragmented by fragmentSize", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(message, { maxLength: 5 }),
      fc.integer({ min: 1, max: 64 }),
      role,
      fc.integer(),
      chunking,
      fc.boolean(),
      async (messages, fragmentSize, sender, seed, chunks, fused) => {
        const wire = concat(
          await encode(messages, fragmentSize, sender, seed, fused),
        );
        // Stages linked as a connection links them write the same bytes.
        assert.deepEqual(
          concat(
            await encode(messages, fragmentSize, sender, seed, true, true),
          ),
          wire,
        );

        // The frames are exactly the messages cut every fragmentSize bytes.
        const frames: Frame[] = [];
        const decoder = new FrameDecoder({ role: other(sender) });
        decoder.push(wire.slice(), (f) => frames.push(f));
        decoder.end();
        assert.deepEqual(
          frames,
          messages.flatMap((m) => expectedFragments(m, fragmentSize)),
        );

        const got = await decode(split(wire, chunks), {
          role: other(sender),
          fused,
          streaming: false,
          readers: ["bytes"],
        });
        assert.equal(got.end, "closed");
        assert.deepEqual(got.messages, messages);
      },
    ),
    runs(150),
  );
});

test("MessageEncoderStream sends an OutgoingMessage as its chunks arrive, and it comes back whole", async () => {
  await fc.assert(
    fc.asyncProperty(
      outgoing,
      fc.integer({ min: 1, max: 64 }),
      role,
      fc.integer(),
      chunking,
      fc.boolean(),
      readers,
      async (items, fragmentSize, sender, seed, chunks, streaming, reading) => {
        const wire = concat(
          await encode(items, fragmentSize, sender, seed, true),
        );

        // Each chunk goes out as fragments of at most fragmentSize bytes,
        // then an empty final fragment.
        const frames: Frame[] = [];
        const decoder = new FrameDecoder({ role: other(sender) });
        decoder.push(wire.slice(), (f) => frames.push(f));
        decoder.end();
        const expected = items.map((item) =>
          expectedFrames(item, fragmentSize)
        );
        assert.deepEqual(frames, expected.flat());

        const got = await decode(split(wire, chunks), {
          role: other(sender),
          fused: true,
          streaming,
          readers: reading,
        });
        assert.equal(got.end, "closed");
        const sent = items.map(sentMessage);
        if (!streaming) {
          assert.deepEqual(got.messages, sent);
          return;
        }
        assert.equal(got.messages.length, sent.length);
        for (let i = 0; i < sent.length; i++) {
          assertStreamed(got.messages[i], sent[i], expected[i].length);
        }
      },
    ),
    runs(150),
  );
});

// ---------------------------------------------------------------------------
// 3. Fused ≡ composed
//
// In Stage, `readable.pipeThrough(stage)` with no options fuses the two
// stages (the first calls the second's transform directly); any options
// object, even `{}`, takes the ordinary pipeThrough.

test("Stage.pipeThrough fuses only without options: {} gives an ordinary pipe", async () => {
  // Fused, the frame stage hands each frame to the message stage's core, so
  // the pair buffers only in its output: with nobody reading, the first
  // write already waits. Through an ordinary pipe there is one more hop to
  // fill, so one write goes through before backpressure holds.
  const done: Record<string, number> = {};
  for (const fused of [true, false]) {
    const first = new FrameDecoderStream({ role: "client" });
    const second = new MessageDecoderStream();
    const out = fused
      ? first.readable.pipeThrough(second)
      : first.readable.pipeThrough(second, {});
    assert.equal(out, second.readable);
    assert.ok(first.readable.locked && second.writable.locked);
    const writer = first.writable.getWriter();
    let written = 0;
    const writes = ["a", "b", "c", "d"].map((s) =>
      writer.write(Uint8Array.of(0x81, 0x01, s.charCodeAt(0))).then(() =>
        written++
      )
    );
    await new Promise((resolve) => setTimeout(resolve, 10));
    done[fused ? "fused" : "composed"] = written;
    const reader = out.getReader();
    const messages: string[] = [];
    for (let i = 0; i < 4; i++) {
      messages.push((await reader.read()).value as string);
    }
    await Promise.all(writes);
    assert.deepEqual(messages, ["a", "b", "c", "d"]);
  }
  assert.deepEqual(done, { fused: 0, composed: 1 });
});

/** A wire: bytes, the decoding role, and the options to decode with. */
interface Case {
  bytes: Uint8Array;
  role: Role;
  maxFrameSize?: number;
  maxMessageSize?: number;
}

/** A valid encoding of a conversation, and the same cut short anywhere. */
const validAndTruncated: fc.Arbitrary<[Case, Case]> = fc.tuple(
  conversation,
  role,
  fc.integer(),
  fc.nat(),
).map(([c, sender, seed, truncate]): [Case, Case] => {
  const bytes = encodeFrames(wireOf(c).frames, sender, seed);
  return [
    { bytes, role: other(sender) },
    {
      bytes: bytes.slice(0, truncate % (bytes.length + 1)),
      role: other(sender),
    },
  ];
});

/** Valid encodings of a conversation, cut short anywhere sometimes. */
const validCase: fc.Arbitrary<Case> = fc.tuple(
  validAndTruncated,
  fc.boolean(),
).map(([[whole, truncated], cut]) => cut ? truncated : whole);

/** Payloads of any kind: valid or invalid UTF-8, any bytes. */
const anyPayload: fc.Arbitrary<Uint8Array> = fc.oneof(
  text.map((s) => utf8Encoder.encode(s)),
  fc.uint8Array({ maxLength: 40 }),
  fc.uint8Array({ minLength: 120, maxLength: 600 }),
);

/** Frames in any order: misplaced continuations, unfinished messages. */
const anyFrame: fc.Arbitrary<Frame> = fc.oneof(
  {
    arbitrary: fc.record({
      fin: fc.boolean(),
      opcode: fc.constantFrom<Opcode>(
        Opcode.Continuation,
        Opcode.Text,
        Opcode.Binary,
      ),
      payload: anyPayload,
    }).map((f) => frame(f.opcode, f.payload, { fin: f.fin })),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      opcode: fc.constantFrom<Opcode>(Opcode.Close, Opcode.Ping, Opcode.Pong),
      payload: fc.uint8Array({ maxLength: 125 }),
    }).map((f) => frame(f.opcode, f.payload)),
    weight: 1,
  },
);

/** Any byte sequence: valid, mutated, or garbage; with small limits sometimes. */
const anyCase: fc.Arbitrary<Case> = fc.tuple(
  fc.oneof(
    { arbitrary: validCase, weight: 2 },
    {
      arbitrary: fc.tuple(
        fc.array(anyFrame, { maxLength: 8 }),
        role,
        fc.integer(),
        fc.boolean(),
      ).map(([frames, sender, seed, sameRole]): Case => ({
        bytes: encodeFrames(frames, sender, seed),
        role: sameRole ? sender : other(sender),
      })),
      weight: 3,
    },
    {
      arbitrary: fc.tuple(fc.uint8Array({ maxLength: 64 }), role).map((
        [bytes, decoder],
      ): Case => ({ bytes, role: decoder })),
      weight: 1,
    },
  ),
  // Flipped bytes: XOR a nonzero value in at a position.
  fc.array(
    fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })),
    { maxLength: 3 },
  ),
  fc.option(fc.integer({ min: 1, max: 512 }), { freq: 2 }),
  fc.option(fc.integer({ min: 0, max: 512 }), { freq: 2 }),
).map(([c, flips, maxFrameSize, maxMessageSize]): Case => {
  const bytes = c.bytes.slice();
  if (bytes.length > 0) {
    for (const [at, xor] of flips) bytes[at % bytes.length] ^= xor;
  }
  return {
    ...c,
    bytes,
    maxFrameSize: maxFrameSize ?? undefined,
    maxMessageSize: maxMessageSize ?? undefined,
  };
});

/** Whether the stream and every message body in it ended normally. */
function clean(outcome: Outcome): boolean {
  return outcome.end === "closed" &&
    outcome.messages.every((m) =>
      typeof m !== "object" || !("reader" in m) || m.end === "closed"
    );
}

async function fusedAndComposed(
  c: Case,
  chunks: Chunking,
  streaming: boolean,
  reading: readonly Reader[],
  eager: boolean,
): Promise<[Outcome, Outcome]> {
  const options = {
    eager,
    role: c.role,
    streaming,
    readers: reading,
    maxFrameSize: c.maxFrameSize,
    maxMessageSize: c.maxMessageSize,
  };
  const fused = await decode(split(c.bytes, chunks), {
    ...options,
    fused: true,
  });
  const composed = await decode(split(c.bytes, chunks), {
    ...options,
    fused: false,
  });
  // Stages linked as a connection links them behave as fused ones do.
  const viaLink = await decode(split(c.bytes, chunks), {
    ...options,
    fused: true,
    linked: true,
  });
  assert.deepEqual(viaLink, fused);
  return [fused, composed];
}

test("FrameDecoderStream → MessageDecoderStream: fused ≡ composed on valid input, and on truncated input in whole mode", async () => {
  // Truncated input in streaming mode is covered by the any-bytes property.
  await fc.assert(
    fc.asyncProperty(
      validAndTruncated,
      fc.boolean(),
      chunking,
      fc.boolean(),
      readers,
      fc.boolean(),
      async ([whole, truncated], cut, chunks, streaming, reading, eager) => {
        const c = cut && !streaming ? truncated : whole;
        const [fused, composed] = await fusedAndComposed(
          c,
          chunks,
          streaming,
          reading,
          eager,
        );
        if (c === whole) assert.equal(fused.end, "closed");
        assertProtocolEnd(fused.end);
        assert.deepEqual(fused, composed);
      },
    ),
    runs(150),
  );
});

test(
  "FrameDecoderStream → MessageDecoderStream: fused ≡ composed on any bytes",
  async () => {
    await fc.assert(
      fc.asyncProperty(
        anyCase,
        chunking,
        fc.boolean(),
        readers,
        fc.boolean(),
        async (c, chunks, streaming, reading, eager) => {
          const [fused, composed] = await fusedAndComposed(
            c,
            chunks,
            streaming,
            reading,
            eager,
          );
          assert.deepEqual(fused, composed);
        },
      ),
      runs(300),
    );
  },
);

/**
 * Decodes one chunk of bytes, given in hex, both ways, as a client (so
 * unmasked), from a source holding it from the start.
 */
function oneChunkBothWays(
  hex: string,
  streaming = false,
  reading: Reader[] = ["stream"],
): Promise<[Outcome, Outcome]> {
  const bytes = hex.split(" ").map((b) => parseInt(b, 16));
  return fusedAndComposed(
    { bytes: new Uint8Array(bytes), role: "client" },
    [],
    streaming,
    reading,
    true,
  );
}

test(
  "FrameDecoderStream → MessageDecoderStream: fused delivers the messages before a message-level error in the same chunk",
  async () => {
    // "a", "b", "c", then a continuation frame with no message to continue.
    const [fused, composed] = await oneChunkBothWays(
      "81 01 61 81 01 62 81 01 63 80 00",
    );
    assert.deepEqual(composed.messages, ["a", "b", "c"]);
    assert.deepEqual(fused, composed);
  },
);

test(
  "FrameDecoderStream → MessageDecoderStream: composed delivers the control frames before a frame-level error in the same chunk",
  async () => {
    // Three empty pings, then a frame with reserved opcode 0x3.
    const [fused, composed] = await oneChunkBothWays(
      "89 00 89 00 89 00 83 00",
    );
    assert.equal(fused.controls.length, 3);
    assert.deepEqual(fused, composed);
  },
);

test(
  "FrameDecoderStream → MessageDecoderStream: composed sees a Close frame followed by a frame-level error in the same chunk",
  async () => {
    // A ping, a Close, then a frame with reserved opcode 0x3, which comes
    // after the Close and so must not matter.
    const [fused, composed] = await oneChunkBothWays("89 00 88 00 83 00");
    assert.equal(fused.end, "closed");
    assert.deepEqual(fused, composed);
  },
);

/**
 * How many chunks a streaming pipeline pulls from its source while nobody
 * reads its output. The source holds 20 messages of two frames each: the
 * `first` frame, then the `last`.
 */
async function pulledUnread(
  first: number[],
  last: number[],
  fused: boolean,
): Promise<number> {
  let pulled = 0;
  const source = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled === 40) controller.close();
      else controller.enqueue(Uint8Array.from(pulled++ % 2 ? last : first));
    },
  });
  const options = { streaming: true };
  const messages = fused
    ? source
      .pipeThrough(new FrameDecoderStream({ role: "client" }))
      .pipeThrough(new MessageDecoderStream(options))
    : source
      .pipeThrough(new FrameDecoderStream({ role: "client" }), {})
      .pipeThrough(new MessageDecoderStream(options), {});
  const reader = messages.getReader();
  await new Promise((resolve) => setTimeout(resolve, 20));
  await reader.cancel().catch(() => {});
  return pulled;
}

test(
  "MessageDecoderStream in streaming mode holds back input alike whether a message's first fragment is empty or not",
  async () => {
    for (const fused of [true, false]) {
      // "x" then an empty final fragment, against an empty first fragment
      // then "x": the same frames, the same messages.
      const xFirst = await pulledUnread(
        [0x01, 0x01, 0x78],
        [0x80, 0x00],
        fused,
      );
      const emptyFirst = await pulledUnread(
        [0x01, 0x00],
        [0x80, 0x01, 0x78],
        fused,
      );
      assert.equal(emptyFirst, xFirst, `fused: ${fused}`);
    }
  },
);

test("MessageEncoderStream → FrameEncoderStream: fused ≡ composed, chunk for chunk", async () => {
  // MessageEncoderStream is not fusable itself (its transform may wait on
  // a body), but it fuses into FrameEncoderStream.
  await fc.assert(
    fc.asyncProperty(
      outgoing,
      fc.integer({ min: 1, max: 64 }),
      role,
      fc.integer(),
      async (items, fragmentSize, sender, seed) => {
        const fused = await encode(items, fragmentSize, sender, seed, true);
        const composed = await encode(items, fragmentSize, sender, seed, false);
        assert.deepEqual(fused, composed);
      },
    ),
    runs(150),
  );
});

// ---------------------------------------------------------------------------
// 4. Any bytes: a WebSocketError or a normal end, never a hang

test("FrameDecoderStream → MessageDecoderStream ends any bytes normally or with a WebSocketError, fused or composed", async () => {
  await fc.assert(
    fc.asyncProperty(
      anyCase,
      chunking,
      fc.boolean(),
      readers,
      fc.boolean(),
      async (c, chunks, streaming, reading, eager) => {
        // decode() fails the property if either pipeline hangs.
        const [fused, composed] = await fusedAndComposed(
          c,
          chunks,
          streaming,
          reading,
          eager,
        );
        for (const outcome of [fused, composed]) {
          assertProtocolEnd(outcome.end);
          for (const m of outcome.messages) {
            if (typeof m === "object" && "reader" in m) {
              assertProtocolEnd(m.end);
              // A body fails with the error the stream fails with, or, cut
              // short by a Close frame, with unexpected_end.
              if (m.end !== "closed" && outcome.end === "closed") {
                assert.equal(m.end.code, "unexpected_end");
              } else if (m.end !== "closed") {
                assert.deepEqual(m.end, outcome.end);
              }
            }
          }
        }
        // With no error anywhere, fusing changes nothing (the any-bytes
        // property checks the cases with errors).
        if (clean(fused) && clean(composed)) {
          assert.deepEqual(fused, composed);
        }
      },
    ),
    runs(300),
  );
});

test("MessageDecoder fails with 1009 at the fragment that takes a message past maxMessageSize, counting no control frame", () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({
          size: fc.integer({ min: 0, max: 40 }),
          // A ping before this fragment, which does not count.
          ping: fc.option(fc.integer({ min: 0, max: 125 })),
        }),
        { minLength: 1, maxLength: 6 },
      ),
      fc.integer({ min: 0, max: 128 }),
      fc.constantFrom<Opcode>(Opcode.Text, Opcode.Binary),
      (pieces, limit, opcode) => {
        // Two messages: the first within the limit (empty), then the one
        // under test, so the count starts afresh for each message.
        const decoder = new MessageDecoder({ maxMessageSize: limit });
        const handler = { data: () => {}, control: () => {} };
        decoder.push(frame(opcode, new Uint8Array(0)), handler);
        let total = 0;
        let expected = -1;
        for (let i = 0; i < pieces.length; i++) {
          total += pieces[i].size;
          if (expected === -1 && total > limit) expected = i;
        }
        let accepted = 0;
        let error: unknown = null;
        for (let i = 0; i < pieces.length; i++) {
          const { size, ping } = pieces[i];
          if (ping !== null) {
            decoder.push(frame(Opcode.Ping, new Uint8Array(ping)), handler);
          }
          const f = frame(
            i === 0 ? opcode : Opcode.Continuation,
            new Uint8Array(size).fill(0x61),
            { fin: i === pieces.length - 1 },
          );
          try {
            decoder.push(f, handler);
          } catch (e) {
            error = e;
            break;
          }
          accepted++;
        }
        if (expected === -1) {
          assert.equal(error, null);
          return;
        }
        assert.ok(error instanceof WebSocketError, String(error));
        assert.equal(error.code, "message_too_big");
        assert.equal(error.closeCode, 1009);
        assert.equal(accepted, expected);
      },
    ),
    { numRuns: 500 },
  );
});

// ---------------------------------------------------------------------------
// 5. Invalid UTF-8

const continuation = fc.integer({ min: 0x80, max: 0xbf });

/** A code point of two to four bytes, cut short. */
const truncatedSequence: fc.Arbitrary<number[]> = fc.tuple(
  fc.integer({ min: 0x80, max: 0x10ffff }).filter((cp) =>
    cp < 0xd800 || cp > 0xdfff
  ),
  fc.nat(),
).map(([cp, n]) => {
  const bytes = [...utf8Encoder.encode(String.fromCodePoint(cp))];
  return bytes.slice(0, 1 + n % (bytes.length - 1));
});

/** Byte sequences that are never valid, wherever they stand. */
const badSequence: fc.Arbitrary<number[]> = fc.oneof(
  // Overlong forms.
  fc.constantFrom<number[]>(
    [0xc0, 0x80],
    [0xc1, 0xbf],
    [0xe0, 0x80, 0x80],
    [0xe0, 0x9f, 0xbf],
    [0xf0, 0x80, 0x80, 0x80],
    [0xf0, 0x8f, 0xbf, 0xbf],
  ),
  fc.tuple(fc.constantFrom(0xc0, 0xc1), continuation).map((b): number[] => b),
  // Surrogates: ED A0 80 .. ED BF BF.
  fc.tuple(fc.integer({ min: 0xa0, max: 0xbf }), continuation).map((
    [b1, b2],
  ) => [0xed, b1, b2]),
  // Above U+10FFFF: F4 90 80 80 and up, and the leads F5..FF.
  fc.tuple(fc.integer({ min: 0x90, max: 0xbf }), continuation, continuation)
    .map(([b1, b2, b3]) => [0xf4, b1, b2, b3]),
  fc.tuple(
    fc.integer({ min: 0xf5, max: 0xff }),
    fc.array(continuation, { maxLength: 3 }),
  ).map(([lead, rest]) => [lead, ...rest]),
  // Lone continuation bytes.
  fc.array(continuation, { minLength: 1, maxLength: 3 }),
  // A sequence cut short, then whatever comes next (never a continuation).
  truncatedSequence,
);

const validBytes = text.map((s) => utf8Encoder.encode(s));

/** Text that is not UTF-8: a bad sequence inside valid text, text cut short, or random bytes. */
const invalidText: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(validBytes, badSequence, validBytes).map(([a, bad, b]) =>
    concat([a, new Uint8Array(bad), b])
  ),
  fc.tuple(validBytes, truncatedSequence).map(([a, cut]) =>
    concat([a, new Uint8Array(cut)])
  ),
  fc.uint8Array({ minLength: 1, maxLength: 24 }).filter((b) =>
    firstInvalid(b) !== -1
  ),
);

test("firstInvalid (the reference validator) agrees with a fatal TextDecoder", () => {
  fc.assert(
    fc.property(
      fc.oneof(validBytes, invalidText, fc.uint8Array({ maxLength: 24 })),
      (bytes) => {
        let valid = true;
        try {
          new TextDecoder("utf-8", { fatal: true }).decode(bytes);
        } catch {
          valid = false;
        }
        assert.equal(firstInvalid(bytes) === -1, valid);
      },
    ),
    { numRuns: 500 },
  );
  // The generators make what they say.
  fc.assert(
    fc.property(invalidText, (bytes) => firstInvalid(bytes) !== -1),
    { numRuns: 200 },
  );
});

test("MessageDecoder fails invalid UTF-8 with 1007 at the first fragment that proves it, in any fragmentation", () => {
  fc.assert(
    fc.property(
      fc.oneof(
        { arbitrary: invalidText, weight: 4 },
        { arbitrary: validBytes, weight: 1 },
      ),
      cuts,
      (bytes, at) => {
        const pieces = cut(bytes, at);
        const expected = failingFragment(pieces);
        const decoder = new MessageDecoder();
        const handler = {
          data: (data: string | Uint8Array) => {
            assert.equal(typeof data, "string");
            decoded += data as string;
          },
          control: () => assert.fail("no control frames were sent"),
        };
        let decoded = "";
        let accepted = 0;
        let error: unknown = null;
        for (let i = 0; i < pieces.length; i++) {
          const f = frame(
            i === 0 ? Opcode.Text : Opcode.Continuation,
            pieces[i],
            { fin: i === pieces.length - 1 },
          );
          try {
            decoder.push(f, handler);
          } catch (e) {
            error = e;
            break;
          }
          accepted++;
        }
        if (expected === -1) {
          assert.equal(error, null);
          assert.equal(decoded, lenient.decode(bytes));
          assert.equal(decoder.pending, false);
          return;
        }
        assert.ok(error instanceof WebSocketError, String(error));
        assert.equal(error.code, "invalid_utf8");
        assert.equal(error.closeCode, 1007);
        assert.equal(accepted, expected, "fragments accepted before the throw");
        // What was handed over is valid text from the start of the message.
        const handed = utf8Encoder.encode(decoded);
        assert.deepEqual(handed, bytes.subarray(0, handed.length));
        assert.ok(handed.length <= firstInvalid(bytes));
        // The decoder stays failed.
        assert.throws(
          () => decoder.push(frame(Opcode.Text, "ok"), handler),
          (e) => e === error,
        );
        assert.throws(() => decoder.end(), (e) => e === error);
      },
    ),
    { numRuns: 1000 },
  );
});

test("MessageDecoderStream fails invalid UTF-8 with 1007 in any fragmentation, after the messages and control frames before it", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ message, cuts }), { maxLength: 3 }),
      invalidText,
      cuts,
      fc.array(control, { maxLength: 5 }),
      // Frames after the failing one, which must not be seen.
      fc.array(fc.record({ message, cuts }), { maxLength: 2 }),
      role,
      fc.integer(),
      chunking,
      fc.boolean(),
      readers,
      fc.boolean(),
      async (
        before,
        bad,
        badCuts,
        controls,
        after,
        sender,
        seed,
        chunks,
        streaming,
        reading,
        fused,
      ) => {
        const badFrames = cut(bad, badCuts).map((payload, i, all) =>
          frame(i === 0 ? Opcode.Text : Opcode.Continuation, payload, {
            fin: i === all.length - 1,
          })
        );
        const failing = failingFragment(badFrames.map((f) => f.payload));
        const data = [
          ...before.flatMap((m) => fragments(m.message, m.cuts)),
          ...badFrames,
          ...after.flatMap((m) => fragments(m.message, m.cuts)),
        ];
        const failingFrame = data.indexOf(badFrames[failing]);
        const wire = interleave(data, controls);
        // The control frames that come before the failing frame.
        const seen = wire.frames.slice(
          0,
          wire.frames.indexOf(badFrames[failing]),
        ).filter((f) => f.opcode & 0x8);
        assert.ok(failingFrame >= 0);

        const got = await decode(
          split(encodeFrames(wire.frames, sender, seed), chunks),
          { role: other(sender), fused, streaming, readers: reading },
        );
        assert.deepEqual(got.end, {
          name: "WebSocketError",
          code: "invalid_utf8",
          closeCode: 1007,
        });
        assertControls(got.controls, seen);

        // The messages before it: a prefix is required here; that fused and
        // composed deliver the same ones is the any-bytes property's job.
        const sent = before.map((m) => m.message);
        if (!streaming) {
          const expected = sent.slice(0, got.messages.length);
          assert.deepEqual(got.messages, expected);
          if (!fused) assert.equal(got.messages.length, sent.length);
          return;
        }
        const whole = got.messages.filter((m) =>
          (m as Streamed).end === "closed"
        );
        assert.ok(whole.length <= sent.length);
        if (!fused) assert.equal(whole.length, sent.length);
        for (let i = 0; i < whole.length; i++) {
          assertStreamed(whole[i], sent[i], Infinity);
        }
        // A streamed invalid message fails its body with the same error,
        // having delivered only valid text from its start.
        for (const m of got.messages.slice(whole.length) as Streamed[]) {
          assert.equal(m.type, "text");
          assert.deepEqual(m.end, got.end);
          if (m.reader === "stream") {
            const handed = utf8Encoder.encode(
              (m.data as string[]).join(""),
            );
            assert.deepEqual(handed, bad.subarray(0, handed.length));
          }
        }
        assert.ok(got.messages.length - whole.length <= 1);
      },
    ),
    runs(200),
  );
});
