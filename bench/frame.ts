// Frame codec benchmark: this package's decoder, encoder and masking against
// the `ws` package's Receiver and Sender, in the same process, on the same
// bytes. Runs unchanged on Node, Deno and Bun:
//
//   node bench/frame.ts           deno run -A bench/frame.ts    bun bench/frame.ts
//
// Options: --quick (shorter timing), --only=decode,encode,mask.
//
// Ratios are ours / ws: above 1 means this package is faster.

import { Buffer } from "node:buffer";
import process from "node:process";
import { mask } from "../src/_mask.ts";
import type { Frame, Role } from "../src/frame.ts";
import { FrameDecoder } from "../src/frame_decoder.ts";
import { FrameDecoderStream } from "../src/frame_decoder_stream.ts";
import { FrameEncoder } from "../src/frame_encoder.ts";
import { FrameEncoderStream } from "../src/frame_encoder_stream.ts";
import { Opcode } from "../src/opcode.ts";
import { listed } from "./_args.ts";
import {
  bytes,
  describeTiming,
  measure,
  ratio,
  speedup,
  table,
  timingFor,
  type Variant,
} from "./_timing.ts";
import {
  BATCH_BYTES,
  batchOf,
  buffersOf,
  CHUNK,
  chunksOf,
  drain,
  encodes,
  equal,
  expecter,
  footer,
  frameOf,
  header,
  keep,
  onBytes,
  onFrame,
  onMessage,
  onWritten,
  perBatch,
  restore,
  row,
  SIZES,
  spread,
  streamOf,
  type Wire,
  wireSize,
} from "./_wire.ts";
import { bufferutil, Receiver, Sender, type WsFrameOptions } from "./_ws.ts";

const args = process.argv.slice(2);
const only = new Set(listed("only") ?? ["decode", "encode", "mask"]);
const timing = timingFor(args.includes("--quick"));

const MASK_SIZES = [1024, 64 * 1024, 1024 * 1024];

const expect = expecter("frames", "bytes");

function payloadOf(size: number): Uint8Array {
  const payload = new Uint8Array(size);
  let x = size | 1;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) | 0;
    payload[i] = x >>> 24;
  }
  return payload;
}

const binary = (payload: Uint8Array) => frameOf(Opcode.Binary, payload);

// Decoding ------------------------------------------------------------------

interface DecodeCase extends Wire {
  /** The decoding side's role: a server receives masked frames. */
  role: Role;
  payload: Uint8Array;
}

function decodeCase(size: number, masked: boolean): DecodeCase {
  const payload = payloadOf(size);
  const role = masked ? "server" : "client";
  return { ...batchOf(binary(payload), masked), role, payload };
}

function decodeWithStream(
  c: DecodeCase,
  chunks: Uint8Array[],
  each: (frame: Frame) => void,
): Promise<void> {
  return drain(
    streamOf(chunks).pipeThrough(new FrameDecoderStream({ role: c.role })),
    each,
  );
}

/** Checks, untimed, that all three decode the payloads exactly. */
async function verifyDecode(c: DecodeCase): Promise<void> {
  const results: [string, Uint8Array[]][] = [];

  const pushed: Uint8Array[] = [];
  const decoder = new FrameDecoder({ role: c.role });
  for (const chunk of chunksOf(c)) {
    decoder.push(chunk, (frame) => pushed.push(frame.payload));
  }
  decoder.end();
  results.push(["FrameDecoder", pushed]);

  const streamed: Uint8Array[] = [];
  await decodeWithStream(c, chunksOf(c), (f) => streamed.push(f.payload));
  results.push(["FrameDecoderStream", streamed]);

  const received: Uint8Array[] = [];
  const receiver = new Receiver({ isServer: c.masked, maxPayload: 0 });
  receiver.on("message", (data) => received.push(data));
  for (const chunk of buffersOf(c)) receiver._write(chunk, null, onWritten);
  results.push(["ws Receiver", received]);

  for (const [name, payloads] of results) {
    if (
      payloads.length !== c.count ||
      !payloads.every((p) => equal(p, c.payload))
    ) {
      throw new Error(`${name} decoded ${bytes(c.size)} frames wrongly`);
    }
  }
}

