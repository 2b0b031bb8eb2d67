// The chat example end to end: its server (on whichever runtime runs this
// file) and two pages in headless Chromium, each typing into the chat's own
// page and reading what it shows. Chromium is driven through the DevTools
// protocol, over our own WebSocket client (tests/_cdp.ts). A screenshot of
// each page goes to test-output/ (ignored by git).
//
// Served over TLS, the chat speaks HTTP/2: the second test proves, on the
// server, that each page's WebSocket arrived as an extended CONNECT (RFC
// 8441) on the HTTP/2 connection that served the page.
//
// Install the browser with tests/interop/install.sh; without it these tests
// fail, unless SKIP_INTEROP=1 skips them.

import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import type {
  Http2SecureServer,
  Http2ServerRequest,
  Http2Session,
  ServerHttp2Stream,
} from "node:http2";
import { createChatServer } from "../examples/chat/server.ts";
import { CHAT_LOG, launchBrowser, type Page, showing } from "./_cdp.ts";
import { chromiumPath, interopTest, TLS_CERT, TLS_KEY } from "./_interop.ts";

const chromium = chromiumPath();
const missing = chromium === null ? "chromium is not installed" : null;

const runtime = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";
const OUTPUT = new URL("../test-output/", import.meta.url);

const LOG = CHAT_LOG;

async function join(page: Page, nick: string): Promise<void> {
  // The room field says "lobby" already.
  await page.type("#nick", nick);
  await showing(page, `notice: you joined #lobby as ${nick}`);
}

async function screenshot(page: Page, name: string): Promise<void> {
  const png = await page.screenshot();
  // A PNG: its signature, and more than a blank page's few hundred bytes.
  assert.deepEqual(
    [...png.subarray(0, 8)],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
  );
  assert.ok(png.length > 5000, `a ${png.length}-byte screenshot`);
  mkdirSync(OUTPUT, { recursive: true });
  writeFileSync(new URL(`chat-${runtime}-${name}.png`, OUTPUT), png);
}

interopTest(
  "chat in chromium: two pages join a room, see the history and each other's messages",
  { missing },
  async (scope) => {
    // A heartbeat on: the browsers answer its pings all along. A pong must
    // come back within one interval; at 100 ms a loaded CI machine dropped
    // a page (4001: the timer ran before the read of its pong).
    const chat = createChatServer({ port: 0, heartbeatInterval: 1000 });
    scope.defer(() => chat.close());
    const { port } = await chat.listening;
    const url = `http://127.0.0.1:${port}/`;
    const browser = await launchBrowser(scope, chromium!);

    const ada = await browser.open(url);
    await join(ada, "ada");
    await ada.type("#text", "hello, anyone here?");
    await showing(ada, "message: ada: hello, anyone here?");

    const bob = await browser.open(url);
    await join(bob, "bob");
    await showing(ada, "notice: bob joined");
    await bob.type("#text", "hi ada, it's bob");
    await showing(ada, "message: bob: hi ada, it's bob");
    // Markup is shown as text, not run.
    await ada.type("#text", "<b>welcome</b>, bob");
    for (const page of [ada, bob]) {
      await showing(page, "message: ada: <b>welcome</b>, bob");
    }
    assert.equal(await bob.evaluate(`document.querySelector("#log b")`), null);

    assert.deepEqual(await ada.evaluate(LOG), [
      "notice: you joined #lobby as ada",
      "message: ada: hello, anyone here?",
      "notice: bob joined",
      "message: bob: hi ada, it's bob",
      "message: ada: <b>welcome</b>, bob",
    ]);
    // bob came in after ada's first message: he has it as history.
    assert.deepEqual(await bob.evaluate(LOG), [
      "history: ada: hello, anyone here?",
      "notice: you joined #lobby as bob",
      "message: bob: hi ada, it's bob",
      "message: ada: <b>welcome</b>, bob",
    ]);
    for (const page of [ada, bob]) {
      assert.equal(
        await page.evaluate(`document.querySelector("#members").textContent`),
        "in #lobby: ada, bob",
      );
    }
    await screenshot(ada, "ada");
    await screenshot(bob, "bob");

    // Closing bob's tab closes his WebSocket: ada sees him leave.
    await bob.close();
    await showing(ada, "notice: bob left (left)");
    assert.deepEqual(chat.hub.rooms, { lobby: ["ada"] });
  },
);

