// Fuzzing the whole decode path with fast-check: handshake request bytes
// through the HTTP head parser and the node:http upgrade adapter, then
// frames through a WebSocketConnection, on arbitrary bytes and on mutated
// valid streams, cut into arbitrary chunks. The only outcomes allowed are
// the ones an independent model of RFC 6455 predicts: the right messages,
// then a clean close or a Close frame with the right code (or, for bytes
// that stop without a Close, 1006), and nothing else: no exception
// escaping, no hang (each case is bounded in time), no stray frame.
//
// Runs a bounded number of cases by default (seconds). For a long run:
//
//   FUZZ_RUNS=1000000 nice node_modules/.bin/node --test tests/fuzz_test.ts
//   FUZZ_RUNS=1000000 FUZZ_SEED=42 npx deno test -A tests/fuzz_test.ts
//
// FUZZ_RUNS is the number of cases per property (each property below);
// FUZZ_SEED replays a run (fast-check prints the seed and path of a
// failure, and the shrunk counterexample).

import assert from "node:assert/strict";
import { EventEmitter } from "node:events";
import process from "node:process";
import { test } from "node:test";
import fc from "fast-check";
import {
  HeadReader,
  parseRequestHead,
  parseResponseHead,
} from "../src/_http.ts";
import { type NodeRequest, upgrade } from "../src/adapters/node.ts";
import {
  type WebSocketCloseInfo,
  WebSocketConnection,
} from "../src/connection.ts";
import { WebSocketError } from "../src/errors.ts";
import {
  clientHandshake,
  HandshakeError,
  verifyResponse,
} from "../src/handshake.ts";
import { concat } from "./_helpers.ts";
import {
  acceptFor,
  B,
  encode,
  firstBad,
  P,
  Reader,
  T,
} from "./conformance/_peer.ts";

const RUNS = Number(process.env.FUZZ_RUNS ?? 0) || undefined;
const SEED = process.env.FUZZ_SEED === undefined
  ? undefined
  : Number(process.env.FUZZ_SEED);

/** fast-check parameters: `runs` in CI, FUZZ_RUNS on demand. */
function params(runs: number): fc.Parameters<unknown> {
  return { numRuns: RUNS ?? runs, seed: SEED, endOnFailure: true };
}

// Small limits, so that 1009 is reachable.
const MAX_FRAME = 300;
const MAX_MESSAGE = 600;
// The most one case may take; a case still running then is a hang.
const CASE_TIMEOUT = 5000;

// ---------------------------------------------------------------------------
// The model: what RFC 6455 says an endpoint does with these bytes

type End =
  | { kind: "close"; code: number | null; reason: string }
  // `or`: a second code the chunking may lead to (see the model).
  | { kind: "fail"; closeCode: number; or?: number }
  | { kind: "eof" };

interface Expected {
  /** Log entries of the messages, in order (T() and B()). */
  messages: string[];
  /** Payloads of the pings received before the end. */
  pings: Uint8Array[];
  end: End;
}

