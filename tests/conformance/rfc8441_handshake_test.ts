// RFC 8441, WebSockets over HTTP/2: the extended CONNECT that replaces
// RFC 6455's upgrade (§3, §4, §5), on real loopback HTTP/2 connections:
// hand-written requests to our node:http2 server (upgradeStream), and
// hand-written answers to our WebSocketStream with httpVersion "2". Every
// refusal must end the stream; every acceptance must be followed by
// working frames. (The frames themselves, and how a connection over a
// stream ends, are the other case files' "h2" runs; see _peer.ts.)

import assert from "node:assert/strict";
import http2 from "node:http2";
import type net from "node:net";
import { test } from "node:test";
import {
  type NodeHttp2Stream,
  upgradeStream,
} from "../../src/adapters/node_http2.ts";
import type { NodeUpgradeOptions } from "../../src/adapters/node.ts";
import { WebSocketStream } from "../../src/client.ts";
import { WebSocketError } from "../../src/errors.ts";
import { HandshakeError } from "../../src/handshake.ts";
import {
  assertClosedInOrder,
  Peer,
  remoteSettingsOf,
  responseOf,
  T,
  text,
} from "./_peer.ts";

const SETTINGS = { enableConnectProtocol: true };

/** A cleartext HTTP/2 server, closed with its sessions. */
async function h2Listen(
  onStream: (
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
  ) => void,
  settings: http2.Settings = SETTINGS,
) {
  const server = http2.createServer({ settings });
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("error", () => {});
    session.on("close", () => sessions.delete(session));
  });
  server.on("stream", onStream);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: async () => {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// ---------------------------------------------------------------------------
// Our server, sent extended CONNECTs by hand

interface ServerCase {
  name: string;
  /** The request's headers; AUTHORITY is replaced by the server's. */
  request: Record<string, string>;
  options?: NodeUpgradeOptions;
  status: number;
  /** Headers the response must have (a value) or not have (null). */
  headers?: Record<string, string | null>;
}

const GOOD: Record<string, string> = {
  ":method": "CONNECT",
  ":protocol": "websocket",
  ":scheme": "http",
  ":path": "/chat",
  ":authority": "AUTHORITY",
  "sec-websocket-version": "13",
};

/** GOOD with header `name` replaced (or removed, with null). */
function withHeader(
  name: string,
  value: string | null,
): Record<string, string> {
  const { [name]: _, ...rest } = GOOD;
  return value === null ? rest : { ...rest, [name]: value };
}

const serverCases: ServerCase[] = [
  {
    name:
      "§5 answers an extended CONNECT with 200, without Sec-WebSocket-Accept",
    request: GOOD,
    status: 200,
    // §5: the key's processing "has been superseded by the :protocol
    // pseudo-header field"; HTTP/2 has no Upgrade or Connection.
    headers: {
      "sec-websocket-accept": null,
      "sec-websocket-protocol": null,
      "sec-websocket-extensions": null,
    },
  },
  {
    name:
      "§5 ignores a Sec-WebSocket-Key (superseded by :protocol), and sends no accept",
    request: { ...GOOD, "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
    status: 200,
    headers: { "sec-websocket-accept": null },
  },
  {
    name:
      "§5 refuses a CONNECT without Sec-WebSocket-Version (400, Sec-WebSocket-Version: 13)",
    request: withHeader("sec-websocket-version", null),
    status: 400,
    headers: { "sec-websocket-version": "13" },
  },
  {
    name: "§5 refuses Sec-WebSocket-Version 8 (400, Sec-WebSocket-Version: 13)",
    request: withHeader("sec-websocket-version", "8"),
    status: 400,
    headers: { "sec-websocket-version": "13" },
  },
  {
    name: "§5 refuses a :protocol other than websocket (501)",
    request: withHeader(":protocol", "not-websocket"),
    status: 501,
  },
  {
    name: "§4 refuses a CONNECT without :protocol, a plain tunnel (400)",
    // RFC 9113 §8.5: a plain CONNECT has only :method and :authority.
    request: { ":method": "CONNECT", ":authority": "AUTHORITY" },
    status: 400,
  },
  {
    name: "§10.2 (RFC 6455) refuses an Origin from another site (403)",
    request: withHeader("origin", "http://evil.example"),
    status: 403,
  },
  {
    name: "§10.2 (RFC 6455) accepts an Origin that is the :authority's own",
    request: withHeader("origin", "http://AUTHORITY"),
    status: 200,
  },
  {
    name: "§5 picks the client's first offered subprotocol the server speaks",
    request: withHeader("sec-websocket-protocol", "chat, superchat"),
    options: { protocols: ["superchat", "chat"] },
    status: 200,
    headers: { "sec-websocket-protocol": "chat" },
  },
  {
    name: "§5 (RFC 7692) agrees to permessage-deflate in the 200",
    request: withHeader("sec-websocket-extensions", "permessage-deflate"),
    options: { perMessageDeflate: true },
    status: 200,
    headers: { "sec-websocket-extensions": "permessage-deflate" },
  },
];

/** Our server: every CONNECT goes to upgradeStream, echoing. */
function serve(options: NodeUpgradeOptions = {}) {
  const seen: http2.IncomingHttpHeaders[] = [];
  const listening = h2Listen((stream, headers) => {
    seen.push(headers);
    if (headers[":method"] !== "CONNECT") {
      stream.respond({ ":status": 404 }, { endStream: true });
      return;
    }
    const ws = upgradeStream(stream as NodeHttp2Stream, headers, options);
    ws.opened.then(({ readable, writable }) => readable.pipeTo(writable))
      .catch(() => {});
    ws.closed.catch(() => {});
  });
  return listening.then((server) => ({ ...server, seen }));
}

/** A client session that may send extended CONNECTs. */
async function h2Connect(port: number) {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  // §3: only once the server's SETTINGS_ENABLE_CONNECT_PROTOCOL is in.
  const settings = await remoteSettingsOf(session);
  assert.equal(settings.enableConnectProtocol, true);
  return session;
}

for (const c of serverCases) {
  test(`[server, h2] RFC 8441 ${c.name}`, async () => {
    const server = await serve(c.options);
    const session = await h2Connect(server.port);
    try {
      const authority = `127.0.0.1:${server.port}`;
      const headers = Object.fromEntries(
        Object.entries(c.request).map((
          [name, value],
        ) => [name, value.replace("AUTHORITY", authority)]),
      );
      const stream = session.request(headers, { endStream: false });
      // Whatever comes after the response: frames, or a refusal's body and
      // the stream's end, listened for at once (on Deno, DATA may be
      // reported before the response, and the end with it).
      const body: Uint8Array[] = [];
      const peer = c.status === 200
        ? new Peer(stream, "server", new Uint8Array(0), "h2")
        : null;
      let ending: Promise<string> | null = null;
      if (peer === null) {
        stream.on("data", (chunk: Uint8Array) => body.push(chunk));
        ending = new Promise<string>((resolve) => {
          stream.on("end", () => {
            resolve("end");
            // As a client does once the refusal is read.
            stream.end();
          });
          stream.on("close", () => resolve(`reset ${stream.rstCode}`));
        });
      }
      const response = await responseOf(stream);
      assert.equal(response[":status"], c.status);
      for (const [name, value] of Object.entries(c.headers ?? {})) {
        assert.equal(response[name] ?? null, value, name);
      }
      assert.equal(server.seen[0][":method"], "CONNECT");
      if (peer !== null) {
        // The stream is the connection: a message comes back.
        await peer.send([text("after the handshake")]);
        assert.ok(await peer.until(() => peer.log.length >= 1, 5000));
        assert.deepEqual(peer.log, [T("after the handshake")]);
        return;
      }
      // A refusal ends the stream, in order (END_STREAM, not RST_STREAM).
      assert.equal(await ending, "end");
      assert.ok(Buffer.concat(body).length > 0, "a refusal has a body");
    } finally {
      session.destroy();
      await server.close();
    }
  });
}

// ---------------------------------------------------------------------------
// Our client, answered by hand

/** A peer server that answers one extended CONNECT with `respond`. */
async function answer(
  respond: (
    stream: http2.ServerHttp2Stream,
    headers: http2.IncomingHttpHeaders,
  ) => void,
  settings?: http2.Settings,
) {
  let resolveStream!: (
    value: {
      stream: http2.ServerHttp2Stream;
      headers: http2.IncomingHttpHeaders;
    },
  ) => void;
  const accepted = new Promise<
    { stream: http2.ServerHttp2Stream; headers: http2.IncomingHttpHeaders }
  >((resolve) => resolveStream = resolve);
  const server = await h2Listen((stream, headers) => {
    stream.on("error", () => {});
    respond(stream, headers);
    resolveStream({ stream, headers });
  }, settings);
  return { ...server, accepted };
}

test(
  "[client, h2] RFC 8441 §4, §5 sends an extended CONNECT as the RFC lays it out",
  async () => {
    let peer!: Peer;
    const server = await answer((stream) => {
      stream.respond({ ":status": 200 });
      peer = new Peer(stream, "client", new Uint8Array(0), "h2");
    });
    const ws = new WebSocketStream(`ws://127.0.0.1:${server.port}/chat?x=1`, {
      httpVersion: "2",
      protocols: ["chat", "superchat"],
    });
    try {
      const { headers } = await server.accepted;
      // §4: :method CONNECT, :protocol, and (unlike a plain CONNECT) :scheme
      // and :path; §5: :scheme http for ws:, the Sec-WebSocket-Version and
      // -Protocol headers of RFC 6455, no key, Upgrade, Connection or Host.
      assert.equal(headers[":method"], "CONNECT");
      assert.equal(headers[":protocol"], "websocket");
      assert.equal(headers[":scheme"], "http");
      assert.equal(headers[":path"], "/chat?x=1");
      assert.equal(headers[":authority"], `127.0.0.1:${server.port}`);
      assert.equal(headers["sec-websocket-version"], "13");
      assert.equal(headers["sec-websocket-protocol"], "chat, superchat");
      for (
        const name of ["sec-websocket-key", "upgrade", "connection", "host"]
      ) {
        assert.equal(headers[name], undefined, name);
      }
      // §4.1 item 8 (RFC 6455): Origin is for browser clients.
      assert.equal(headers.origin, undefined);
      const opened = await ws.opened;
      assert.equal(opened.protocol, "");
      ws.close({ closeCode: 1000 });
      assert.ok(await peer.until(() => peer.ended, 5000));
      assert.deepEqual(peer.log, ["close 1000", "eof"]);
      await assertClosedInOrder(peer);
      assert.deepEqual(await ws.closed, { closeCode: 1000, reason: "" });
    } finally {
      await server.close();
    }
  },
);

interface ClientCase {
  name: string;
  /** The response headers. */
  response: http2.OutgoingHttpHeaders;
  protocols?: string[];
  /** The HandshakeError code expected, or null for a connection that opens. */
  fails: string | null;
  protocol?: string;
}

const clientCases: ClientCase[] = [
  { name: "§5 opens on a 200", response: { ":status": 200 }, fails: null },
  {
    name: "§5 opens with a subprotocol it offered",
    response: { ":status": 200, "sec-websocket-protocol": "chat" },
    protocols: ["superchat", "chat"],
    fails: null,
    protocol: "chat",
  },
  ...[300, 400, 404, 501].map((status): ClientCase => ({
    name: `§5 fails on :status ${status}, not 2xx`,
    response: { ":status": status },
    fails: "unexpected_status",
  })),
  {
    name: "§5 (RFC 6455 §4.1) fails on a subprotocol it did not offer",
    response: { ":status": 200, "sec-websocket-protocol": "other" },
    protocols: ["chat"],
    fails: "unexpected_protocol",
  },
  {
    name: "§5 (RFC 6455 §4.1) fails on an extension it did not offer",
    response: { ":status": 200, "sec-websocket-extensions": "x-unknown" },
    fails: "unexpected_extension",
  },
];

for (const c of clientCases) {
  test(`[client, h2] RFC 8441 ${c.name}`, async () => {
    let peer!: Peer;
    const server = await answer((stream) => {
      // A refusal carries a body, as a server's usually does: the client
      // must still let its session close.
      const refusal = Number(c.response[":status"]) >= 300;
      stream.respond(c.response);
      if (refusal) stream.end("refused\n");
      peer = new Peer(stream, "client", new Uint8Array(0), "h2");
    });
    const ws = new WebSocketStream(`ws://127.0.0.1:${server.port}/`, {
      httpVersion: "2",
      protocols: c.protocols,
    });
    try {
      await server.accepted;
      if (c.fails === null) {
        const opened = await ws.opened;
        assert.equal(opened.protocol, c.protocol ?? "");
        ws.close({ closeCode: 1000 });
        assert.ok(await peer.until(() => peer.ended, 5000));
        assert.deepEqual(peer.log, ["close 1000", "eof"]);
        await assertClosedInOrder(peer);
        assert.deepEqual(await ws.closed, { closeCode: 1000, reason: "" });
        return;
      }
      // RFC 6455 §4.1: "the client MUST _Fail the WebSocket Connection_":
      // no frame is sent, and the stream is closed.
      await assert.rejects(
        ws.opened,
        (error) => error instanceof HandshakeError && error.code === c.fails,
      );
      await assert.rejects(ws.closed);
      assert.ok(await peer.until(() => peer.ended, 5000), "not closed");
      assert.ok(
        peer.log.every((entry) => entry === "eof" || entry.startsWith("reset")),
        `frames sent: ${peer.log}`,
      );
    } finally {
      await server.close();
    }
  });
}

test("[client, h2] RFC 8441 §3 fails, sending no CONNECT, where the server does not offer it", async () => {
  let streams = 0;
  const server = await answer(() => streams++, {
    enableConnectProtocol: false,
  });
  try {
    const ws = new WebSocketStream(`ws://127.0.0.1:${server.port}/`, {
      httpVersion: "2",
    });
    await assert.rejects(
      ws.opened,
      (error) =>
        error instanceof WebSocketError &&
        /SETTINGS_ENABLE_CONNECT_PROTOCOL/.test(error.message),
    );
    assert.equal(streams, 0);
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// §5: "RST exceptions are represented with the RST_STREAM frame ... with
// the CANCEL error code": where a TCP connection would be dropped, the
// stream is reset.

for (const role of ["server", "client"] as const) {
  test(`[${role}, h2] RFC 8441 §5 a closing that times out resets the stream (RST_STREAM CANCEL)`, async () => {
    // The peer sends a reserved opcode, reads our Close (and END_STREAM),
    // and never ends its side: once closeTimeout has passed, our endpoint
    // drops the connection, which over HTTP/2 is a reset.
    const closeTimeout = 200;
    let peer!: Peer;
    // Our client's `closed` (our server's is checked by the other files).
    let ours: Promise<unknown> | null = null;
    let close: () => Promise<void>;
    let session: http2.ClientHttp2Session | null = null;
    if (role === "server") {
      const server = await serve({ closeTimeout });
      close = server.close;
      session = await h2Connect(server.port);
      const stream = session.request({
        ...GOOD,
        ":authority": `127.0.0.1:${server.port}`,
      }, { endStream: false });
      peer = new Peer(stream, "server", new Uint8Array(0), "h2");
      assert.equal((await responseOf(stream))[":status"], 200);
    } else {
      const server = await answer((stream) => {
        stream.respond({ ":status": 200 });
        peer = new Peer(stream, "client", new Uint8Array(0), "h2");
      });
      close = server.close;
      const ws = new WebSocketStream(`ws://127.0.0.1:${server.port}/`, {
        httpVersion: "2",
        closeTimeout,
      });
      await ws.opened;
      ours = ws.closed;
      ws.closed.catch(() => {});
    }
    try {
      peer.hangs = true;
      const started = Date.now();
      await peer.send([{ opcode: 0x3 }]);
      // Our Close and END_STREAM at once, then nothing until the reset.
      let timer: ReturnType<typeof setTimeout> | undefined;
      const code = await Promise.race([
        peer.closed,
        new Promise((resolve) => {
          timer = setTimeout(resolve, 5000, "(timed out)");
        }),
      ]);
      clearTimeout(timer);
      const elapsed = Date.now() - started;
      assert.deepEqual(peer.log, ["close 1002", "eof"]);
      assert.equal(code, http2.constants.NGHTTP2_CANCEL);
      assert.ok(elapsed >= closeTimeout - 20, `reset after ${elapsed} ms`);
      if (ours !== null) {
        await assert.rejects(
          ours,
          (error) =>
            error instanceof WebSocketError && error.closeCode === 1002,
        );
      }
    } finally {
      session?.destroy();
      await close();
    }
  });
}
