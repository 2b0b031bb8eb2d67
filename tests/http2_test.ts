// WebSockets over HTTP/2 (RFC 8441): serve({ http2 }), the node:http2
// adapter (upgradeStream) and the client's httpVersion option, against each
// other and against a bare node:http2 peer, on whichever runtime runs this
// file.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import http2 from "node:http2";
import { connect as tlsConnect } from "node:tls";
import { test } from "node:test";
import { WebSocketStream } from "../src/client.ts";
import { WebSocketError } from "../src/errors.ts";
import { HandshakeError } from "../src/handshake.ts";
import { serve, type ServeOptions } from "../src/serve.ts";
import { upgradeStream } from "../src/adapters/node_http2.ts";
import { eventually } from "./_helpers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const TLS = {
  cert: readFileSync(new URL("interop/test_cert.pem", import.meta.url)),
  key: readFileSync(new URL("interop/test_key.pem", import.meta.url)),
};
const TRUST = { rejectUnauthorized: false };

interface Seen {
  httpVersion: string;
  method: string;
}

// An echo server that notes each WebSocket's request, and how each ended.
async function echoServer(options: ServeOptions = {}) {
  const seen: Seen[] = [];
  const ends: unknown[] = [];
  const sessions: { once(event: string, listener: () => void): void }[] = [];
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
      ends.push(await ws.closed.catch((error) => error));
    },
  );
  server.server.on("session", (session) => sessions.push(session));
  const { url, port } = await server.listening;
  return { server, url, port, seen, ends, sessions };
}

// A bare node:http2 client session, once the server's SETTINGS are in.
async function rawSession(port: number) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  await new Promise((resolve) => session.once("remoteSettings", resolve));
  return session;
}

// An extended CONNECT on `session`, with `headers` over the usual ones.
function rawConnect(
  session: http2.ClientHttp2Session,
  port: number,
  headers: Record<string, string | null> = {},
) {
  const all: Record<string, string | null> = {
    ":method": "CONNECT",
    ":protocol": "websocket",
    ":scheme": "http",
    ":path": "/",
    ":authority": `127.0.0.1:${port}`,
    "sec-websocket-version": "13",
    ...headers,
  };
  const sent: Record<string, string> = {};
  for (const [name, value] of Object.entries(all)) {
    if (value !== null) sent[name] = value; // null: left out
  }
  const stream = session.request(sent);
  stream.on("error", () => {});
  const response = new Promise<http2.IncomingHttpHeaders>((resolve) =>
    stream.once("response", resolve)
  );
  return { stream, response };
}