/** What an endpoint in `role` does with `bytes` from its peer, then EOF. */
function model(bytes: Uint8Array, role: "server" | "client"): Expected {
  const messages: string[] = [];
  const pings: Uint8Array[] = [];
  const fail = (closeCode: number, or?: number): Expected => ({
    messages,
    pings,
    end: { kind: "fail", closeCode, or },
  });
  const eof = (): Expected => ({ messages, pings, end: { kind: "eof" } });
  let at = 0;
  let message: { text: boolean; parts: Uint8Array[]; size: number } | null =
    null;
  while (true) {
    if (bytes.length - at < 2) return { messages, pings, end: { kind: "eof" } };
    const b0 = bytes[at];
    const b1 = bytes[at + 1];
    const opcode = b0 & 0x0f;
    const fin = (b0 & 0x80) !== 0;
    const masked = (b1 & 0x80) !== 0;
    const length7 = b1 & 0x7f;
    // §5.2: RSV bits, reserved opcodes; §5.5: control frames; §5.1: masks.
    if (b0 & 0x70) return fail(1002);
    if ((opcode > 2 && opcode < 8) || opcode > 10) return fail(1002);
    if (opcode >= 8 && (!fin || length7 > 125)) return fail(1002);
    if (masked !== (role === "server")) return fail(1002);
    const extra = length7 === 126 ? 2 : length7 === 127 ? 8 : 0;
    const header = 2 + extra + (masked ? 4 : 0);
    if (bytes.length - at < header) {
      return { messages, pings, end: { kind: "eof" } };
    }
    let length = length7;
    if (extra === 2) length = (bytes[at + 2] << 8) | bytes[at + 3];
    if (extra === 8) {
      if (bytes[at + 2] & 0x80) return fail(1002);
      length = 0;
      for (let k = 2; k < 10; k++) length = length * 256 + bytes[at + k];
    }
    if (length > MAX_FRAME) return fail(1009);
    // A data frame is taken as its bytes arrive, so the bytes of one that
    // never ends are checked too (§8.1: invalid UTF-8 fails as soon as the
    // bytes that prove it are in).
    const complete = bytes.length - at - header >= length;
    if (!complete && (opcode >= 8 || bytes.length - at === header)) {
      return eof();
    }
    const arrived = Math.min(length, bytes.length - at - header);
    const payload = bytes.slice(at + header, at + header + arrived);
    if (masked) {
      const key = at + 2 + extra;
      for (let k = 0; k < arrived; k++) payload[k] ^= bytes[key + (k & 3)];
    }
    at += header + arrived;

    if (opcode === 0x9) {
      pings.push(payload);
      continue;
    }
    if (opcode === 0xa) continue;
    if (opcode === 0x8) {
      // §5.5.1: the body is empty, or a code then UTF-8.
      if (length === 0) {
        return {
          messages,
          pings,
          end: { kind: "close", code: null, reason: "" },
        };
      }
      if (length === 1) return fail(1002);
      const code = (payload[0] << 8) | payload[1];
      const sendable = (code >= 1000 && code <= 1003) ||
        (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
      if (!sendable) return fail(1002);
      const reason = payload.subarray(2);
      if (firstBad(reason) !== -1) return fail(1007);
      return {
        messages,
        pings,
        end: { kind: "close", code, reason: new TextDecoder().decode(reason) },
      };
    }
    // Data frames (§5.4).
    if (opcode === 0x0) {
      if (message === null) return fail(1002);
    } else {
      if (message !== null) return fail(1002);
      message = { text: opcode === 0x1, parts: [], size: 0 };
    }
    message.parts.push(payload);
    message.size += arrived;
    const sofar = message.text ? concat(message.parts) : null;
    const bad = sofar === null ? -1 : firstBad(sofar);
    if (message.size > MAX_MESSAGE) {
      // The frame's bytes are checked in the pieces they arrive in, each
      // counted before it is checked as UTF-8: a piece that ends before
      // the limit may show invalid text first.
      return bad !== -1 && bad < MAX_MESSAGE ? fail(1009, 1007) : fail(1009);
    }
    // §8.1, fail-fast: at the fragment that proves the text invalid.
    if (bad !== -1 && (bad < sofar!.length || (fin && complete))) {
      return fail(1007);
    }
    if (!complete) return eof();
    if (fin) {
      const whole = concat(message.parts);
      messages.push(message.text ? T(whole) : B(whole));
      message = null;
    }
  }
}

// ---------------------------------------------------------------------------
// Running our endpoint

interface Observed {
  messages: string[];
  /** What our endpoint sent, as the peer's Reader logs it. */
  sent: string[];
  closed: { ok: true; value: WebSocketCloseInfo } | {
    ok: false;
    error: unknown;
  };
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`hung: ${what} after ${CASE_TIMEOUT} ms`)),
        CASE_TIMEOUT,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

async function readAll(
  readable: ReadableStream<string | Uint8Array>,
): Promise<string[]> {
  const out: string[] = [];
  try {
    for await (const message of readable) {
      out.push(typeof message === "string" ? T(message) : B(message));
    }
  } catch {
    // An error after some messages: those before it are what counts.
  }
  return out;
}

/** Our connection in `role` over an in-memory duplex fed with `chunks`. */
async function runConnection(
  chunks: readonly Uint8Array[],
  role: "server" | "client",
): Promise<Observed> {
  const input = new TransformStream<Uint8Array, Uint8Array>();
  const output = new TransformStream<Uint8Array, Uint8Array>();
  const ws = new WebSocketConnection(
    { readable: input.readable, writable: output.writable },
    { role, maxFrameSize: MAX_FRAME, maxMessageSize: MAX_MESSAGE },
  );
  const closed = ws.closed.then(
    (value) => ({ ok: true as const, value }),
    (error) => ({ ok: false as const, error }),
  );
  const reader = new Reader(role === "client");
  const sent = (async () => {
    for await (const chunk of output.readable) reader.push(chunk);
  })().catch(() => {});
  const { readable } = await ws.opened;
  const messages = readAll(readable);
  const writer = input.writable.getWriter();
  (async () => {
    for (const chunk of chunks) await writer.write(chunk);
    await writer.close();
  })().catch(() => {});
  const result = {
    messages: await messages,
    closed: await closed,
    sent: (await sent, reader.log),
  };
  return result;
}

