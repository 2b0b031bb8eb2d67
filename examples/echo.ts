// An echo server: every message comes back as it came, text as text and
// binary as binary, over the node:http upgrade path (full codec). The
// limits are set high (64 MiB, unlimited fragments) so that conformance
// suites and benchmarks can use it. It accepts permessage-deflate (RFC
// 7692) offers with any of the RFC's parameters, and compresses replies of
// --deflate-threshold bytes and more (1024 unless given).
//
//   node examples/echo.ts [--port 9001] [--host 127.0.0.1] [--deflate-threshold 1024]
//   deno run -A examples/echo.ts --port 9001
//   bun examples/echo.ts --port 9001

import process from "node:process";
import type { WebSocketConnection } from "../src/connection.ts";
import { serve } from "../src/serve.ts";

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && at + 1 < process.argv.length
    ? process.argv[at + 1]
    : fallback;
}

const LIMIT = 64 * 1024 * 1024;
const threshold = Number(option("deflate-threshold", "1024"));

// serve()'s defaults otherwise: a 10 s bound on each handshake, a heartbeat.
const server = serve({
  port: Number(option("port", "9001")),
  hostname: option("host", "127.0.0.1"),
  origins: "*",
  maxFrameSize: LIMIT,
  maxMessageSize: LIMIT,
  fragmentSize: LIMIT,
  perMessageDeflate: { threshold },
}, (ws) => void echo(ws));

// Apart from the upgrade handler, so that the connection's long wait does
// not keep the request (its headers, its parser state) alive.
async function echo(ws: WebSocketConnection): Promise<void> {
  try {
    const { readable, writable } = await ws.opened;
    await readable.pipeTo(writable);
  } catch {
    // A refused handshake or a failed connection: `closed` says which.
  }
  await ws.closed.catch(() => {});
}

const { url } = await server.listening;
console.log(`echo server listening on ${url.slice(0, -1)}`);