async function benchDecode(masked: boolean): Promise<void> {
  const rows: string[][] = [];
  for (const size of SIZES) {
    const c = decodeCase(size, masked);
    await verifyDecode(c);
    const expected = () => expect(`${bytes(size)}`, c.count, c.count * size);

    const pushChunks = chunksOf(c);
    const decoder = new FrameDecoder({ role: c.role });
    const push: Variant = {
      name: "push",
      run: () => {
        for (const chunk of pushChunks) decoder.push(chunk, onFrame);
      },
      after: () => {
        expected();
        restore(c, pushChunks);
      },
    };

    const streamChunks = chunksOf(c);
    const stream: Variant = {
      name: "stream",
      run: () => decodeWithStream(c, streamChunks, onFrame),
      after: () => {
        expected();
        restore(c, streamChunks);
      },
    };

    const wsChunks = buffersOf(c);
    const receiver = new Receiver({ isServer: masked, maxPayload: 0 });
    receiver.on("message", onMessage);
    const ws: Variant = {
      name: "ws",
      run: () => {
        for (const chunk of wsChunks) receiver._write(chunk, null, onWritten);
      },
      after: () => {
        expected();
        restore(c, wsChunks);
      },
    };

    const rates = await measure([push, stream, ws], timing);
    rows.push(row(size, c.count, "f/s", rates));
  }
  table([
    "payload",
    "FrameDecoder.push",
    "FrameDecoderStream",
    "ws Receiver",
    "push/ws",
    "stream/ws",
    "noise",
  ], rows);
}

// Encoding ------------------------------------------------------------------

function encodeWithStream(
  frameList: Frame[],
  role: Role,
  each: (chunk: Uint8Array) => void,
): Promise<void> {
  return drain(
    streamOf(frameList).pipeThrough(new FrameEncoderStream({ role })),
    each,
  );
}

/** Checks, untimed, that each encoder's output decodes to the payload. */
async function verifyEncode(
  payload: Uint8Array,
  masked: boolean,
  wsOptions: WsFrameOptions,
): Promise<void> {
  const role: Role = masked ? "client" : "server";
  const outputs: [string, Uint8Array[]][] = [];
  const encoded: Uint8Array[] = [];
  new FrameEncoder({ role }).encode(binary(payload), (b) => encoded.push(b));
  outputs.push(["FrameEncoder", encoded]);
  const streamed: Uint8Array[] = [];
  await encodeWithStream([binary(payload)], role, (b) => streamed.push(b));
  outputs.push(["FrameEncoderStream", streamed]);
  outputs.push([
    "ws Sender.frame",
    Sender.frame(Buffer.from(payload), wsOptions),
  ]);
  for (const [name, chunks] of outputs) {
    if (!encodes(chunks, binary(payload), masked)) {
      throw new Error(`${name} encoded ${bytes(payload.length)} wrongly`);
    }
  }
}

async function benchEncode(masked: boolean): Promise<void> {
  const role: Role = masked ? "client" : "server";
  const rows: string[][] = [];
  for (const size of SIZES) {
    const count = perBatch(size);
    const payload = payloadOf(size);
    const frame = binary(payload);
    // What ws's own WebSocket#send passes for a Buffer: the data is
    // read-only, so a masked payload is copied, as this package always does.
    const wsOptions: WsFrameOptions = {
      fin: true,
      rsv1: false,
      opcode: Opcode.Binary,
      mask: masked,
      readOnly: true,
    };
    const wsData = Buffer.from(payload);
    await verifyEncode(payload, masked, wsOptions);
    const length = count * wireSize(size, masked);
    // The encoders emit one or two chunks a frame: check the byte count.
    const check = () => expect(bytes(size), null, length);

    const encoder = new FrameEncoder({ role });
    const encode: Variant = {
      name: "encode",
      run: () => {
        for (let i = 0; i < count; i++) encoder.encode(frame, onBytes);
      },
      after: check,
    };

    const frameList = new Array<Frame>(count).fill(frame);
    const stream: Variant = {
      name: "stream",
      run: () => encodeWithStream(frameList, role, onBytes),
      after: check,
    };

    const ws: Variant = {
      name: "ws",
      run: () => {
        for (let i = 0; i < count; i++) {
          const list = Sender.frame(wsData, wsOptions);
          for (let j = 0; j < list.length; j++) onBytes(list[j]);
        }
      },
      after: check,
    };

    const rates = await measure([encode, stream, ws], timing);
    rows.push(row(size, count, "f/s", rates));
  }
  table([
    "payload",
    "FrameEncoder.encode",
    "FrameEncoderStream",
    "ws Sender.frame",
    "encode/ws",
    "stream/ws",
    "noise",
  ], rows);
}

// Masking -------------------------------------------------------------------

