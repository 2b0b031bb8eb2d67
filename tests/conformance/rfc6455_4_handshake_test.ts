// RFC 6455 §4, the opening handshake, on real sockets: hand-written
// requests to our node:http upgrade path (§4.2), and hand-written
// responses to our WebSocketStream (§4.1). Every refusal must end the TCP
// connection; every acceptance must be followed by working frames.

import assert from "node:assert/strict";
import { createServer as createHttpServer } from "node:http";
import net from "node:net";
import { test } from "node:test";
import { type NodeUpgradeOptions, upgrade } from "../../src/adapters/node.ts";
import { WebSocketStream } from "../../src/client.ts";
import { HandshakeError } from "../../src/handshake.ts";
import {
  acceptFor,
  encode,
  headerOf,
  OP,
  Peer,
  readHead,
  T,
  text,
} from "./_peer.ts";

// §1.3 and §4.2.2's worked example.
const RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ==";
const RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

test("§4.2.2 acceptFor (the peer's) gives the RFC's accept value", () => {
  assert.equal(acceptFor(RFC_KEY), RFC_ACCEPT);
});

// ---------------------------------------------------------------------------
// §4.2: our server, sent requests by hand

interface ServerCase {
  name: string;
  /** The request head's lines, without the final empty line; HOST is replaced. */
  request: string[];
  options?: NodeUpgradeOptions;
  /** The status expected. */
  status: number;
  /** Headers the response must have (a value) or not have (null). */
  headers?: Record<string, string | null>;
}

const GOOD = [
  "GET /chat HTTP/1.1",
  "Host: HOST",
  "Upgrade: websocket",
  "Connection: Upgrade",
  `Sec-WebSocket-Key: ${RFC_KEY}`,
  "Sec-WebSocket-Version: 13",
];

/** GOOD with header `name` replaced (or removed, with null). */
function withHeader(name: string, value: string | null): string[] {
  const lines = GOOD.filter((line) =>
    !line.toLowerCase().startsWith(`${name.toLowerCase()}:`)
  );
  return value === null ? lines : [...lines, `${name}: ${value}`];
}

const serverCases: ServerCase[] = [
  {
    name:
      "§4.2.2 answers a valid request with 101 and the accept value for its key",
    request: GOOD,
    status: 101,
    headers: {
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-accept": RFC_ACCEPT,
      "sec-websocket-protocol": null,
      "sec-websocket-extensions": null,
    },
  },
  {
    name:
      "§4.2.1 reads header names and the Upgrade and Connection tokens case-insensitively",
    request: [
      "GET /chat HTTP/1.1",
      "host: HOST",
      "UPGRADE: WebSocket",
      "connection: keep-alive, UPGRADE",
      `sec-websocket-key: ${RFC_KEY}`,
      "SEC-WEBSOCKET-VERSION: 13",
    ],
    status: 101,
    headers: { "sec-websocket-accept": RFC_ACCEPT },
  },
  {
    name: "§4.2.1 item 3 refuses an Upgrade header without websocket (400)",
    request: withHeader("Upgrade", "h2c"),
    status: 400,
  },
  // (A request without "Connection: Upgrade", §4.2.1 item 4, never
  // reaches the upgrade path: node:http hands it to the request handler.)
  {
    name: "§4.2.1 item 5 refuses a request without Sec-WebSocket-Key (400)",
    request: withHeader("Sec-WebSocket-Key", null),
    status: 400,
  },
  {
    name: "§4.2.1 item 5 refuses a key that is not base64 (400)",
    request: withHeader("Sec-WebSocket-Key", "not a nonce!"),
    status: 400,
  },
  {
    name: "§4.2.1 item 5 refuses a key that decodes to 15 bytes, not 16 (400)",
    request: withHeader("Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA"),
    status: 400,
  },
  {
    name: "§4.2.2 answers version 8 with 426 and Sec-WebSocket-Version: 13",
    request: withHeader("Sec-WebSocket-Version", "8"),
    status: 426,
    headers: { "sec-websocket-version": "13" },
  },
  {
    name: "§4.2.1 item 6 refuses a request without Sec-WebSocket-Version",
    request: withHeader("Sec-WebSocket-Version", null),
    status: 426,
    headers: { "sec-websocket-version": "13" },
  },
  {
    name: "§4.2.1 item 1 refuses a method other than GET",
    request: ["POST /chat HTTP/1.1", ...GOOD.slice(1)],
    status: 405,
  },
  {
    name: "§4.2.1 item 1 refuses HTTP/1.0 (400)",
    request: ["GET /chat HTTP/1.0", ...GOOD.slice(1)],
    status: 400,
  },
  {
    name: "§10.2 refuses an Origin from another site by default (403)",
    request: withHeader("Origin", "http://evil.example"),
    status: 403,
  },
  {
    name: "§10.2 accepts an Origin that is the Host's own",
    request: withHeader("Origin", "http://HOST"),
    status: 101,
  },
  {
    name:
      "§4.2.2 picks the client's first offered subprotocol the server speaks",
    request: withHeader("Sec-WebSocket-Protocol", "chat, superchat"),
    options: { protocols: ["superchat", "chat"] },
    status: 101,
    headers: { "sec-websocket-protocol": "chat" },
  },
  {
    name: "§4.2.2 answers with no subprotocol when none offered is spoken",
    request: withHeader("Sec-WebSocket-Protocol", "a, b"),
    options: { protocols: ["c"] },
    status: 101,
    headers: { "sec-websocket-protocol": null },
  },
  {
    name: "§4.2.2 lists no extension the server did not agree to",
    request: withHeader("Sec-WebSocket-Extensions", "x-unknown; a=1, x-other"),
    status: 101,
    headers: { "sec-websocket-extensions": null },
  },
];