// How the cases ended, printed after an on-demand run (FUZZ_RUNS), to show
// that every outcome was reached.
const tally: Record<string, number> = {};
function count(what: string): void {
  tally[what] = (tally[what] ?? 0) + 1;
}
if (RUNS !== undefined) {
  process.on(
    "exit",
    () => console.log("fuzz outcomes:", JSON.stringify(tally)),
  );
}

/** Asserts what our endpoint did against what the model says. */
function check(observed: Observed, expected: Expected): void {
  const { end } = expected;
  count(end.kind === "fail" ? `fail ${end.closeCode}` : end.kind);
  // Messages: all of them after a clean close; before a failure, the
  // application may not have read the last ones when the readable errored.
  if (end.kind === "close") {
    assert.deepEqual(observed.messages, expected.messages, "messages");
  } else {
    assert.deepEqual(
      observed.messages,
      expected.messages.slice(0, observed.messages.length),
      "messages (a prefix)",
    );
  }
  // What was sent: pongs (some may be left out, §5.5.3, but never the last
  // before our Close), then our Close, then nothing.
  const sent = [...observed.sent];
  if (sent.at(-1) === "eof") sent.pop();
  const closeAt = sent.findIndex((entry) => entry.startsWith("close"));
  const pongs = closeAt < 0 ? sent : sent.slice(0, closeAt);
  const after = closeAt < 0 ? [] : sent.slice(closeAt);
  const pingEntries = expected.pings.map((p) => P(p));
  let i = 0;
  for (const pong of pongs) {
    while (i < pingEntries.length && pingEntries[i] !== pong) i++;
    assert.ok(
      i < pingEntries.length,
      `sent ${pong}, not a pong for a ping in order: ${sent.join(" | ")}`,
    );
    i++;
  }
  switch (end.kind) {
    case "close": {
      const echo = end.code === null ? "close (no code)" : `close ${end.code}`;
      assert.deepEqual(after, [echo], `after the pongs: ${sent.join(" | ")}`);
      if (pingEntries.length > 0) {
        assert.equal(pongs.at(-1), pingEntries.at(-1));
      }
      assert.ok(
        observed.closed.ok,
        `closed rejected: ${!observed.closed.ok && observed.closed.error}`,
      );
      assert.deepEqual(observed.closed.value, {
        closeCode: end.code ?? 1005,
        reason: end.reason,
      });
      break;
    }
    case "fail": {
      const code = end.or !== undefined && after[0] === `close ${end.or}`
        ? end.or
        : end.closeCode;
      assert.deepEqual(
        after,
        [`close ${code}`],
        `after the pongs: ${sent.join(" | ")}`,
      );
      if (pingEntries.length > 0) {
        assert.equal(pongs.at(-1), pingEntries.at(-1));
      }
      assert.ok(!observed.closed.ok, "closed resolved on a failure");
      assert.ok(
        observed.closed.error instanceof WebSocketError,
        String(observed.closed.error),
      );
      assert.equal(observed.closed.error.closeCode, code);
      break;
    }
    case "eof":
      assert.deepEqual(
        after,
        [],
        `sent a Close on a bare EOF: ${sent.join(" | ")}`,
      );
      assert.ok(!observed.closed.ok, "closed resolved without a Close");
      assert.ok(observed.closed.error instanceof WebSocketError);
      assert.equal(observed.closed.error.closeCode, 1006);
      break;
    default:
      end satisfies never;
  }
}

// ---------------------------------------------------------------------------
// Inputs

const utf8 = new TextEncoder();

/** Text payloads: valid text, or bytes near UTF-8's edges. */
const textBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 40 }).map((s) => utf8.encode(s)),
  fc.array(
    fc.constantFrom(
      0x41,
      0x7f,
      0x80,
      0xbf,
      0xc0,
      0xc2,
      0xdf,
      0xe0,
      0xa0,
      0xed,
      0x9f,
      0xef,
      0xf0,
      0x90,
      0xf4,
      0x8f,
      0xf5,
      0xff,
    ),
    { maxLength: 12 },
  ).map((b) => new Uint8Array(b)),
);

