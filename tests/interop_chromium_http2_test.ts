// WebSockets over HTTP/2 (RFC 8441) with Chromium (Debian's chromium,
// headless, driven over DevTools): a page loaded over HTTPS from our
// node:http2 server (allowHTTP1, so the same port also speaks HTTP/1.1)
// opens `new WebSocket("wss://...")` to that server, exchanges text, binary
// and a large compressible message with our echo, and closes with a code
// and a reason. Chromium opens a WebSocket over HTTP/2 only on an HTTP/2
// connection it already holds to the origin, and only if the server sent
// SETTINGS_ENABLE_CONNECT_PROTOCOL: loading the page from the same server
// first gives it that connection. The server records which way each
// WebSocket came (a CONNECT stream or an HTTP/1.1 'upgrade'), which proves
// the transport; without the setting, Chromium falls back to HTTP/1.1.
// Chromium reaches the server through a TCP relay that counts the bytes,
// which shows that permessage-deflate compressed the large message.
//
// Install the browser with tests/interop/install.sh; without it these
// tests fail, unless SKIP_INTEROP=1 skips them.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  createSecureServer,
  type Http2Session,
  type IncomingHttpHeaders,
  type ServerHttp2Stream,
} from "node:http2";
import type { IncomingMessage } from "node:http";
import {
  connect,
  createServer as createNetServer,
  type Socket,
} from "node:net";
import type { Duplex } from "node:stream";
import { type NodeUpgradeOptions, upgrade } from "../src/adapters/node.ts";
import { upgradeStream } from "../src/adapters/node_http2.ts";
import type { WebSocketCloseInfo } from "../src/connection.ts";
import { launchBrowser } from "./_cdp.ts";
import {
  chromiumPath,
  type Connection,
  deadline,
  interopTest,
  type Scope,
  TLS_CERT,
  TLS_KEY,
} from "./_interop.ts";

const chromium = chromiumPath();
const missing = chromium === null ? "chromium is not installed" : null;

const PAGE = "<!doctype html><title>streamsocket over HTTP/2</title>";

/** How a WebSocket reached our server. */
interface Arrival {
  via: "h2" | "http/1.1";
  /** `:method` and `:protocol` (h2), or the method and `Upgrade` (HTTP/1.1). */
  method: string;
  protocol: string | undefined;
  path: string;
  /** Over h2: the CONNECT came on the session that served the page. */
  pageSession?: boolean;
}

/** What our echo saw of one WebSocket. */
interface Echoed {
  protocol: string;
  extensions: string;
  /** Every message, as its kind and length. */
  messages: string[];
  close: WebSocketCloseInfo;
}

/** Our node:http2 server, and what it saw. */
interface H2Server {
  /** "https://127.0.0.1:PORT" */
  readonly origin: string;
  /** Every WebSocket handshake, in order. */
  readonly arrivals: Arrival[];
  /** The page's GETs, by the ALPN protocol they came over. */
  readonly pages: string[];
  /** What the echo saw, for the next WebSocket that ends. */
  nextEcho(): Promise<Echoed>;
  /** Bytes that crossed the relay each way, over every connection. */
  traffic(): { up: number; down: number };
}

/**
 * A node:http2 secure server on 127.0.0.1 (allowHTTP1) that serves PAGE on
 * GET / and echoes every WebSocket, whether it comes as a CONNECT stream
 * (upgradeStream) or as an HTTP/1.1 upgrade (upgrade). `connectProtocol`
 * sets SETTINGS_ENABLE_CONNECT_PROTOCOL.
 */