// A bare node:http2 server whose extended CONNECTs upgradeStream echoes,
// unless `first` has answered the stream itself; it counts its sessions.
async function bareServer(
  settings: http2.Settings,
  first: (stream: http2.ServerHttp2Stream) => boolean = () => false,
) {
  const server = http2.createServer({
    settings: { enableConnectProtocol: true, ...settings },
  });
  const counts = { sessions: 0 };
  server.on("session", () => counts.sessions++);
  server.on("stream", async (stream: http2.ServerHttp2Stream, headers) => {
    if (first(stream)) return;
    const ws = upgradeStream(stream, headers);
    try {
      const { readable, writable } = await ws.opened;
      await readable.pipeTo(writable);
    } catch {
      // closed says how
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  const close = () => new Promise((resolve) => server.close(resolve));
  return { port, counts, close };
}

// A client's masked frame (mask 0: the payload goes as it is).
function masked(opcode: number, payload: Uint8Array): Uint8Array {
  if (payload.length > 125) throw new RangeError("short frames only");
  const frame = new Uint8Array(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  frame.set(payload, 6);
  return frame;
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

test("malformed extended CONNECTs are refused, and the session goes on", async () => {
  const { server, port, ends } = await echoServer({ http2: true });
  const session = await rawSession(port);
  const status = async (headers: Record<string, string | null>) => {
    const { response } = rawConnect(session, port, headers);
    return await response;
  };
  // RFC 9220 §3 (RFC 8441's rule over HTTP/3): an unknown :protocol, 501.
  assert.equal((await status({ ":protocol": "foo" }))[":status"], 501);
  // RFC 6455 §4.4 over HTTP/2: a 400 naming the version, as a 426 cannot be.
  const old = await status({ "sec-websocket-version": "8" });
  assert.equal(old[":status"], 400);
  assert.equal(old["sec-websocket-version"], "13");
  assert.equal(
    (await status({ "sec-websocket-version": null }))[":status"],
    400,
  );
  // A CONNECT without :protocol asks for a tunnel: this is no proxy.
  const tunnel = session.request({
    ":method": "CONNECT",
    ":authority": "example.com:443",
  });
  tunnel.on("error", () => {});
  const tunnelled = await new Promise<http2.IncomingHttpHeaders>((r) =>
    tunnel.once("response", r)
  );
  assert.equal(tunnelled[":status"], 400);
  // The session is still good for a WebSocket.
  const { stream, response } = rawConnect(session, port);
  assert.equal((await response)[":status"], 200);
  stream.close(http2.constants.NGHTTP2_CANCEL);
  await eventually(() => ends.length === 5, "every stream ended");
  const codes = ends.slice(0, 4).map((e) => (e as HandshakeError).code).sort();
  assert.deepEqual(codes, [
    "invalid_connect",
    "unsupported_protocol",
    "unsupported_version",
    "unsupported_version",
  ]);
  session.close();
  await server.close();
});

test("DATA before the response is refused with 400", async () => {
  const { server, port, ends } = await echoServer({
    http2: true,
    // The decision waits, so the early DATA is in when it is made.
    accept: async () => {
      await sleep(100);
      return true;
    },
  });
  const session = await rawSession(port);
  const { stream, response } = rawConnect(session, port);
  stream.write(masked(0x1, new TextEncoder().encode("too early")));
  assert.equal((await response)[":status"], 400);
  await eventually(() => ends.length === 1, "the handshake ended");
  assert.equal((ends[0] as HandshakeError).code, "invalid_connect");
  session.close();
  await server.close();
});

test("a peer's RST_STREAM closes the connection with 1006", async () => {
  const { server, port, ends } = await echoServer({ http2: true });
  const session = await rawSession(port);
  const { stream, response } = rawConnect(session, port);
  assert.equal((await response)[":status"], 200);
  stream.write(masked(0x1, new TextEncoder().encode("hi")));
  await new Promise((resolve) => stream.once("data", resolve));
  // RFC 8441 §5: a reset is RST_STREAM with CANCEL.
  stream.close(http2.constants.NGHTTP2_CANCEL);
  await eventually(() => ends.length === 1, "the server noticed");
  assert.ok(ends[0] instanceof WebSocketError);
  assert.equal(ends[0].closeCode, 1006);
  session.close();
  await server.close();
});

test("the close handshake ends the stream; a peer that never answers is reset", async () => {
  const closing = new Set<Promise<unknown>>();
  const server = serve({ http2: true, closeTimeout: 200 }, async (ws) => {
    await ws.opened;
    ws.close({ closeCode: 1000, reason: "bye" });
    const closed = ws.closed.catch((error) => error);
    closing.add(closed);
  });
  const { port } = await server.listening;
  const session = await rawSession(port);
  const outcome = (stream: http2.ClientHttp2Stream) =>
    new Promise<{ ended: boolean; rstCode: number }>((resolve) => {
      let ended = false;
      stream.on("end", () => (ended = true));
      stream.on("close", () => resolve({ ended, rstCode: stream.rstCode! }));
    });

  // A peer that answers the Close and ends its side: END_STREAM both ways
  // (RFC 8441 §5: "Orderly TCP-level closures are represented as END_STREAM
  // flags"), no reset.
  const polite = rawConnect(session, port);
  const politeEnd = outcome(polite.stream);
  polite.stream.on("data", () => {
    polite.stream.end(masked(0x8, new Uint8Array([0x03, 0xe8])));
  });
  polite.stream.resume();
  assert.deepEqual(await politeEnd, { ended: true, rstCode: 0 });

  // A peer that reads the Close and never answers it: after closeTimeout,
  // RST_STREAM with CANCEL.
  const started = performance.now();
  const silent = rawConnect(session, port);
  const silentEnd = outcome(silent.stream);
  silent.stream.resume();
  const { rstCode } = await silentEnd;
  assert.equal(rstCode, http2.constants.NGHTTP2_CANCEL);
  const took = performance.now() - started;
  assert.ok(took >= 150 && took < 2000, `reset after ${took} ms`);
  const [first, second] = await Promise.all(closing);
  assert.deepEqual(first, { closeCode: 1000, reason: "" });
  assert.ok(second instanceof WebSocketError);
  session.close();
  await server.close();
});

test("100 WebSockets share one session, and a stalled reader holds up no other", async () => {
  let flooded = 0;
  let sessions = 0;
  const server = serve({ http2: true }, async (ws, request) => {
    const { readable, writable } = await ws.opened.catch(() => ({}) as never);
    if (readable === undefined) return;
    if ((request as { url?: string }).url === "/flood") {
      // Writes until the reader's window and the stream's buffer are full.
      const writer = writable.getWriter();
      const chunk = new Uint8Array(64 * 1024);
      try {
        for (;;) {
          await writer.write(chunk);
          flooded++;
        }
      } catch {
        return;
      }
    }
    await readable.pipeTo(writable).catch(() => {});
  });
  server.server.on("session", () => sessions++);
  const { url } = await server.listening;
  const stalled = new WebSocketStream(new URL("/flood", url), {
    httpVersion: "2",
  });
  await stalled.opened;
  const others = Array.from(
    { length: 99 },
    () => new WebSocketStream(url, { httpVersion: "2" }),
  );
  await Promise.all(others.map((client) => client.opened));
  await sleep(200);
  const before = flooded;
  // Writes stop once the peer stops reading: a few chunks, not megabytes.
  assert.ok(before < 32, `${before} chunks of 64 KiB went out unread`);
  const started = performance.now();
  await Promise.all(others.map(async (client, i) => {
    const { readable, writable } = await client.opened;
    const writer = writable.getWriter();
    await writer.write(`message ${i}`);
    assert.equal((await readable.getReader().read()).value, `message ${i}`);
    writer.releaseLock();
  }));
  const took = performance.now() - started;
  assert.ok(took < 2000, `the others took ${took} ms`);
  assert.equal(flooded, before, "the stalled stream stayed stalled");
  assert.equal(sessions, 1);
  for (const client of [stalled, ...others]) client.close({ closeCode: 1000 });
  await Promise.all(
    [stalled, ...others].map((client) => client.closed.catch(() => {})),
  );
  await server.close();
});

test("the client's shared session closes with its last WebSocket", async () => {
  const { server, url, sessions } = await echoServer({ http2: true });
  const clients = [1, 2, 3].map(() =>
    new WebSocketStream(url, { httpVersion: "2" })
  );
  await Promise.all(clients.map((client) => client.opened));
  assert.equal(sessions.length, 1);
  let closed = false;
  sessions[0].once("close", () => (closed = true));
  clients[0].close({ closeCode: 1000 });
  clients[1].close({ closeCode: 1000 });
  await Promise.all([clients[0].closed, clients[1].closed]);
  await sleep(50);
  assert.equal(closed, false, "one WebSocket still uses it");
  // A new WebSocket meanwhile joins the same session.
  const late = new WebSocketStream(url, { httpVersion: "2" });
  await late.opened;
  assert.equal(sessions.length, 1);
  clients[2].close({ closeCode: 1000 });
  late.close({ closeCode: 1000 });
  await Promise.all([clients[2].closed, late.closed]);
  await eventually(() => closed, "the session closed");
  await server.close();
});

test("examples/echo.ts --http2 serves the echo over HTTP/2 only", async () => {
  // The runtime that runs this file runs it.
  const run = "Deno" in globalThis ? ["run", "-A"] : [];
  const file = (path: string) => fileURLToPath(new URL(path, import.meta.url));
  const child = spawn(process.execPath, [
    ...run,
    file("../examples/echo.ts"),
    "--port",
    "0",
    "--http2",
    "--tls-cert",
    file("interop/test_cert.pem"),
    "--tls-key",
    file("interop/test_key.pem"),
  ], { stdio: ["ignore", "pipe", "inherit"] });
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (data: Uint8Array) => {
        out += new TextDecoder().decode(data);
        const match = /listening on (wss:\/\/\S+)\n/.exec(out);
        if (match) resolve(match[1]);
      });
      child.once("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const client = new WebSocketStream(url, { tls: TRUST, httpVersion: "2" });
    await roundTrip(client);
    client.close({ closeCode: 1000 });
    await client.closed;
    // No HTTP/1.1 on that port: ALPN offers h2 alone.
    const old = new WebSocketStream(url, { tls: TRUST });
    old.closed.catch(() => {});
    await assert.rejects(old.opened, WebSocketError);
  } finally {
    child.kill();
  }
});

test("serve({ http2, tls }) drops a connection that sends no request within handshakeTimeout", async () => {
  const { server, port } = await echoServer({
    tls: TLS,
    http2: true,
    handshakeTimeout: 300,
  });
  const closedAfter = async (alpn: string) => {
    const socket = tlsConnect({
      host: "127.0.0.1",
      port,
      ALPNProtocols: [alpn],
      rejectUnauthorized: false,
    });
    socket.on("error", () => {});
    // It reads (the server's SETTINGS, then the end), and sends nothing.
    socket.resume();
    const started = performance.now();
    await new Promise((resolve) => socket.once("close", resolve));
    return performance.now() - started;
  };
  // HTTP/1.1 and HTTP/2 alike.
  for (
    const took of await Promise.all([
      closedAfter("http/1.1"),
      closedAfter("h2"),
    ])
  ) {
    assert.ok(took >= 250 && took < 3000, `closed after ${took} ms`);
  }
  // Connections that did send a request are not dropped.
  const clients = [
    new WebSocketStream(`wss://127.0.0.1:${port}`, { tls: TRUST }),
    new WebSocketStream(`wss://127.0.0.1:${port}`, {
      tls: TRUST,
      httpVersion: "2",
    }),
  ];
  await Promise.all(clients.map((client) => client.opened));
  await sleep(600);
  await Promise.all(clients.map(roundTrip));
  for (const client of clients) client.close({ closeCode: 1000 });
  await server.close();
});

test("serve({ tls }) refuses a certificate or key that would fail every handshake", () => {
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  for (
    const tls of [
      { cert: "nope", key: TLS.key },
      { cert: TLS.cert, key: "nope" },
      { cert: TLS.key, key: TLS.key },
      { cert: text(TLS.cert), key: text(TLS.cert) },
    ]
  ) {
    assert.throws(() => serve({ tls }, () => {}), TypeError);
  }
});

test("serve({ http2 }) answers a plain HTTP/2 request with 405 and goes on", async () => {
  const { server, port, url } = await echoServer({ http2: true });
  const session = await rawSession(port);
  // Its cap on streams per connection, one per WebSocket.
  assert.equal(session.remoteSettings.maxConcurrentStreams, 1000);
  const request = session.request({ ":path": "/" });
  request.on("error", () => {});
  const response = await new Promise<http2.IncomingHttpHeaders>((resolve) =>
    request.once("response", resolve)
  );
  assert.equal(response[":status"], 405);
  assert.equal(response.allow, "CONNECT");
  request.resume();
  session.close();
  const client = new WebSocketStream(url, { httpVersion: "2" });
  await roundTrip(client);
  client.close({ closeCode: 1000 });
  await client.closed;
  await server.close();
});

test("a hook that throws, or accepts a CONNECT with a 2xx, gets the client a 500", async () => {
  const cases = [
    { http2: true, status: 200, expected: 500 },
    { http2: true, status: 0, expected: 500 },
    { http2: false, status: 0, expected: 500 },
    // Over HTTP/1.1 a 200 is a refusal like any other; over HTTP/2 it would
    // open the tunnel, and the client would read its body as frames.
    { http2: false, status: 200, expected: 200 },
  ];
  for (const { http2, status, expected } of cases) {
    const { server, url, ends } = await echoServer({
      http2,
      accept: () => {
        if (status === 0) throw new Error("db down");
        return new Response("fine", { status });
      },
    });
    const client = new WebSocketStream(url, {
      httpVersion: http2 ? "2" : "1.1",
    });
    client.closed.catch(() => {});
    await assert.rejects(
      client.opened,
      (error) => error instanceof HandshakeError && error.status === expected,
    );
    await eventually(() => ends.length === 1, "the server's side ended");
    assert.ok(ends[0] instanceof Error);
    await server.close();
  }
});

test("an HTTP/2 refusal keeps every Set-Cookie", async () => {
  const { server, port } = await echoServer({
    http2: true,
    accept: () => {
      const headers = new Headers();
      headers.append("set-cookie", "a=1");
      headers.append("set-cookie", "b=2");
      return new Response("log in", { status: 401, headers });
    },
  });
  const session = await rawSession(port);
  const { stream, response } = rawConnect(session, port);
  const headers = await response;
  assert.equal(headers[":status"], 401);
  assert.deepEqual(headers["set-cookie"], ["a=1", "b=2"]);
  stream.resume();
  session.close();
  await server.close();
});

test("an aborted signal rejects opened with its reason over HTTP/2, and connects nowhere", async () => {
  const { server, url, sessions } = await echoServer({ http2: true });
  const controller = new AbortController();
  controller.abort(new Error("never mind"));
  const client = new WebSocketStream(url, {
    httpVersion: "2",
    signal: controller.signal,
  });
  client.closed.catch(() => {});
  await assert.rejects(client.opened, /never mind/);
  await sleep(50);
  assert.equal(sessions.length, 0);
  await server.close();
});

test("a handshake timeout before the server speaks drops the HTTP/2 connection", async () => {
  // A server that accepts and says nothing.
  const net = await import("node:net");
  let closed = false;
  const silent = net.createServer((socket) => {
    socket.on("error", () => {});
    socket.on("close", () => (closed = true));
    socket.resume(); // to see the end
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const { port } = silent.address() as { port: number };
  const client = new WebSocketStream(`ws://127.0.0.1:${port}`, {
    httpVersion: "2",
    handshakeTimeout: 200,
  });
  client.closed.catch(() => {});
  await assert.rejects(
    client.opened,
    (error) =>
      error instanceof WebSocketError && error.code === "handshake_timeout",
  );
  await eventually(() => closed, "the connection closed");
  await new Promise((resolve) => silent.close(resolve));
});

test("serve({ http2 }) closes a connection left with no stream open", async () => {
  const { server, port, sessions } = await echoServer({ http2: true });
  const session = await rawSession(port);
  const request = session.request({ ":path": "/" });
  request.on("error", () => {});
  request.resume();
  await new Promise((resolve) => request.once("close", resolve));
  let gone = false;
  session.once("close", () => (gone = true));
  await eventually(() => sessions.length === 1, "the server's session");
  await eventually(() => gone, "the server closed the connection", 8000);
  await server.close();
});

test("the client opens another session when the server's stream limit is reached", async () => {
  const { port, counts, close } = await bareServer({
    maxConcurrentStreams: 5,
  });
  const clients = Array.from(
    { length: 12 },
    () =>
      new WebSocketStream(`ws://127.0.0.1:${port}`, {
        httpVersion: "2",
        handshakeTimeout: 3000,
      }),
  );
  await Promise.all(clients.map(roundTrip));
  assert.equal(counts.sessions, 3);
  for (const client of clients) client.close({ closeCode: 1000 });
  await Promise.all(clients.map((client) => client.closed));
  await close();
});

test("serve({ http2, tls }) closes an HTTP/1.1 keep-alive connection 5 s after its last response", async () => {
  const { server, port } = await echoServer({
    tls: TLS,
    http2: true,
    request: (_request, response) => response.end("a page"),
  });
  const socket = tlsConnect({
    host: "127.0.0.1",
    port,
    ALPNProtocols: ["http/1.1"],
    rejectUnauthorized: false,
  });
  socket.on("error", () => {});
  let received = "";
  socket.on("data", (data: Uint8Array) => {
    received += new TextDecoder().decode(data);
  });
  const closed = new Promise((resolve) => socket.once("close", resolve));
  socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  await eventually(() => received.includes("a page"), "the response");
  const answered = performance.now();
  await closed;
  const took = performance.now() - answered;
  assert.ok(took > 4000 && took < 8000, `closed after ${took} ms`);
  await server.close();
});

test("serve({ tls }) refuses a chain with a certificate that does not parse", () => {
  const cert = new TextDecoder().decode(TLS.cert);
  const broken = cert +
    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
  assert.throws(
    () => serve({ tls: { cert: broken, key: TLS.key } }, () => {}),
    TypeError,
  );
});

test("a server that allows no stream yet holds the client to one connection", async () => {
  const { port, counts, close } = await bareServer({
    maxConcurrentStreams: 0,
  });
  const client = new WebSocketStream(`ws://127.0.0.1:${port}`, {
    httpVersion: "2",
    handshakeTimeout: 500,
  });
  client.closed.catch(() => {});
  await assert.rejects(client.opened, WebSocketError);
  assert.equal(counts.sessions, 1);
  await close();
});

test("a stream refused as its server goes away is retried on a new connection", async () => {
  // Each connection takes one stream, then goes away, refusing the rest.
  const { port, close } = await bareServer({}, (stream) => {
    const session = stream.session as unknown as { served?: boolean };
    if (!session.served) {
      session.served = true; // its first stream is served
      return false;
    }
    stream.on("error", () => {}); // its own reset is an error to it
    stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    return true;
  });
  const one = new WebSocketStream(`ws://127.0.0.1:${port}`, {
    httpVersion: "2",
  });
  await one.opened;
  const two = new WebSocketStream(`ws://127.0.0.1:${port}`, {
    httpVersion: "2",
  });
  await roundTrip(two);
  for (const client of [one, two]) client.close({ closeCode: 1000 });
  await Promise.all([one.closed, two.closed]);
  await close();
});