interface FrameSpec {
  opcode: number;
  payload: Uint8Array;
  fin: boolean;
  rsv: number;
}

/** One "message-level event": a message in fragments, or a control frame. */
const event: fc.Arbitrary<FrameSpec[]> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.tuple(
      fc.boolean(),
      fc.oneof(
        textBytes,
        fc.uint8Array({ maxLength: 40 }),
        // Around the limits (MAX_FRAME, MAX_MESSAGE).
        fc.integer({ min: 250, max: 700 }).map((n) =>
          new Uint8Array(n).map((_, i) => i * 7)
        ),
      ),
      fc.array(fc.nat(), { maxLength: 4 }),
    ).map(([isText, payload, cuts]) => {
      const points = [...new Set(cuts.map((c) => c % (payload.length + 1)))]
        .sort((a, b) => a - b);
      const bounds = [0, ...points, payload.length];
      const frames: FrameSpec[] = [];
      for (let k = 0; k + 1 < bounds.length; k++) {
        frames.push({
          opcode: k === 0 ? (isText ? 1 : 2) : 0,
          payload: payload.subarray(bounds[k], bounds[k + 1]),
          fin: k + 2 === bounds.length,
          rsv: 0,
        });
      }
      return frames;
    }),
  },
  {
    weight: 2,
    arbitrary: fc.tuple(
      fc.constantFrom(0x9, 0xa),
      fc.uint8Array({ maxLength: 126 }),
    )
      .map(([opcode, payload]) => [{ opcode, payload, fin: true, rsv: 0 }]),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.constant(new Uint8Array(0)),
      fc.tuple(fc.integer({ min: 0, max: 5100 }), textBytes).map((
        [code, reason],
      ) => new Uint8Array([code >> 8, code & 0xff, ...reason])),
      fc.uint8Array({ minLength: 1, maxLength: 3 }),
    ).map((payload) => [{ opcode: 0x8, payload, fin: true, rsv: 0 }]),
  },
  // The odd frame: a reserved opcode or bit, a stray continuation.
  {
    weight: 1,
    arbitrary: fc.record({
      opcode: fc.integer({ min: 0, max: 15 }),
      payload: fc.uint8Array({ maxLength: 20 }),
      fin: fc.boolean(),
      rsv: fc.integer({ min: 0, max: 7 }),
    }).map((frame) => [frame]),
  },
);

/** A stream of frames as a peer of `role` would send them. */
function frameStream(role: "server" | "client"): fc.Arbitrary<Uint8Array> {
  const goodbye = fc.option(
    fc.constantFrom(1000, 1001, 3000, 4999).map((code): FrameSpec[] => [{
      opcode: 0x8,
      payload: new Uint8Array([code >> 8, code & 0xff, 0x6f, 0x6b]),
      fin: true,
      rsv: 0,
    }]),
    { nil: [] },
  );
  return fc.tuple(fc.array(event, { maxLength: 8 }), goodbye).map((
    [events, last],
  ) =>
    concat(
      [...events, last].flat().map((f) =>
        encode(
          { opcode: f.opcode, payload: f.payload, fin: f.fin, rsv: f.rsv },
          role === "server",
        )
      ),
    )
  );
}

/** Mutations of a byte stream: flipped bits, bytes in and out, a cut. */
function mutated(base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.tuple(
    base,
    fc.array(
      fc.tuple(
        fc.constantFrom("flip", "set", "insert", "delete", "cut"),
        fc.nat(),
        fc.nat(255),
      ),
      { minLength: 1, maxLength: 4 },
    ),
  ).map(([bytes, edits]) => {
    let out = [...bytes];
    for (const [kind, where, value] of edits) {
      const at = out.length === 0 ? 0 : where % out.length;
      if (kind === "flip" && out.length > 0) out[at] ^= 1 << (value & 7);
      else if (kind === "set" && out.length > 0) out[at] = value;
      else if (kind === "insert") out.splice(at, 0, value);
      else if (kind === "delete") out.splice(at, 1);
      else if (kind === "cut") out = out.slice(0, at);
    }
    return new Uint8Array(out);
  });
}