async function startH2Server(
  scope: Scope,
  connectProtocol: boolean,
  options: NodeUpgradeOptions,
): Promise<H2Server> {
  const arrivals: Arrival[] = [];
  const pages: string[] = [];
  const pageSessions = new Set<Http2Session>();
  const sockets = new Set<Socket | Duplex>();
  const echoes: Promise<Echoed>[] = [];
  let announce = () => {};
  const failures: unknown[] = [];

  const echo = (ws: Connection) => {
    const done = (async (): Promise<Echoed> => {
      const { readable, writable, protocol, extensions } = await ws.opened;
      const messages: string[] = [];
      const writer = writable.getWriter();
      for await (const message of readable) {
        messages.push(
          typeof message === "string"
            ? `text ${message.length}`
            : `binary ${message.length}`,
        );
        await writer.write(message);
      }
      return { protocol, extensions, messages, close: await ws.closed };
    })();
    // Seen by nextEcho(), or by the diagnostics if nothing waits for it.
    done.catch((error) => failures.push(error));
    echoes.push(done);
    announce();
  };

  // No 'request' listener: with one, the compatibility layer would answer
  // every CONNECT with 405 unless a 'connect' listener took them.
  const server = createSecureServer({
    cert: readFileSync(TLS_CERT),
    key: readFileSync(TLS_KEY),
    allowHTTP1: true,
    settings: { enableConnectProtocol: connectProtocol },
  });
  server.on(
    "stream",
    (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
      const method = headers[":method"] ?? "";
      const path = headers[":path"] ?? "";
      if (method === "CONNECT") {
        arrivals.push({
          via: "h2",
          method,
          protocol: headers[":protocol"] as string | undefined,
          path,
          pageSession: pageSessions.has(stream.session!),
        });
        echo(upgradeStream(stream, headers, options));
        return;
      }
      if (method === "GET" && path === "/") {
        pages.push(stream.session!.alpnProtocol ?? "");
        pageSessions.add(stream.session!);
        stream.respond({
          ":status": 200,
          "content-type": "text/html; charset=utf-8",
          "cache-control": "no-store",
        });
        stream.end(PAGE);
        return;
      }
      stream.respond({ ":status": 404 }, { endStream: true });
    },
  );
  server.on(
    "upgrade",
    (request: IncomingMessage, socket: Duplex, head: Uint8Array) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
      arrivals.push({
        via: "http/1.1",
        method: request.method ?? "",
        protocol: request.headers.upgrade,
        path: request.url ?? "",
      });
      echo(upgrade(request, socket as never, head, options));
    },
  );
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const relay = await startRelay(
    scope,
    (server.address() as { port: number }).port,
  );
  scope.diagnose(() =>
    `[h2 server] arrivals ${JSON.stringify(arrivals)}, pages ${
      JSON.stringify(pages)
    }${failures.length > 0 ? `, echo failures: ${failures.join("; ")}` : ""}`
  );
  scope.defer(async () => {
    const done = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const session of pageSessions) session.destroy();
    for (const socket of sockets) socket.destroy();
    await done;
  });
  let taken = 0;
  return {
    origin: `https://127.0.0.1:${relay.port}`,
    arrivals,
    pages,
    async nextEcho() {
      const next = taken++;
      while (echoes.length <= next) {
        await deadline(
          new Promise<void>((resolve) => announce = resolve),
          20_000,
          "a WebSocket to reach our server",
        );
      }
      return await deadline(echoes[next], 20_000, "the echo to end");
    },
    traffic: () => relay.traffic(),
  };
}

/**
 * A TCP relay on 127.0.0.1 to `port` that counts the bytes it carries. (A
 * node:http2 server's sockets cannot count them: Deno's report no bytes
 * written, Bun's none either way.) Every socket is destroyed when the scope
 * closes.
 */
async function startRelay(
  scope: Scope,
  port: number,
): Promise<{ port: number; traffic(): { up: number; down: number } }> {
  const sockets = new Set<Socket>();
  const traffic = { up: 0, down: 0 };
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };
  const relay = createNetServer((client) => {
    const upstream = connect(port, "127.0.0.1");
    track(client);
    track(upstream);
    client.on("data", (chunk: Uint8Array) => traffic.up += chunk.length);
    upstream.on("data", (chunk: Uint8Array) => traffic.down += chunk.length);
    for (const [from, to] of [[client, upstream], [upstream, client]]) {
      from.pipe(to);
      from.on("error", () => to.destroy());
      from.on("close", () => to.destroy());
    }
  });
  await new Promise<void>((resolve, reject) => {
    relay.once("error", reject);
    relay.listen(0, "127.0.0.1", () => resolve());
  });
  scope.defer(async () => {
    const done = new Promise<void>((resolve) => relay.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await done;
  });
  return {
    port: (relay.address() as { port: number }).port,
    traffic: () => ({ ...traffic }),
  };
}

/** What the page saw. */
interface PageReport {
  error?: string;
  /** The page's own transport (PerformanceNavigationTiming). */
  nextHopProtocol: string;
  protocol: string;
  extensions: string;
  /** Each echo matched what was sent. */
  text: boolean;
  binary: boolean;
  large: boolean;
  close: { code: number; reason: string; wasClean: boolean };
}

// A megabyte of text that deflates to a few kilobytes.
const LARGE_REPEAT = "streamsocket over HTTP/2, RFC 8441. ";
const LARGE_COUNT = 30_000;
const LARGE_LENGTH = LARGE_REPEAT.length * LARGE_COUNT;

