// What permessage-deflate costs a broadcast, three ways, for 1,000
// members that negotiated it, on the runtime that runs this file:
//
// - uncompressed (what Broadcast does today): framed once, every member
//   gets the message's own bytes (RFC 7692 lets any message go
//   uncompressed);
// - compressed once: possible only for members that negotiated
//   server_no_context_takeover with the same window: one deflate, every
//   member gets the same compressed bytes;
// - compressed per member: what a loop of writes does with context
//   takeover (ws, a connection's own writes): one deflate per member.
//
// For a chat line, a 4 KiB dashboard update and a 64 KiB snapshot (JSON,
// as such servers send), it prints the deflate time per message (zlib's
// default level, 15-bit window, Z_SYNC_FLUSH, as the library compresses),
// the bytes every member gets, and per broadcast the server's deflate time
// and the bytes it writes in all.
//
//   node bench/fanout_deflate.ts [--quick] [--members=1000]
//   deno run -A bench/fanout_deflate.ts
//   bun bench/fanout_deflate.ts

import { Buffer } from "node:buffer";
import process from "node:process";
import zlib from "node:zlib";
import { listed } from "./_args.ts";
import { machine, runtime } from "./_env.ts";
import { describeTiming, measure, table, timingFor } from "./_timing.ts";

const quick = process.argv.includes("--quick");
const MEMBERS = Number(listed("members")?.[0] ?? 1000);
const timing = timingFor(quick);

// Deterministic JSON of about `size` bytes: records with names, numbers
// and timestamps, as a dashboard or a chat sends.
function json(size: number): Buffer {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const names = ["cpu", "memory", "requests", "errors", "latency", "queue"];
  const rows: unknown[] = [];
  let text = "";
  while (text.length < size) {
    rows.push({
      host: `web-${Math.floor(random() * 40)}`,
      metric: names[Math.floor(random() * names.length)],
      value: Math.round(random() * 1e6) / 100,
      time: 1765100000000 + Math.floor(random() * 1e6),
    });
    text = JSON.stringify({ type: "update", rows });
  }
  return Buffer.from(text.slice(0, size));
}

const MESSAGES: [string, Buffer][] = [
  [
    "chat line (JSON)",
    Buffer.from(JSON.stringify({
      type: "message",
      nick: "ada",
      text: "has anyone tried the new build on the staging cluster yet?",
      time: 1765100000000,
    })),
  ],
  ["4 KiB update (JSON)", json(4096)],
  ["64 KiB snapshot (JSON)", json(64 * 1024)],
];

const OPTIONS = {
  level: -1,
  memLevel: 8,
  windowBits: 15,
  finishFlush: zlib.constants.Z_SYNC_FLUSH,
};

// A frame's header for a payload of `size`, as a server sends it.
const header = (size: number) => size < 126 ? 2 : size < 0x10000 ? 4 : 10;

console.log(`Broadcast and permessage-deflate: ${MEMBERS} members`);
console.log(`${runtime()}; ${machine()}`);
console.log(describeTiming(timing));
const rows: string[][] = [];
for (const [name, message] of MESSAGES) {
  // Without the tail RFC 7692 strips (00 00 ff ff).
  const compressed = zlib.deflateRawSync(message, OPTIONS).length - 4;
  const [rate] = await measure([{
    name,
    run: () => void zlib.deflateRawSync(message, OPTIONS),
  }], timing);
  const deflateUs = 1e6 / rate.perSecond;
  const plainFrame = header(message.length) + message.length;
  const deflatedFrame = header(compressed) + compressed;
  const total = (frame: number) => `${(frame * MEMBERS / 1024).toFixed(0)} KiB`;
  const time = (us: number) =>
    us >= 1000 ? `${(us / 1000).toFixed(1)} ms` : `${us.toFixed(1)} µs`;
  rows.push([
    name,
    `${message.length} B`,
    `${compressed} B (${(compressed / message.length * 100).toFixed(0)}%)`,
    time(deflateUs),
    `0 / ${total(plainFrame)}`,
    `${time(deflateUs)} / ${total(deflatedFrame)}`,
    `${time(deflateUs * MEMBERS)} / ${total(deflatedFrame)}`,
  ]);
}
table([
  "message",
  "size",
  "deflated",
  "deflate, once",
  "uncompressed: deflate / wire",
  "compressed once",
  "compressed per member",
], rows);
console.log(
  "Per broadcast to all members: the server's deflate time, and the bytes " +
    "it writes in all (frames included). Compressed per member with context " +
    "takeover is about as costly per message as this one-shot deflate, and " +
    "its bytes can be fewer (the window holds earlier messages).",
);