/** Cuts `bytes` at arbitrary points: the chunks the transport delivers. */
function chunked(
  bytes: fc.Arbitrary<Uint8Array>,
): fc.Arbitrary<readonly Uint8Array[]> {
  return bytes.chain((whole) =>
    fc.oneof(
      fc.constant([whole] as readonly Uint8Array[]),
      fc.constant(Array.from(whole, (b) => new Uint8Array([b]))),
      fc.array(fc.nat(whole.length), { maxLength: 8 }).map((cuts) => {
        const points = [...new Set(cuts)].sort((a, b) => a - b);
        const bounds = [0, ...points, whole.length];
        const out: Uint8Array[] = [];
        for (let k = 0; k + 1 < bounds.length; k++) {
          // Each chunk its own buffer: the decoder owns what it is given.
          out.push(whole.slice(bounds[k], bounds[k + 1]));
        }
        return out;
      }),
    )
  );
}

function inputs(role: "server" | "client"): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }) },
    { weight: 3, arbitrary: frameStream(role) },
    { weight: 3, arbitrary: mutated(frameStream(role)) },
  );
}

// ---------------------------------------------------------------------------
// Properties

for (const role of ["server", "client"] as const) {
  test(`fuzz: WebSocketConnection (${role}) does what the model says on any bytes in any chunks`, async () => {
    await fc.assert(
      fc.asyncProperty(chunked(inputs(role)), async (chunks) => {
        const expected = model(concat(chunks), role);
        const observed = await withTimeout(
          runConnection(copies(chunks), role),
          `${role} connection`,
        );
        check(observed, expected);
      }),
      params(500),
    );
  });
}

// Handshake requests: valid, mutated, or noise, and frames behind them.
const REQUEST_LINES = [
  "GET /chat?room=1 HTTP/1.1",
  "Host: example.com",
  "Upgrade: websocket",
  "Connection: keep-alive, Upgrade",
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
  "Sec-WebSocket-Version: 13",
  "Sec-WebSocket-Protocol: chat, superchat",
  "Sec-WebSocket-Extensions: x-foo; a=1, permessage-deflate; client_max_window_bits",
  "Origin: http://example.com",
];

const requestHead: fc.Arbitrary<Uint8Array> = fc.oneof(
  // Every line a handshake needs, and some of the optional ones.
  {
    weight: 3,
    arbitrary: fc.subarray(REQUEST_LINES.slice(6)).map((lines) =>
      utf8.encode(
        [...REQUEST_LINES.slice(0, 6), ...lines].join("\r\n") + "\r\n\r\n",
      )
    ),
  },
  {
    weight: 2,
    arbitrary: fc.subarray(REQUEST_LINES.slice(1), { minLength: 0 }).map((
      lines,
    ) => utf8.encode([REQUEST_LINES[0], ...lines].join("\r\n") + "\r\n\r\n")),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 100 }) },
);

const requestBytes: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.tuple(requestHead, frameStream("server")).map(([head, frames]) =>
    concat([head, frames])
  ),
  mutated(
    fc.tuple(requestHead, frameStream("server")).map(([h, f]) =>
      concat([h, f])
    ),
  ),
);

// A node:net socket, in memory: records what is written, takes what the
// test feeds it.
class FakeSocket extends EventEmitter {
  written: Uint8Array[] = [];
  destroyed = false;
  writableEnded = false;
  write(chunk: Uint8Array, callback?: (error?: Error | null) => void): boolean {
    if (this.destroyed || this.writableEnded) return false;
    this.written.push(chunk.slice());
    if (callback) queueMicrotask(() => callback(null));
    return true;
  }
  end(callback?: () => void): this {
    if (!this.writableEnded) {
      this.writableEnded = true;
      queueMicrotask(() => {
        callback?.();
        this.destroy();
      });
    } else if (callback) queueMicrotask(callback);
    return this;
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      queueMicrotask(() => this.emit("close"));
    }
    return this;
  }
  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
}

test("fuzz: request bytes through HeadReader and upgrade(), then frames: a refusal, or what the model says", async () => {
  await fc.assert(
    fc.asyncProperty(chunked(requestBytes), async (chunks) => {
      await withTimeout(upgradeCase(copies(chunks)), "upgrade");
    }),
    params(500),
  );
});

// The decoders own the chunks they are given (they unmask in place), and
// fast-check replays values while shrinking: each run gets copies.
function copies(chunks: readonly Uint8Array[]): Uint8Array[] {
  return chunks.map((chunk) => chunk.slice());
}

