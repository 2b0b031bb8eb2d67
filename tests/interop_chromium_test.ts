// Interop with Chromium (Debian's chromium, headless): a page served by our
// node:http server opens `new WebSocket()` to the same server, on whichever
// runtime runs this file, and POSTs back what it saw. Every message is
// checked byte for byte on both sides; see tests/interop/payload.js for
// what is exchanged. Chromium is started on the page's URL, with no
// DevTools driver: the page runs by itself and reports over fetch().
//
// Install the browser with tests/interop/install.sh; without it these
// tests fail, unless SKIP_INTEROP=1 skips them.

import assert from "node:assert/strict";
import { HandshakeError } from "../src/handshake.ts";
import {
  answer,
  assertPageExchange,
  chromiumPath,
  echoOnce,
  interopTest,
  launchChromium,
  startServer,
  type TestServer,
} from "./_interop.ts";

const chromium = chromiumPath();
const missing = chromium === null ? "chromium is not installed" : null;

function pageUrl(page: TestServer, mode: string, target: string): string {
  return `${page.origin}/page.html?mode=${mode}&ws=${
    encodeURIComponent(target)
  }`;
}

type PageReport = Record<string, unknown> & {
  error?: string;
  close?: { code: number; reason: string; wasClean: boolean };
};

for (const tls of [false, true]) {
  interopTest(
    `chromium ⇄ our ${
      tls ? "node:https server over TLS (wss://)" : "node:http server"
    }: text and binary of 0 B to 16 MiB, a ping, close 4000 from the page`,
    { missing },
    async (scope) => {
      const server = await startServer(scope, {}, { tls });
      launchChromium(
        scope,
        chromium!,
        pageUrl(server, "exchange", server.wsUrl("/exchange")),
        { tls },
      );
      const { ws, path } = await server.nextConnection();
      assert.equal(path, "/exchange");
      const [ours, theirs] = await Promise.all([
        // The browser sends no fragments and no pings of its own.
        answer(ws, { callerFragments: false }),
        server.report("exchange") as Promise<PageReport>,
      ]);
      assert.equal(theirs.error, undefined, String(theirs.error));
      // Same origin: the page's origin is our server's.
      assert.equal(theirs.origin, server.origin);
      // Chromium offered permessage-deflate; this server is not configured
      // for it (interop_chromium_deflate_test.ts covers it).
      assert.equal(theirs.extensions, "");
      assert.equal(theirs.protocol, "");
      // Every message both ways, the pongs, and the page's close with 4000
      // and a reason, whose code our answer echoes.
      assertPageExchange(ours, theirs);
      assert.equal(ours.readableEnded, true);
      assert.deepEqual(theirs.close, {
        code: 4000,
        reason: "",
        wasClean: true,
      });
    },
  );
}

interopTest(
  "chromium: our server closes with 1000 and a reason, the page sees a clean close",
  { missing },
  async (scope) => {
    const server = await startServer(scope);
    launchChromium(
      scope,
      chromium!,
      pageUrl(server, "server-close", server.wsUrl("/server-close")),
    );
    const { ws } = await server.nextConnection();
    assert.equal(await echoOnce(ws), "hello");
    ws.close({ closeCode: 1000, reason: "server says bye" });
    const [closed, theirs] = await Promise.all([
      ws.closed,
      server.report("server-close") as Promise<PageReport>,
    ]);
    assert.equal(theirs.error, undefined, String(theirs.error));
    assert.equal(theirs.echo, "hello");
    assert.deepEqual(theirs.close, {
      code: 1000,
      reason: "server says bye",
      wasClean: true,
    });
    // Chromium echoes the code.
    assert.equal(closed.closeCode, 1000);
  },
);

interopTest(
  "chromium: a page from another origin is refused with 403 (same-origin policy by default)",
  { missing },
  async (scope) => {
    const server = await startServer(scope);
    // The page comes from a second server, on another port: another origin.
    const other = await startServer(scope);
    launchChromium(
      scope,
      chromium!,
      pageUrl(other, "cross-origin", server.wsUrl("/cross-origin")),
    );
    const { ws } = await server.nextConnection();
    const [refusal, theirs] = await Promise.all([
      ws.opened.then(
        () => null,
        (error: unknown) => error,
      ),
      other.report("cross-origin") as Promise<PageReport>,
    ]);
    assert.ok(
      refusal instanceof HandshakeError,
      `opened rejects with a HandshakeError, got ${String(refusal)}`,
    );
    assert.equal(refusal.status, 403);
    await assert.rejects(ws.closed, HandshakeError);
    assert.equal(theirs.error, undefined, String(theirs.error));
    assert.equal(theirs.origin, other.origin);
    assert.deepEqual(theirs.events, ["error", "close"]);
    assert.deepEqual(theirs.close, { code: 1006, reason: "", wasClean: false });
  },
);
