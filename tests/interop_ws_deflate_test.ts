// permessage-deflate against ws (npm), both roles, on whichever runtime
// runs this file: our client against ws's server, ws's client against our
// node:http server, with and without context takeover and with small
// windows. Each side echoes; every byte that comes back is checked, and the
// bytes on the wire show that compression happened.

import assert from "node:assert/strict";
import { createServer, type IncomingMessage } from "node:http";
import { createRequire } from "node:module";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { upgrade } from "../src/adapters/node.ts";
import { WebSocketStream } from "../src/client.ts";
import type { Message } from "../src/message.ts";
import type { PerMessageDeflateOptions } from "../src/permessage_deflate.ts";

// Under Bun, import "ws" gives Bun's own client; load the package by path.
const require = createRequire(import.meta.url);
const WS = require(
  fileURLToPath(new URL("../node_modules/ws/index.js", import.meta.url)),
);

const encoder = new TextEncoder();

function pseudoRandom(seed: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

// Text that compresses well, and binary that does not, of several sizes;
// the large ones cross ws's and our fragment and threshold sizes.
const MESSAGES: Message[] = [
  "",
  "a",
  "héllo wörld ✓ 😀",
  "compressible text ".repeat(100),
  pseudoRandom(1, 125),
  new Uint8Array(0),
  "x".repeat(70000),
  pseudoRandom(2, 70000),
  "the same long line again and again\n".repeat(30000), // ~1 MiB
  pseudoRandom(3, 1024 * 1024),
];
const SENT_BYTES = MESSAGES.reduce(
  (sum, m) =>
    sum + (typeof m === "string" ? encoder.encode(m).length : m.length),
  0,
);

// The same parameters, as ws spells them and as we do.
const CONFIGS: { name: string; options: PerMessageDeflateOptions }[] = [
  { name: "context takeover", options: {} },
  {
    name: "no context takeover",
    options: { serverNoContextTakeover: true, clientNoContextTakeover: true },
  },
  {
    name: "small windows",
    options: { serverMaxWindowBits: 9, clientMaxWindowBits: 10 },
  },
  {
    name: "8-bit windows, client no context takeover",
    options: {
      serverMaxWindowBits: 8,
      clientMaxWindowBits: 8,
      clientNoContextTakeover: true,
    },
  },
];

function expectedExtension(options: PerMessageDeflateOptions): RegExp {
  const parts = ["permessage-deflate"];
  if (options.serverNoContextTakeover) parts.push("server_no_context_takeover");
  if (options.clientNoContextTakeover) parts.push("client_no_context_takeover");
  if (options.serverMaxWindowBits) {
    parts.push(`server_max_window_bits=${options.serverMaxWindowBits}`);
  }
  if (options.clientMaxWindowBits) {
    parts.push(`client_max_window_bits=${options.clientMaxWindowBits}`);
  }
  // ws and we may list the parameters in another order.
  return new RegExp(
    `^permessage-deflate${
      parts.slice(1).map((p) => `(?=.*; ${p}(;|$))`).join("")
    }(; [a-z_]+(=\\d+)?)*$`,
  );
}

function same(got: unknown, want: Message): boolean {
  if (typeof want === "string") return got === want;
  if (!(got instanceof Uint8Array) || got.length !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) return false;
  return true;
}

for (const { name, options } of CONFIGS) {
  test(
    `our client ⇄ ws server, permessage-deflate with ${name}: every byte echoed, compressed on the wire`,
    { timeout: 30_000 },
    async () => {
      const server = new WS.WebSocketServer({
        host: "127.0.0.1",
        port: 0,
        maxPayload: 64 * 1024 * 1024,
        perMessageDeflate: { ...options, threshold: 0 },
      });
      await new Promise((resolve) => server.once("listening", resolve));
      let bytesRead = () => 0;
      server.on(
        "connection",
        (
          ws: {
            on(e: string, f: (...a: never[]) => void): void;
            send(d: unknown, o: unknown): void;
          },
          request: IncomingMessage,
        ) => {
          const socket = request.socket;
          bytesRead = () => socket.bytesRead;
          ws.on("message", (data: Uint8Array, binary: boolean) => {
            ws.send(binary ? data : new TextDecoder().decode(data), {
              binary,
            });
          });
        },
      );
      try {
        const ws = new WebSocketStream(
          `ws://127.0.0.1:${server.address().port}/`,
          {
            perMessageDeflate: { ...options, threshold: 0 },
            maxMessageSize: 64 * 1024 * 1024,
            fragmentSize: 300000,
          },
        );
        const { readable, writable, extensions } = await ws.opened;
        assert.match(extensions, expectedExtension(options));
        const writer = writable.getWriter();
        const reader = readable.getReader();
        for (const [i, message] of MESSAGES.entries()) {
          await writer.write(message);
          const { value } = await reader.read();
          assert.ok(same(value, message), `message ${i} came back changed`);
        }
        // A streamed message: fragments compressed one by one.
        const parts = ["streamed ", "text ".repeat(5000), "end"];
        await writer.write({
          type: "text",
          stream: ReadableStream.from(parts),
        });
        assert.equal((await reader.read()).value, parts.join(""));
        // Random binary barely compresses; the rest shrinks a lot.
        assert.ok(
          bytesRead() < SENT_BYTES * 0.75,
          `ws read ${bytesRead()} bytes for ${SENT_BYTES} sent`,
        );
        ws.close({ closeCode: 1000 });
        assert.equal((await ws.closed).closeCode, 1000);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    },
  );

  test(
    `ws client ⇄ our node:http server, permessage-deflate with ${name}: every byte echoed, compressed on the wire`,
    { timeout: 30_000 },
    async () => {
      const sockets: Socket[] = [];
      const server = createServer();
      let serverError: unknown = null;
      let agreed = "";
      server.on(
        "upgrade",
        async (request: IncomingMessage, socket: Duplex, head: Uint8Array) => {
          sockets.push(socket as Socket);
          const ws = upgrade(request, socket as never, head, {
            perMessageDeflate: { ...options, threshold: 0 },
            maxMessageSize: 64 * 1024 * 1024,
            fragmentSize: 300000,
          });
          try {
            const { readable, writable, extensions } = await ws.opened;
            agreed = extensions;
            await readable.pipeTo(writable);
          } catch (error) {
            serverError = error;
          }
        },
      );
      await new Promise<void>((resolve) =>
        server.listen(0, "127.0.0.1", resolve)
      );
      const { port } = server.address() as { port: number };
      try {
        const client = new WS(`ws://127.0.0.1:${port}/`, {
          perMessageDeflate: { ...options, threshold: 0 },
          maxPayload: 64 * 1024 * 1024,
        });
        const received: { data: Uint8Array; binary: boolean }[] = [];
        let wake = () => {};
        client.on("message", (data: Uint8Array, binary: boolean) => {
          received.push({ data: new Uint8Array(data), binary });
          wake();
        });
        await new Promise((resolve, reject) => {
          client.once("open", resolve);
          client.once("error", reject);
        });
        const next = async () => {
          while (received.length === 0) {
            await new Promise<void>((resolve) => (wake = resolve));
          }
          const { data, binary } = received.shift()!;
          return binary ? data : new TextDecoder().decode(data);
        };
        // ws's client names the extensions only; our server says all.
        assert.equal(client.extensions, "permessage-deflate");
        assert.match(agreed, expectedExtension(options));
        for (const [i, message] of MESSAGES.entries()) {
          client.send(message, { binary: typeof message !== "string" });
          assert.ok(
            same(await next(), message),
            `message ${i} came back changed`,
          );
        }
        // ws fragments a message sent in parts: compressed frame by frame.
        client.send("first part, ", { fin: false, binary: false });
        client.send("second part", { fin: true, binary: false });
        assert.equal(await next(), "first part, second part");
        const read = sockets[0].bytesRead;
        assert.ok(read < SENT_BYTES * 0.75, `we read ${read} bytes`);
        const closed = new Promise<number>((resolve) =>
          client.once("close", resolve)
        );
        client.close(1000);
        assert.equal(await closed, 1000);
        assert.equal(serverError, null);
      } finally {
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => server.close(resolve));
      }
    },
  );
}