// Runs in a chat page: opens a WebSocket to another origin (localhost for
// 127.0.0.1), which the page's CSP (connect-src 'self') must block, and
// says which directive blocked what, or why nothing was.
const CROSS_ORIGIN_BLOCKED = (url: string) =>
  `new Promise((resolve) => {
  const timer = setTimeout(() => resolve("not blocked within 5 s"), 5000);
  document.addEventListener("securitypolicyviolation", (event) => {
    clearTimeout(timer);
    resolve(event.effectiveDirective + " " + event.blockedURI);
  }, { once: true });
  new WebSocket(${JSON.stringify(url)});
})`;

interopTest(
  "chat in chromium over TLS: the page and both pages' WebSockets go over HTTP/2, a WebSocket is an extended CONNECT",
  { missing },
  async (scope) => {
    const chat = createChatServer({
      port: 0,
      heartbeatInterval: 1000,
      tls: { cert: readFileSync(TLS_CERT), key: readFileSync(TLS_KEY) },
    });
    scope.defer(() => chat.close());
    // What reached the server, beside the chat's own listeners: page
    // requests, and WebSocket handshakes by the way they came (a CONNECT
    // is a node:http2 'stream'; an HTTP/1.1 upgrade, 'upgrade').
    const server = chat.server as Http2SecureServer;
    const pageSessions = new Set<Http2Session>();
    const pages: string[] = [];
    const arrivals: string[] = [];
    server.on("request", (request: Http2ServerRequest) => {
      if (request.stream !== undefined) {
        pageSessions.add(request.stream.session!);
      }
      pages.push(`${request.httpVersion} ${request.method} ${request.url}`);
    });
    server.on("stream", (stream: ServerHttp2Stream, headers) => {
      if (headers[":method"] !== "CONNECT") return;
      const session = stream.session;
      arrivals.push(
        `2.0 CONNECT ${headers[":protocol"]} ${headers[":path"]}${
          session !== undefined && pageSessions.has(session)
            ? " on the page's connection"
            : ""
        }`,
      );
    });
    server.on(
      "upgrade",
      (request: { httpVersion: string; method: string; url: string }) => {
        arrivals.push(
          `${request.httpVersion} ${request.method} upgrade ${request.url}`,
        );
      },
    );
    scope.diagnose(() =>
      `[chat server] pages ${JSON.stringify(pages)}, WebSockets ${
        JSON.stringify(arrivals)
      }`
    );
    const { port } = await chat.listening;
    const url = `https://127.0.0.1:${port}/`;
    const browser = await launchBrowser(scope, chromium!, { tls: true });

    const ada = await browser.open(url);
    await join(ada, "ada");
    const bob = await browser.open(url);
    await join(bob, "bob");
    await showing(ada, "notice: bob joined");
    await ada.type("#text", "hello over HTTP/2");
    await showing(bob, "message: ada: hello over HTTP/2");
    await bob.type("#text", "and back");
    await showing(ada, "message: bob: and back");
    assert.deepEqual(chat.hub.rooms, { lobby: ["ada", "bob"] });

    // Each page came over HTTP/2...
    for (const page of [ada, bob]) {
      assert.equal(
        await page.evaluate(
          `performance.getEntriesByType("navigation")[0].nextHopProtocol`,
        ),
        "h2",
      );
    }
    assert.deepEqual(pages.filter((page) => page.endsWith(" /")), [
      "2.0 GET /",
      "2.0 GET /",
    ]);
    assert.ok(pages.every((page) => page.startsWith("2.0 ")));
    // ...and so did each one's WebSocket: an extended CONNECT on the
    // connection that served a page, and no HTTP/1.1 upgrade.
    const h2 = "2.0 CONNECT websocket /chat on the page's connection";
    assert.deepEqual(arrivals, [h2, h2]);

    // The page's CSP is in force, and its connect-src 'self' is what let
    // those wss: WebSockets through: another origin's is blocked before
    // it reaches any server.
    assert.equal(
      await ada.evaluate(
        CROSS_ORIGIN_BLOCKED(`wss://localhost:${port}/chat`),
      ),
      `connect-src wss://localhost:${port}/chat`,
    );
    assert.deepEqual(arrivals, [h2, h2]);

    // Closing bob's tab closes his WebSocket, a stream of the shared
    // connection: ada sees him leave.
    await bob.close();
    await showing(ada, "notice: bob left (left)");
    assert.deepEqual(chat.hub.rooms, { lobby: ["ada"] });
  },
);