async function upgradeCase(chunks: Uint8Array[]): Promise<void> {
  const expectedFrames = (rest: Uint8Array, from: number) =>
    model(concat([rest, ...chunks.slice(from)]), "server");
  // The head, as a raw-socket server would read it.
  const heads = new HeadReader(parseRequestHead);
  let k = 0;
  let head: ReturnType<typeof heads.push> = { kind: "incomplete" };
  while (k < chunks.length && head.kind === "incomplete") {
    head = heads.push(chunks[k++]);
  }
  // Whole or in chunks, the same head.
  const whole = parseRequestHead(concat(chunks));
  assert.equal(head.kind, whole.kind);
  if (head.kind !== "complete") {
    count(`request head ${head.kind}`);
    return;
  }
  // The model sees the bytes before our decoders unmask them in place.
  const expected = expectedFrames(head.rest, k);
  const request: NodeRequest = {
    method: head.method,
    url: head.target,
    httpVersion: head.version,
    rawHeaders: [...head.headers].flat(),
  };
  const socket = new FakeSocket();
  const ws = upgrade(request, socket as never, head.rest, {
    maxFrameSize: MAX_FRAME,
    maxMessageSize: MAX_MESSAGE,
  });
  const closed = ws.closed.then(
    (value) => ({ ok: true as const, value }),
    (error) => ({ ok: false as const, error }),
  );
  let opened;
  try {
    opened = await ws.opened;
  } catch (error) {
    // Refused: a HandshakeError, a 4xx on the wire, the socket ended.
    assert.ok(error instanceof HandshakeError, String(error));
    count(`handshake refused ${error.status}`);
    const response = new TextDecoder().decode(concat(socket.written));
    assert.match(response, /^HTTP\/1\.1 4\d\d /);
    assert.ok(socket.writableEnded, "the refused socket was not ended");
    const outcome = await closed;
    assert.ok(!outcome.ok);
    return;
  }
  const messages = readAll(opened.readable);
  for (const chunk of chunks.slice(k)) socket.emit("data", chunk);
  socket.emit("end");
  const outcome = await closed;
  const out = concat(socket.written);
  const text = new TextDecoder("latin1").decode(out);
  const end = text.indexOf("\r\n\r\n");
  assert.match(text, /^HTTP\/1\.1 101 /);
  const key = head.headers.get("sec-websocket-key") ?? "";
  assert.ok(
    text.includes(`sec-websocket-accept: ${acceptFor(key)}\r\n`),
    text.slice(0, end),
  );
  const reader = new Reader(false);
  reader.push(out.subarray(end + 4));
  check(
    { messages: await messages, closed: outcome, sent: reader.log },
    expected,
  );
}

// Response heads: the client's side of the handshake.
test("fuzz: response bytes through HeadReader and verifyResponse: accepted only if valid, else a HandshakeError", () => {
  const offer = clientHandshake("ws://example.com/chat", {
    protocols: ["chat"],
  });
  const accept = acceptFor(offer.key);
  const lines = [
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Accept: ${accept}`,
    "Sec-WebSocket-Protocol: chat",
  ];
  const response = fc.oneof(
    fc.subarray(lines, { minLength: 0 }).map((ls) =>
      utf8.encode(
        ["HTTP/1.1 101 Switching Protocols", ...ls].join("\r\n") + "\r\n\r\n",
      )
    ),
    fc.uint8Array({ maxLength: 80 }),
  );
  fc.assert(
    fc.property(chunked(fc.oneof(response, mutated(response))), (chunks) => {
      const heads = new HeadReader(parseResponseHead);
      let head: ReturnType<typeof heads.push> = { kind: "incomplete" };
      for (const chunk of chunks) {
        head = heads.push(chunk);
        if (head.kind !== "incomplete") break;
      }
      if (head.kind !== "complete") return;
      let agreed;
      try {
        agreed = verifyResponse(head, offer);
      } catch (error) {
        assert.ok(error instanceof HandshakeError, String(error));
        return;
      }
      // Accepted: then it is a 101 that says what §4.1 asks.
      assert.equal(head.status, 101);
      assert.equal(head.headers.get("sec-websocket-accept"), accept);
      assert.ok(["", "chat"].includes(agreed.protocol));
    }),
    params(1000),
  );
});
