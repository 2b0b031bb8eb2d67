// WebSockets over HTTP/2 (RFC 8441): serve({ http2 }), the node:http2
// adapter (upgradeStream) and the client's httpVersion option, against each
// other and against a bare node:http2 peer, on whichever runtime runs this
// file.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { test } from "node:test";
import { WebSocketStream } from "../src/client.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { WebSocketError } from "../src/errors.ts";
import { HandshakeError } from "../src/handshake.ts";
import { serve, type ServeOptions } from "../src/serve.ts";
import { eventually } from "./_helpers.ts";

const TLS = {
  cert: readFileSync(new URL("interop/test_cert.pem", import.meta.url)),
  key: readFileSync(new URL("interop/test_key.pem", import.meta.url)),
};
const TRUST = { rejectUnauthorized: false };

interface Seen {
  httpVersion: string;
  method: string;
}

// An echo server that notes each WebSocket's request.
async function echoServer(options: ServeOptions = {}) {
  const seen: Seen[] = [];
  const sessions: unknown[] = [];
  const server = serve(
    { origins: "*", ...options },
    async (ws, request: { httpVersion: string; method?: string }) => {
      seen.push({ httpVersion: request.httpVersion, method: request.method! });
      try {
        const { readable, writable } = await ws.opened;
        await readable.pipeTo(writable);
      } catch {
        // closed says how
      }
    },
  );
  server.server.on("session", (session) => sessions.push(session));
  const { url, port } = await server.listening;
  return { server, url, port, seen, sessions };
}

async function roundTrip(client: WebSocketStream): Promise<void> {
  const { readable, writable } = await client.opened;
  const writer = writable.getWriter();
  const reader = readable.getReader();
  await writer.write("hello");
  assert.equal((await reader.read()).value, "hello");
  const binary = new Uint8Array(100_000).map((_, i) => i & 0xff);
  await writer.write(binary);
  assert.deepEqual((await reader.read()).value, binary);
  writer.releaseLock();
  reader.releaseLock();
}

test("serve({ http2, tls }) takes HTTP/1.1 upgrades and HTTP/2 CONNECTs on one port", async () => {
  const { server, url, seen, sessions } = await echoServer({
    tls: TLS,
    http2: true,
  });
  assert.ok(url.startsWith("wss://"));
  const one = new WebSocketStream(url, { tls: TRUST });
  const two = new WebSocketStream(url, { tls: TRUST, httpVersion: "2" });
  const auto = new WebSocketStream(url, { tls: TRUST, httpVersion: "auto" });
  await Promise.all([roundTrip(one), roundTrip(two), roundTrip(auto)]);
  assert.deepEqual(
    seen.map((s) => `${s.httpVersion} ${s.method}`).sort(),
    ["1.1 GET", "2.0 CONNECT", "2.0 CONNECT"],
  );
  // The two over HTTP/2 share one connection.
  assert.equal(sessions.length, 1);
  for (const client of [one, two, auto]) {
    client.close({ closeCode: 1000 });
    assert.deepEqual(await client.closed, { closeCode: 1000, reason: "" });
  }
  await server.close();
});

test("serve({ http2 }) without tls speaks cleartext HTTP/2 to clients that know it", async () => {
  const { server, url, seen } = await echoServer({ http2: true });
  assert.ok(url.startsWith("ws://"));
  const client = new WebSocketStream(url, { httpVersion: "2" });
  await roundTrip(client);
  assert.deepEqual(seen, [{ httpVersion: "2.0", method: "CONNECT" }]);
  // A server's close is a 1001 over HTTP/2 as over TCP.
  await server.close();
  assert.deepEqual(await client.closed, { closeCode: 1001, reason: "" });
});

test("httpVersion auto falls back to HTTP/1.1 where the server offers no HTTP/2", async () => {
  const { server, url, seen } = await echoServer({ tls: TLS });
  const client = new WebSocketStream(url, { tls: TRUST, httpVersion: "auto" });
  await roundTrip(client);
  assert.deepEqual(seen, [{ httpVersion: "1.1", method: "GET" }]);
  client.close({ closeCode: 1000 });
  await client.closed;
  await server.close();
});

test("httpVersion 2 fails against an HTTP/2 server that does not offer WebSockets", async () => {
  const server = http2.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const client = new WebSocketStream(`ws://127.0.0.1:${port}`, {
    httpVersion: "2",
  });
  client.closed.catch(() => {});
  await assert.rejects(
    client.opened,
    (error) =>
      error instanceof WebSocketError && error.code === "connect_failed" &&
      /SETTINGS_ENABLE_CONNECT_PROTOCOL/.test(error.message),
  );
  await new Promise((resolve) => server.close(resolve));
});

test("httpVersion is checked", () => {
  assert.throws(
    () =>
      new WebSocketStream("ws://127.0.0.1:1", {
        httpVersion: "3" as "2",
      }),
    TypeError,
  );
});

test("a refused extended CONNECT rejects opened with the status", async () => {
  const { server, url } = await echoServer({
    http2: true,
    accept: () => new Response("no", { status: 401 }),
  });
  const client = new WebSocketStream(url, { httpVersion: "2" });
  client.closed.catch(() => {});
  await assert.rejects(
    client.opened,
    (error) =>
      error instanceof HandshakeError && error.code === "unexpected_status" &&
      error.status === 401,
  );
  await server.close();
});

test("permessage-deflate over HTTP/2", async () => {
  const { server, url } = await echoServer({
    http2: true,
    perMessageDeflate: true,
  });
  const client = new WebSocketStream(url, {
    httpVersion: "2",
    perMessageDeflate: true,
  });
  const { extensions } = await client.opened;
  assert.match(extensions, /^permessage-deflate/);
  await roundTrip(client);
  const { readable, writable } = await client.opened;
  const text = "compressible ".repeat(50_000);
  const writer = writable.getWriter();
  await writer.write(text);
  assert.equal((await readable.getReader().read()).value, text);
  client.close({ closeCode: 1000 });
  await client.closed;
  await server.close();
});
