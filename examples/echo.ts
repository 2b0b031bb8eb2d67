// An echo server: every message comes back as it came, text as text and
// binary as binary, over the node:http upgrade path (full codec). The
// limits are set high (64 MiB, unlimited fragments) so that conformance
// suites and benchmarks can use it. It accepts permessage-deflate (RFC
// 7692) offers with any of the RFC's parameters, and compresses replies of
// --deflate-threshold bytes and more (1024 unless given).
//
// --http2 serves the same echo over HTTP/2 only (RFC 8441 extended
// CONNECTs, no HTTP/1.1 on that port): over TLS with --tls-cert and
// --tls-key (wss:), else cleartext HTTP/2 with prior knowledge (ws:). The
// certificate and key alone serve wss: over HTTP/1.1.
//
//   node examples/echo.ts [--port 9001] [--host 127.0.0.1] [--deflate-threshold 1024]
//     [--http2] [--tls-cert cert.pem --tls-key key.pem]
//   deno run -A examples/echo.ts --port 9001
//   bun examples/echo.ts --port 9001

import { readFileSync } from "node:fs";
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
const http2 = process.argv.includes("--http2");
const cert = option("tls-cert", "");
const key = option("tls-key", "");
if ((cert === "") !== (key === "")) {
  console.error("--tls-cert and --tls-key go together");
  process.exit(2);
}
const tls = cert === ""
  ? undefined
  : { cert: readFileSync(cert), key: readFileSync(key) };

// serve()'s defaults otherwise: a 10 s bound on each handshake, a heartbeat.
const server = serve({
  port: Number(option("port", "9001")),
  hostname: option("host", "127.0.0.1"),
  origins: "*",
  maxFrameSize: LIMIT,
  maxMessageSize: LIMIT,
  fragmentSize: LIMIT,
  perMessageDeflate: { threshold },
  tls,
  http2,
  allowHTTP1: false,
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
if (http2) console.log("over HTTP/2 only (RFC 8441)");