async function serve(options: NodeUpgradeOptions = {}) {
  const server = createHttpServer((_request, response) => {
    response.writeHead(426).end();
  });
  server.on("upgrade", (request, socket, head) => {
    const ws = upgrade(request, socket as never, head, options);
    ws.opened.then(({ readable, writable }) => readable.pipeTo(writable))
      .catch(() => {});
    ws.closed.catch(() => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    close: () => {
      server.closeAllConnections?.();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

for (const c of serverCases) {
  test(`[server] ${c.name}`, async () => {
    const server = await serve(c.options);
    const socket = net.connect({ host: "127.0.0.1", port: server.port });
    try {
      const host = `127.0.0.1:${server.port}`;
      socket.write(
        c.request.map((line) => line.replace("HOST", host)).join("\r\n") +
          "\r\n\r\n",
      );
      const { head, rest } = await readHead(socket);
      const status = Number(head.split(" ")[1]);
      assert.equal(status, c.status, head);
      for (const [name, value] of Object.entries(c.headers ?? {})) {
        assert.equal(headerOf(head, name), value, `${name} in\n${head}`);
      }
      const peer = new Peer(socket, "server", rest);
      socket.resume();
      if (status === 101) {
        // The connection works: a message comes back.
        await peer.send([text("after the handshake")]);
        assert.ok(await peer.until(() => peer.log.length >= 1, 5000));
        assert.deepEqual(peer.log, [T("after the handshake")]);
      } else {
        // A refusal ends the connection.
        assert.ok(await peer.until(() => peer.ended, 5000), "not closed");
      }
    } finally {
      socket.destroy();
      await server.close();
    }
  });
}

test("[server] §4.2 reads frames that arrive in the same write as the request", async () => {
  const server = await serve();
  const socket = net.connect({ host: "127.0.0.1", port: server.port });
  try {
    const request =
      GOOD.join("\r\n").replace("HOST", `127.0.0.1:${server.port}`) +
      "\r\n\r\n";
    socket.write(Buffer.concat([
      Buffer.from(request, "latin1"),
      encode(text("first"), true),
      encode(text("second"), true),
    ]));
    const { head, rest } = await readHead(socket);
    assert.match(head, /^HTTP\/1\.1 101 /);
    const peer = new Peer(socket, "server", rest);
    socket.resume();
    assert.ok(await peer.until(() => peer.log.length >= 2, 5000));
    assert.deepEqual(peer.log, [T("first"), T("second")]);
  } finally {
    socket.destroy();
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// §4.1: our client, answered by hand

interface ClientCase {
  name: string;
  /** The response head's lines; ACCEPT is replaced by the right value. */
  response: string[];
  protocols?: string[];
  /** The HandshakeError code expected, or null for a connection that opens. */
  fails: string | null;
  /** The protocol `opened` reports. */
  protocol?: string;
}

const OK = [
  "HTTP/1.1 101 Switching Protocols",
  "Upgrade: websocket",
  "Connection: Upgrade",
  "Sec-WebSocket-Accept: ACCEPT",
];

const clientCases: ClientCase[] = [
  { name: "§4.1 opens on a valid 101", response: OK, fails: null },
  {
    name: "§4.1 reads the response's names and tokens case-insensitively",
    response: [
      "HTTP/1.1 101 Whatever",
      "upgrade: WebSocket",
      "CONNECTION: upgrade",
      "sec-websocket-accept: ACCEPT",
    ],
    fails: null,
  },
  {
    name: "§4.1 step 1 fails on a status other than 101",
    response: ["HTTP/1.1 200 OK", "Content-Length: 0"],
    fails: "unexpected_status",
  },
  {
    name: "§4.1 step 2 fails on a 101 without Upgrade",
    response: OK.filter((l) => !l.startsWith("Upgrade")),
    fails: "invalid_upgrade",
  },
  {
    name: "§4.1 step 2 fails on an Upgrade that is not websocket",
    response: [...OK.filter((l) => !l.startsWith("Upgrade")), "Upgrade: h2c"],
    fails: "invalid_upgrade",
  },
  {
    name: "§4.1 step 3 fails on a 101 without Connection: Upgrade",
    response: OK.filter((l) => !l.startsWith("Connection")),
    fails: "invalid_connection",
  },
  {
    name: "§4.1 step 4 fails on a wrong Sec-WebSocket-Accept",
    response: [...OK.slice(0, 3), `Sec-WebSocket-Accept: ${RFC_ACCEPT}`],
    fails: "invalid_accept",
  },
  {
    name: "§4.1 step 4 fails on a missing Sec-WebSocket-Accept",
    response: OK.slice(0, 3),
    fails: "invalid_accept",
  },
  {
    name: "§4.1 step 5 fails on an extension it did not offer",
    response: [...OK, "Sec-WebSocket-Extensions: x-unknown"],
    fails: "unexpected_extension",
  },
  {
    name: "§4.1 step 6 fails on a subprotocol it did not offer",
    response: [...OK, "Sec-WebSocket-Protocol: other"],
    protocols: ["chat"],
    fails: "unexpected_protocol",
  },
  {
    name: "§4.1 step 6 opens with a subprotocol it offered",
    response: [...OK, "Sec-WebSocket-Protocol: chat"],
    protocols: ["superchat", "chat"],
    fails: null,
    protocol: "chat",
  },
];

/** A server that answers one handshake as told, and records the request. */
async function answer(response: (request: string) => string[]) {
  const server = net.createServer();
  const peer = new Promise<{ request: string; peer: Peer }>((resolve) => {
    server.once("connection", (socket) => {
      readHead(socket).then(({ head, rest }) => {
        const lines = response(head);
        socket.write(lines.join("\r\n") + "\r\n\r\n");
        const peer = new Peer(socket, "client", rest);
        socket.resume();
        resolve({ request: head, peer });
      }, () => {});
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    port,
    peer,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

const acceptOf = (request: string) =>
  acceptFor(headerOf(request, "sec-websocket-key") ?? "");

for (const c of clientCases) {
  test(`[client] ${c.name}`, async () => {
    const server = await answer((request) =>
      c.response.map((line) => line.replace("ACCEPT", acceptOf(request)))
    );
    const ws = new WebSocketStream(`ws://127.0.0.1:${server.port}/chat`, {
      protocols: c.protocols,
    });
    const { peer } = await server.peer;
    try {
      if (c.fails === null) {
        const opened = await ws.opened;
        assert.equal(opened.protocol, c.protocol ?? "");
        ws.close({ closeCode: 1000 });
        assert.ok(await peer.until(() => peer.ended, 5000));
        assert.deepEqual(peer.log, ["close 1000", "eof"]);
        assert.deepEqual(await ws.closed, { closeCode: 1000, reason: "" });
      } else {
        // §4.1: "the client MUST _Fail the WebSocket Connection_": no
        // frame is sent, and the TCP connection is closed.
        await assert.rejects(
          ws.opened,
          (error) => error instanceof HandshakeError && error.code === c.fails,
        );
        await assert.rejects(ws.closed);
        assert.ok(await peer.until(() => peer.ended, 5000), "not closed");
        assert.deepEqual(peer.log, ["eof"]);
      }
    } finally {
      (await server.peer).peer.destroy();
      await server.close();
    }
  });
}

test("[client] §4.1 sends a request as the RFC lays it out", async () => {
  const server = await answer((request) => [
    OK[0],
    ...OK.slice(1).map((line) => line.replace("ACCEPT", acceptOf(request))),
  ]);
  const ws = new WebSocketStream(`ws://127.0.0.1:${server.port}/chat?x=1`, {
    protocols: ["chat", "superchat"],
  });
  const { request, peer } = await server.peer;
  try {
    const lines = request.split("\r\n");
    // §4.1 items 2–10.
    assert.equal(lines[0], "GET /chat?x=1 HTTP/1.1");
    assert.equal(headerOf(request, "host"), `127.0.0.1:${server.port}`);
    assert.equal(headerOf(request, "upgrade")?.toLowerCase(), "websocket");
    assert.ok(/\bupgrade\b/i.test(headerOf(request, "connection") ?? ""));
    const key = headerOf(request, "sec-websocket-key") ?? "";
    assert.match(key, /^[A-Za-z0-9+/]{22}==$/);
    assert.equal(Buffer.from(key, "base64").length, 16);
    assert.equal(headerOf(request, "sec-websocket-version"), "13");
    assert.equal(
      headerOf(request, "sec-websocket-protocol"),
      "chat, superchat",
    );
    // §4.1 item 8: Origin is for browser clients.
    assert.equal(headerOf(request, "origin"), null);
    await ws.opened;
    // A fresh nonce for each connection.
    const second = await answer((r) =>
      OK.map((l) => l.replace("ACCEPT", acceptOf(r)))
    );
    const other = new WebSocketStream(`ws://127.0.0.1:${second.port}/`);
    const { request: request2, peer: peer2 } = await second.peer;
    assert.notEqual(headerOf(request2, "sec-websocket-key"), key);
    await other.opened;
    other.close();
    await peer2.until(() => peer2.ended, 5000);
    peer2.destroy();
    await second.close();
    ws.close();
    await peer.until(() => peer.ended, 5000);
  } finally {
    peer.destroy();
    await server.close();
  }
});

test("[client] §4.1 reads frames that arrive in the same write as the 101", async () => {
  const raw = net.createServer((socket) => {
    readHead(socket).then(({ head }) => {
      socket.write(Buffer.concat([
        Buffer.from(
          OK.map((l) => l.replace("ACCEPT", acceptOf(head))).join("\r\n") +
            "\r\n\r\n",
          "latin1",
        ),
        encode(text("right behind"), false),
        encode(
          { opcode: OP.close, payload: new Uint8Array([0x03, 0xe8]) },
          false,
        ),
      ]));
      socket.resume();
      socket.on("data", () => socket.end());
      socket.on("error", () => {});
    }, () => {});
  });
  await new Promise<void>((resolve) => raw.listen(0, "127.0.0.1", resolve));
  const { port } = raw.address() as net.AddressInfo;
  try {
    const ws = new WebSocketStream(`ws://127.0.0.1:${port}/`);
    const { readable } = await ws.opened;
    const messages: unknown[] = [];
    for await (const message of readable) messages.push(message);
    assert.deepEqual(messages, ["right behind"]);
    assert.deepEqual(await ws.closed, { closeCode: 1000, reason: "" });
  } finally {
    await new Promise<void>((resolve) => raw.close(() => resolve()));
  }
});