async function benchMask(): Promise<void> {
  const KEY = 0x37fa213d;
  const keyBytes = Buffer.from([0x37, 0xfa, 0x21, 0x3d]);
  const rows: string[][] = [];
  for (const size of MASK_SIZES) {
    const reps = Math.max(1, Math.ceil((4 << 20) / size));
    const source = payloadOf(size);
    const target = new Uint8Array(size);
    const data = source.slice();
    const bufferSource = Buffer.from(source);
    const bufferTarget = Buffer.alloc(size);
    const bufferData = Buffer.from(source);

    // Masking is its own inverse: check it against the definition once.
    mask(data, KEY);
    for (let i = 0; i < size; i++) {
      if (data[i] !== (source[i] ^ keyBytes[i & 3])) {
        throw new Error(`mask() is wrong at byte ${i} of ${size}`);
      }
    }
    const sample = (bytes: Uint8Array) => keep(bytes[reps % size]);

    const variants: Variant[] = [
      {
        name: "copy",
        run: () => {
          for (let r = 0; r < reps; r++) target.set(source);
        },
        after: () => sample(target),
      },
      {
        name: "mask",
        run: () => {
          for (let r = 0; r < reps; r++) mask(data, KEY);
        },
        after: () => sample(data),
      },
      {
        name: "copy+mask",
        run: () => {
          for (let r = 0; r < reps; r++) {
            target.set(source);
            mask(target, KEY);
          }
        },
        after: () => sample(target),
      },
    ];
    const addon = bufferutil;
    if (addon !== null) {
      variants.push({
        name: "bufferutil.unmask",
        run: () => {
          for (let r = 0; r < reps; r++) addon.unmask(bufferData, keyBytes);
        },
        after: () => sample(bufferData),
      }, {
        name: "bufferutil.mask",
        run: () => {
          for (let r = 0; r < reps; r++) {
            addon.mask(bufferSource, keyBytes, bufferTarget, 0, size);
          }
        },
        after: () => sample(bufferTarget),
      });
    }
    const results = await measure(variants, timing);
    const gbps = results.map((r) => (r.perSecond * reps * size) / 1e9);
    const gb = (i: number) =>
      gbps[i] === undefined ? "n/a" : `${gbps[i].toFixed(2)} GB/s`;
    const vs = (a: number, b: number) =>
      results[b] === undefined ? "n/a" : ratio(speedup(results[a], results[b]));
    // copy, mask, copy+mask, bufferutil unmask, bufferutil mask
    rows.push([
      bytes(size),
      gb(0),
      gb(1),
      gb(2),
      gb(3),
      gb(4),
      vs(1, 0),
      vs(1, 3),
      vs(2, 4),
      spread(results.map((r) => r.spread)),
    ]);
  }
  table([
    "size",
    "copy (set)",
    "mask()",
    "copy+mask()",
    "bu.unmask",
    "bu.mask",
    "mask/copy",
    "mask/bu.unmask",
    "copy+mask/bu.mask",
    "noise",
  ], rows);
}

// Main ----------------------------------------------------------------------

const started = performance.now();
await header(
  "Frame codec benchmark",
  "bufferutil: IN USE (native addon), by ws and in the masking table",
);
console.log(
  `${describeTiming(timing)}; ` +
    `batches of ~${bytes(BATCH_BYTES)} (at least 4 frames), delivered in ${
      bytes(CHUNK)
    } chunks. Ratios are ours / ws: > 1 means ours is faster.`,
);
console.log(
  "ws side: Receiver#_write(chunk) (the parser, minus Writable buffering), " +
    "counting 'message' events, one per FIN frame; static Sender.frame() with " +
    "readOnly: true. noise: half the range of the per-round rates, worst " +
    "variant of the row.",
);

if (only.has("decode")) {
  console.log(
    "\n## Decode, masked (client to server: role server / ws isServer: true)",
  );
  await benchDecode(true);
  console.log(
    "\n## Decode, unmasked (server to client: role client / ws isServer: false)",
  );
  await benchDecode(false);
}
if (only.has("encode")) {
  console.log("\n## Encode, masked (role client / ws mask: true)");
  await benchEncode(true);
  console.log(
    "\n## Encode, unmasked (role server / ws mask: false)\n" +
      "ws always emits [header, payload]; ours copies payloads up to 512 B\n" +
      "behind the header and passes larger ones through, so at 64 KiB and up\n" +
      "neither copies and GB/s is nominal.",
  );
  await benchEncode(false);
}
if (only.has("mask")) {
  console.log(
    "\n## Masking throughput (in place unless copy; bu = bufferutil, native)",
  );
  await benchMask();
}
await footer(started, "payload bytes checked");
