// permessage-deflate against Python's websockets (Debian's
// python3-websockets, which offers and accepts it by default), both roles,
// with and without context takeover: the full exchange of
// tests/interop/payload.js (0 B to 16 MiB, fragments, pings between
// fragments, close 4000), every byte checked on both sides, compressed.
//
// Install the peer with tests/interop/install.sh; without it these tests
// fail, unless SKIP_INTEROP=1 skips them.

import assert from "node:assert/strict";
import { WebSocketStream } from "../src/client.ts";
import type { PerMessageDeflateOptions } from "../src/permessage_deflate.ts";
import {
  answer,
  call,
  expectedMessages,
  interopTest,
  missingPythonWebsockets,
  pythonPeer,
  pythonResult,
  type SideReport,
  startServer,
} from "./_interop.ts";

const missing = missingPythonWebsockets();

const LIMIT = 64 * 1024 * 1024;

const CONFIGS: {
  name: string;
  options: PerMessageDeflateOptions;
  // What our server answers Python's offer
  // ("permessage-deflate; client_max_window_bits").
  serverAgrees: string;
  // What Python's server answers our offer (it limits both windows to 12).
  clientAgrees: string;
}[] = [
  {
    name: "context takeover",
    options: {},
    serverAgrees: "permessage-deflate",
    clientAgrees:
      "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12",
  },
  {
    name: "no context takeover",
    options: { serverNoContextTakeover: true, clientNoContextTakeover: true },
    serverAgrees:
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    clientAgrees:
      "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12",
  },
];

/** What a side received, as the expected list of `expectedMessages` reads. */
function names(received: unknown): unknown[] {
  assert.ok(Array.isArray(received), "a list of received messages");
  return (received as Record<string, unknown>[]).map((
    { name, type, size, sha256, ok },
  ) => ({ name, type, size, sha256, ok }));
}

function expected(seed: number, extras: boolean, end: boolean): unknown[] {
  return expectedMessages(seed, extras, end).map((m) => ({ ...m, ok: true }));
}

function assertPongs(ours: SideReport, theirs: Record<string, unknown>): void {
  assert.equal(ours.pong, true, "our ping() resolved");
  assert.equal(ours.midMessagePong, true, "our mid-message ping resolved");
  assert.equal(ours.readableEnded, true, "our readable ended after close");
  assert.equal(theirs.pong, true, "python's ping was answered");
  assert.equal(theirs.mid_message_pong, true, "python's mid-message ping");
}

for (const config of CONFIGS) {
  interopTest(
    `python websockets client ⇄ our node:http server, permessage-deflate with ${config.name}: the full exchange, every byte`,
    { missing },
    async (scope) => {
      const server = await startServer(scope, {
        perMessageDeflate: config.options,
        maxMessageSize: LIMIT,
        // Random bytes grow a little when compressed: a 16 MiB message
        // comes as a frame of a little more.
        maxFrameSize: LIMIT,
      });
      const peer = pythonPeer(scope, "call", server.wsUrl("/deflate"));
      const { ws } = await server.nextConnection();
      const [ours, theirs] = await Promise.all([
        answer(ws, { callerFragments: true }),
        pythonResult(peer),
      ]);
      assert.equal(theirs.error, undefined, String(theirs.error));
      assert.deepEqual(theirs.extensions, ["permessage-deflate"]);
      assert.equal((await ws.opened).extensions, config.serverAgrees);
      assert.deepEqual(names(ours.received), expected(1, true, false));
      assert.deepEqual(names(theirs.received), expected(2, true, true));
      assertPongs(ours, theirs);
      assert.deepEqual(ours.close, {
        closeCode: 4000,
        reason: "bye from python",
      });
      assert.equal((await peer.exited).code, 0);
    },
  );

  interopTest(
    `our client ⇄ python websockets server, permessage-deflate with ${config.name}: the full exchange, every byte`,
    { missing },
    async (scope) => {
      const peer = pythonPeer(scope, "answer");
      const [, port] = await peer.line(/^LISTENING (\d+)$/);
      const ws = new WebSocketStream(`ws://127.0.0.1:${port}/deflate`, {
        perMessageDeflate: config.options,
        maxMessageSize: LIMIT,
        // Random bytes grow a little when compressed: a 16 MiB message
        // comes as a frame of a little more.
        maxFrameSize: LIMIT,
      });
      scope.defer(() => ws.close());
      const [ours, theirs] = await Promise.all([
        call(ws, "bye from streamsocket"),
        pythonResult(peer),
      ]);
      assert.equal(theirs.error, undefined, String(theirs.error));
      assert.deepEqual(theirs.extensions, ["permessage-deflate"]);
      assert.equal((await ws.opened).extensions, config.clientAgrees);
      assert.deepEqual(names(theirs.received), expected(1, true, false));
      assert.deepEqual(names(ours.received), expected(2, true, true));
      assertPongs(ours, theirs);
      assert.deepEqual(theirs.close, {
        code: 4000,
        reason: "bye from streamsocket",
      });
      assert.equal((await peer.exited).code, 0);
    },
  );
}
