// Encodes a few frames as a client would send them, then decodes them as a
// server would, through the public streams, printing the bytes on the wire.
//
//   node examples/frames.ts    deno run examples/frames.ts    bun examples/frames.ts

import {
  type Frame,
  FrameDecoderStream,
  FrameEncoderStream,
  Opcode,
} from "../mod.ts";

const text = new TextEncoder();
const frames: Frame[] = [
  {
    fin: false,
    rsv1: false,
    rsv2: false,
    rsv3: false,
    opcode: Opcode.Text,
    payload: text.encode("Hel"),
  },
  {
    fin: true,
    rsv1: false,
    rsv2: false,
    rsv3: false,
    opcode: Opcode.Ping,
    payload: text.encode("ping"),
  },
  {
    fin: true,
    rsv1: false,
    rsv2: false,
    rsv3: false,
    opcode: Opcode.Continuation,
    payload: text.encode("lo"),
  },
  {
    fin: true,
    rsv1: false,
    rsv2: false,
    rsv3: false,
    opcode: Opcode.Binary,
    payload: new Uint8Array(300),
  },
];

const hex = (bytes: Uint8Array, max = 16) =>
  Array.from(bytes.subarray(0, max), (b) => b.toString(16).padStart(2, "0"))
    .join(" ") +
  (bytes.length > max ? ` … (${bytes.length} bytes)` : "");
const opcodeName = (opcode: number) =>
  Object.entries(Opcode).find(([, value]) => value === opcode)?.[0];

const wire = ReadableStream.from(frames)
  .pipeThrough(new FrameEncoderStream({ role: "client" }))
  .pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        console.log(`wire   ${hex(chunk)}`);
        controller.enqueue(chunk);
      },
    }),
  );

for await (
  const frame of wire.pipeThrough(new FrameDecoderStream({ role: "server" }))
) {
  const body = frame.opcode === Opcode.Binary
    ? hex(frame.payload, 4)
    : JSON.stringify(new TextDecoder().decode(frame.payload));
  console.log(`frame  ${opcodeName(frame.opcode)} fin=${frame.fin} ${body}`);
}
