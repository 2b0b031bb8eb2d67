// Interop with Python's websockets (Debian's python3-websockets, under
// /usr/bin/python3), the peer in tests/interop/peer.py: our node:http
// server against its client, and our client against its server, on
// whichever runtime runs this file. Every message is checked byte for byte
// on both sides; see tests/interop/payload.js for what is exchanged.
//
// Install the peer with tests/interop/install.sh; without it these tests
// fail, unless SKIP_INTEROP=1 skips them.

import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { WebSocketError } from "../src/errors.ts";
import {
  answer,
  call,
  type Connection,
  echoOnce,
  expectedMessages,
  interopTest,
  missingPythonWebsockets,
  pythonPeer,
  pythonResult,
  type SideReport,
  startServer,
  TLS_CERT,
  TLS_KEY,
} from "./_interop.ts";

const missing = missingPythonWebsockets();

/** Checks the messages a side received against what the other side sent. */
function assertReceived(
  side: string,
  received: unknown,
  expected: ReturnType<typeof expectedMessages>,
): void {
  assert.ok(Array.isArray(received), `${side}: no list of received messages`);
  const got = (received as Record<string, unknown>[]).map((
    { name, type, size, sha256, ok },
  ) => ({ name, type, size, sha256, ok }));
  assert.deepEqual(
    got,
    expected.map((m) => ({ ...m, ok: true })),
    `${side} received other messages than were sent`,
  );
}

function assertOurSide(report: SideReport): void {
  assert.equal(report.pong, true, "our ping() resolved");
  assert.equal(
    report.midMessagePong,
    true,
    "our ping() between two fragments resolved",
  );
  assert.equal(report.readableEnded, true, "our readable ended after close");
}

for (const tls of [false, true]) {
  interopTest(
    `python websockets client ⇄ our ${
      tls ? "node:https server over TLS (wss://)" : "node:http server"
    }: text and binary of 0 B to 16 MiB, fragments, pings, close 4000`,
    { missing },
    async (scope) => {
      const server = await startServer(scope, {}, { tls });
      const peer = pythonPeer(
        scope,
        "call",
        server.wsUrl("/exchange"),
        ...(tls ? [TLS_CERT] : []),
      );
      const { ws, path } = await server.nextConnection();
      assert.equal(path, "/exchange");
      const [ours, theirs] = await Promise.all([
        answer(ws, { callerFragments: true }),
        pythonResult(peer),
      ]);
      assert.equal(theirs.error, undefined, String(theirs.error));
      // Python offered permessage-deflate; this server is not configured for
      // it (interop_python_deflate_test.ts covers it).
      assert.deepEqual(theirs.extensions, []);
      assert.equal((await ws.opened).extensions, "");

      assertReceived(
        "our server",
        ours.received,
        expectedMessages(1, true, false),
      );
      assertReceived(
        "python",
        theirs.received,
        expectedMessages(2, true, true),
      );
      assertOurSide(ours);
      assert.equal(theirs.pong, true, "python's ping was answered");
      assert.equal(
        theirs.mid_message_pong,
        true,
        "python's ping between two fragments was answered",
      );
      // Python closed with 4000 and a reason: we report both; our answer
      // echoes the code (RFC 6455 §5.5.1), which python reports.
      assert.deepEqual(ours.close, {
        closeCode: 4000,
        reason: "bye from python",
      });
      assert.deepEqual(theirs.close, { code: 4000, reason: "" });
      assert.equal((await peer.exited).code, 0);
    },
  );
}

interopTest(
  "python websockets client: our server closes with 1000 and a reason",
  { missing },
  async (scope) => {
    const server = await startServer(scope);
    const peer = pythonPeer(
      scope,
      "server-close",
      server.wsUrl("/server-close"),
    );
    const { ws } = await server.nextConnection();
    assert.equal(await echoOnce(ws), "hello");
    ws.close({ closeCode: 1000, reason: "server says bye" });
    const [closed, theirs] = await Promise.all([ws.closed, pythonResult(peer)]);
    assert.equal(theirs.error, undefined, String(theirs.error));
    assert.equal(theirs.echo, "hello");
    assert.equal(theirs.exception, "ConnectionClosedOK");
    assert.deepEqual(theirs.close, { code: 1000, reason: "server says bye" });
    // Python echoes the code (and, as it happens, the reason).
    assert.equal(closed.closeCode, 1000);
    assert.equal((await peer.exited).code, 0);
  },
);

interopTest(
  "python websockets client drops the TCP connection: our server's closed rejects with 1006",
  { missing },
  async (scope) => {
    const server = await startServer(scope);
    const peer = pythonPeer(scope, "abort", server.wsUrl("/abort"));
    const { ws } = await server.nextConnection();
    assert.equal(await echoOnce(ws), "hello");
    const theirs = await pythonResult(peer);
    assert.equal(theirs.error, undefined, String(theirs.error));
    assert.equal(theirs.aborted, true);
    await assert.rejects(
      ws.closed,
      (error: unknown) =>
        error instanceof WebSocketError && error.closeCode === 1006,
    );
    // The writable is errored too: nothing more can be sent.
    const { writable } = await ws.opened;
    await assert.rejects(writable.getWriter().write("late"));
  },
);

const CLIENT = fileURLToPath(new URL("../src/client.ts", import.meta.url));
const clientMissing = existsSync(CLIENT)
  ? null
  : "src/client.ts not yet available";

for (const tls of [false, true]) {
  interopTest(
    `our client ⇄ python websockets server${
      tls ? " over TLS (wss://)" : ""
    }: text and binary of 0 B to 16 MiB, fragments, pings, close 4000`,
    // Skipped (not failed) while the client does not exist.
    { missing, unavailable: clientMissing },
    async (scope) => {
      // Loaded by URL so that this file type-checks and runs without it.
      const { WebSocketStream } = await import(
        new URL("../src/client.ts", import.meta.url).href
      ) as {
        WebSocketStream: new (
          url: string,
          options?: { tls?: { ca?: string } },
        ) => Connection;
      };
      const peer = pythonPeer(
        scope,
        "answer",
        ...(tls ? [TLS_CERT, TLS_KEY] : []),
      );
      const [, port] = await peer.line(/^LISTENING (\d+)$/);
      const ws = new WebSocketStream(
        `${tls ? "wss" : "ws"}://127.0.0.1:${port}/exchange`,
        // The self-signed certificate, trusted as its own authority.
        tls ? { tls: { ca: readFileSync(TLS_CERT, "utf8") } } : {},
      );
      scope.defer(() => ws.close());
      const [ours, theirs] = await Promise.all([
        call(ws, "bye from streamsocket"),
        pythonResult(peer),
      ]);
      assert.equal(theirs.error, undefined, String(theirs.error));
      assert.deepEqual(theirs.extensions, []);

      assertReceived(
        "python",
        theirs.received,
        expectedMessages(1, true, false),
      );
      assertReceived(
        "our client",
        ours.received,
        expectedMessages(2, true, true),
      );
      assertOurSide(ours);
      assert.equal(theirs.pong, true, "python's ping was answered");
      assert.equal(
        theirs.mid_message_pong,
        true,
        "python's ping between two fragments was answered",
      );
      assert.deepEqual(theirs.close, {
        code: 4000,
        reason: "bye from streamsocket",
      });
      // Python echoes the code and the reason.
      assert.equal(ours.close?.closeCode, 4000);
      assert.equal((await peer.exited).code, 0);
    },
  );
}