// Runs in the page: opens the WebSocket, sends a text, a binary and a large
// text message, checks their echoes, closes with 4001 and a reason.
function exchange(url: string): string {
  return `(async () => {
    const ws = new WebSocket(${JSON.stringify(url)}, ["chat.v1"]);
    ws.binaryType = "arraybuffer";
    const messages = [];
    let wake = () => {};
    ws.onmessage = (event) => { messages.push(event.data); wake(); };
    const closed = new Promise((resolve) => {
      ws.onclose = (event) => {
        resolve({ code: event.code, reason: event.reason, wasClean: event.wasClean });
        wake();
      };
    });
    const report = (fields) => ({
      nextHopProtocol: performance.getEntriesByType("navigation")[0].nextHopProtocol,
      protocol: ws.protocol,
      extensions: ws.extensions,
      ...fields,
    });
    const opened = await new Promise((resolve) => {
      ws.onopen = () => resolve(true);
      closed.then(() => resolve(false));
    });
    if (!opened) return report({ error: "closed before open", close: await closed });
    const binary = Uint8Array.from({ length: 256 }, (_, i) => i);
    const large = ${JSON.stringify(LARGE_REPEAT)}.repeat(${LARGE_COUNT});
    ws.send("hello over h2");
    ws.send(binary);
    ws.send(large);
    while (messages.length < 3 && ws.readyState === WebSocket.OPEN) {
      await new Promise((resolve) => { wake = resolve; });
    }
    const [text, echoed, big] = messages;
    ws.close(4001, "bye from chromium");
    return report({
      text: text === "hello over h2",
      binary: echoed instanceof ArrayBuffer &&
        new Uint8Array(echoed).every((b, i) => b === binary[i]) &&
        echoed.byteLength === binary.length,
      large: big === large,
      close: await closed,
    });
  })()`;
}

const EXPECTED_MESSAGES = [
  "text 13",
  "binary 256",
  `text ${LARGE_LENGTH}`,
];

/**
 * Starts our server (with or without SETTINGS_ENABLE_CONNECT_PROTOCOL) and
 * Chromium, loads the page, runs the exchange to `path`, and checks what
 * does not depend on the transport: the page came over HTTP/2, the echoes,
 * the subprotocol, permessage-deflate (the megabyte crossed the wire
 * compressed both ways), the close. Returns the server, for what does.
 */
async function exchangeWithPage(
  scope: Scope,
  connectProtocol: boolean,
  path: string,
): Promise<H2Server> {
  const server = await startH2Server(scope, connectProtocol, {
    protocols: ["chat.v1"],
    perMessageDeflate: true,
  });
  const browser = await launchBrowser(scope, chromium!, { tls: true });
  const page = await browser.open(`${server.origin}/`);
  const url = `${server.origin.replace(/^https:/, "wss:")}${path}`;
  const echoed = server.nextEcho();
  echoed.catch(() => {}); // Awaited below, once the page has said why.
  const theirs = await page.evaluate(exchange(url)) as PageReport;
  assert.equal(
    theirs.error,
    undefined,
    `the page: ${theirs.error} (${JSON.stringify(theirs.close)})`,
  );
  const ours = await echoed;
  assert.equal(theirs.nextHopProtocol, "h2");
  assert.deepEqual(server.pages, ["h2"]);
  // Chromium offers "permessage-deflate; client_max_window_bits".
  assert.equal(ours.extensions, "permessage-deflate");
  assert.equal(theirs.extensions, "permessage-deflate");
  assert.equal(ours.protocol, "chat.v1");
  assert.equal(theirs.protocol, "chat.v1");
  assert.deepEqual(ours.messages, EXPECTED_MESSAGES);
  assert.equal(theirs.text, true, "the text echo differs");
  assert.equal(theirs.binary, true, "the binary echo differs");
  assert.equal(theirs.large, true, "the large echo differs");
  assert.deepEqual(ours.close, {
    closeCode: 4001,
    reason: "bye from chromium",
  });
  // Our close echoes the code, not the reason.
  assert.deepEqual(theirs.close, { code: 4001, reason: "", wasClean: true });
  // Every connection together, page included, carried a small fraction of
  // the megabyte each way.
  const { up, down } = server.traffic();
  assert.ok(
    up > 0 && up < LARGE_LENGTH / 10 && down > 0 && down < LARGE_LENGTH / 10,
    `${up} B up, ${down} B down for a message of ${LARGE_LENGTH} B`,
  );
  return server;
}

interopTest(
  "chromium ⇄ upgradeStream on our node:http2 server: the WebSocket is an extended CONNECT on the page's HTTP/2 connection, with permessage-deflate, a subprotocol and a close code",
  { missing },
  async (scope) => {
    const server = await exchangeWithPage(scope, true, "/echo?over=h2");
    // A CONNECT stream with :protocol websocket, on the session that
    // served the page, and no HTTP/1.1 upgrade.
    assert.deepEqual(server.arrivals, [{
      via: "h2",
      method: "CONNECT",
      protocol: "websocket",
      path: "/echo?over=h2",
      pageSession: true,
    }]);
  },
);

interopTest(
  "chromium: without enableConnectProtocol our node:http2 server gets the WebSocket as an HTTP/1.1 upgrade on the same port, and it works",
  { missing },
  async (scope) => {
    const server = await exchangeWithPage(scope, false, "/echo?over=http1");
    // The page came over HTTP/2; the WebSocket, on a connection of its own.
    assert.deepEqual(server.arrivals, [{
      via: "http/1.1",
      method: "GET",
      protocol: "websocket",
      path: "/echo?over=http1",
    }]);
  },
);
