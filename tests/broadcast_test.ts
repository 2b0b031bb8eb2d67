// Broadcast: every member gets every message once, in order with its own
// writes; slow members are bounded; compressed and plain members get the
// same bytes.

import assert from "node:assert/strict";
import { connect } from "node:net";
import { constants, inflateRawSync } from "node:zlib";
import { test } from "node:test";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import fc from "fast-check";
import { Broadcast } from "../src/broadcast.ts";
import { SharedMessage } from "../src/_shared_message.ts";
import { WebSocketConnection } from "../src/connection.ts";
import { serve } from "../src/serve.ts";
import { duplexPair, eventually, payload } from "./_helpers.ts";

// Under Bun, import "ws" gives Bun's own client; load the package by path.
const require = createRequire(import.meta.url);
const WS = require(
  fileURLToPath(new URL("../node_modules/ws/index.js", import.meta.url)),
);

function memoryPair(fragmentSize: number) {
  const [a, b] = duplexPair();
  return {
    client: new WebSocketConnection(a, { role: "client" }),
    server: new WebSocketConnection(b, { role: "server", fragmentSize }),
  };
}

const ops = fc.array(
  fc.oneof(
    fc.record({ op: fc.constant("add" as const), who: fc.nat(3) }),
    fc.record({ op: fc.constant("delete" as const), who: fc.nat(3) }),
    fc.record({ op: fc.constant("close" as const), who: fc.nat(3) }),
    fc.record({
      op: fc.constant("send" as const),
      size: fc.oneof(fc.nat(40), fc.integer({ min: 1000, max: 70_000 })),
      except: fc.option(fc.nat(3), { nil: undefined }),
    }),
    fc.record({
      op: fc.constant("write" as const),
      who: fc.nat(3),
      size: fc.oneof(fc.nat(40), fc.integer({ min: 1000, max: 70_000 })),
    }),
  ),
  { maxLength: 30 },
);

test("property: every member gets every broadcast once, in order with its own writes", async () => {
  await fc.assert(
    fc.asyncProperty(
      ops,
      fc.array(fc.integer({ min: 100, max: 100_000 }), {
        minLength: 4,
        maxLength: 4,
      }),
      async (steps, fragmentSizes) => {
        const pairs = fragmentSizes.map(memoryPair);
        const writers = await Promise.all(
          pairs.map(async (p) => (await p.server.opened).writable.getWriter()),
        );
        const got: string[][] = pairs.map(() => []);
        const received = pairs.map(async (p, i) => {
          const { readable } = await p.client.opened;
          try {
            for await (const m of readable) got[i].push(m as string);
          } catch {
            // A connection closed by the server ends here.
          }
        });
        const expected: string[][] = pairs.map(() => []);
        const closed = pairs.map(() => false);
        const room = new Broadcast<WebSocketConnection>({
          maxQueued: Infinity,
        });
        let n = 0;
        for (const step of steps) {
          switch (step.op) {
            case "add":
              if (!closed[step.who]) room.add(pairs[step.who].server);
              break;
            case "delete":
              room.delete(pairs[step.who].server);
              break;
            case "close":
              closed[step.who] = true;
              pairs[step.who].server.close({ closeCode: 1000 });
              break;
            case "send": {
              const text = `b${n++}:` + "x".repeat(step.size);
              const except = step.except === undefined
                ? undefined
                : pairs[step.except].server;
              const members = [...room];
              const count = room.send(text, { except });
              let want = 0;
              pairs.forEach((p, i) => {
                if (members.includes(p.server) && p.server !== except) {
                  if (!closed[i]) expected[i].push(text), want++;
                }
              });
              assert.equal(count, want);
              break;
            }
            case "write": {
              if (closed[step.who]) break;
              const text = `w${n++}:` + "y".repeat(step.size);
              expected[step.who].push(text);
              writers[step.who].write(text).catch(() => {});
              break;
            }
          }
        }
        // The open ones get everything; then they close too. (A Close goes
        // ahead of what still waits: a closed one gets a prefix.)
        await eventually(
          () =>
            got.every((g, i) => closed[i] || g.length >= expected[i].length),
          "every open member got its messages",
        );
        for (const [i, p] of pairs.entries()) {
          if (!closed[i]) p.server.close({ closeCode: 1000 });
        }
        await Promise.all(received);
        await Promise.all(pairs.map((p) => p.server.closed.catch(() => {})));
        for (const [i, messages] of got.entries()) {
          const short = (s: string) => s.slice(0, 12);
          if (closed[i]) {
            assert.deepEqual(
              messages.map(short),
              expected[i].slice(0, messages.length).map(short),
            );
          } else {
            assert.deepEqual(messages.map(short), expected[i].map(short));
          }
          assert.deepEqual(messages, expected[i].slice(0, messages.length));
        }
        assert.equal(room.size, 0, "closed connections left the room");
      },
    ),
    { numRuns: 60 },
  );
});

test("a broadcast is framed once: the server writes the same bytes to every member", async () => {
  const pairs = [memoryPair(1 << 20), memoryPair(1 << 20)];
  const room = new Broadcast().add(pairs[0].server).add(pairs[1].server);
  const data = payload(10_000, 7);
  assert.equal(room.send(data), 2);
  for (const p of pairs) {
    const reader = (await p.client.opened).readable.getReader();
    assert.deepEqual((await reader.read()).value, data);
    reader.releaseLock();
    p.client.close();
  }
});

test("Broadcast rejects what is not a connection of this library, and bad options", () => {
  const room = new Broadcast();
  assert.throws(
    () => room.add({ closed: Promise.resolve() }),
    TypeError,
  );
  assert.throws(() => new Broadcast({ whenFull: "wait" as never }), TypeError);
  assert.throws(() => new Broadcast({ maxQueued: -1 }), RangeError);
  assert.throws(() => new Broadcast({ onFull: 1 as never }), TypeError);
  assert.throws(() => room.send(42 as never), TypeError);
});

// A real server, a client that reads (ws) and one that never reads (a raw
// socket that did the handshake): the slow one is closed or skipped, the
// fast one keeps getting everything.
async function slowAndFast(whenFull: "close" | "drop") {
  const full: unknown[] = [];
  const room = new Broadcast({
    maxQueued: 256 * 1024,
    whenFull,
    onFull: (member) => {
      // Called after the loop: the fast member has this message already.
      assert.equal(room.has(member), whenFull === "drop");
      full.push(member);
    },
  });
  const server = serve({}, (ws) => void room.add(ws));
  const { url } = await server.listening;
  const fast = new WS(url);
  const got: number[] = [];
  fast.on("message", (data: Uint8Array) => got.push(data.length));
  await new Promise((resolve) => fast.once("open", resolve));
  const { port } = new URL(url);
  const slow = connect(Number(port), "127.0.0.1");
  slow.write(
    "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  );
  await eventually(() => room.size === 2, "both joined");
  slow.pause(); // and never reads again
  const slowMember = [...room].find((ws) => ws !== [...room][0])!;
  const message = payload(64 * 1024, 3);
  const counts: number[] = [];
  const deadline = Date.now() + 10_000;
  // 64 MiB in all, far past what the socket buffers hold.
  for (let i = 0; i < 1024 && Date.now() < deadline; i++) {
    counts.push(room.send(message));
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await eventually(() => got.length === counts.length, "fast got all", 10_000);
  return { room, server, fast, slow, slowMember, counts, full };
}

test("a member that never reads is closed with 1013 past maxQueued; the others get every message", async () => {
  const { room, server, fast, slow, slowMember, counts, full } =
    await slowAndFast("close");
  assert.equal(counts[0], 2);
  assert.equal(counts.at(-1), 1, "the slow member stopped getting them");
  assert.deepEqual(full, [slowMember], "onFull once, when it was closed");
  assert.equal(room.size, 1);
  assert.equal(room.has(slowMember), false);
  // It closes with 1013 once the close handshake times out or is done;
  // the peer never reads, so it is the timeout.
  slow.destroy();
  await assert.rejects(slowMember.closed);
  fast.close();
  await server.close();
});

test("with whenFull: drop, a member that never reads skips messages and stays", async () => {
  const { room, server, fast, slow, slowMember, counts, full } =
    await slowAndFast("drop");
  assert.equal(counts[0], 2);
  assert.equal(counts.at(-1), 1, "the slow member skipped the last ones");
  // onFull for each message it skipped.
  const skipped = counts.filter((count) => count === 1).length;
  assert.ok(skipped > 0);
  assert.equal(full.length, skipped);
  assert.ok(full.every((member) => member === slowMember));
  assert.equal(room.size, 2);
  assert.equal(room.has(slowMember), true);
  slow.destroy();
  await assert.rejects(slowMember.closed);
  fast.close();
  await server.close();
});

test("a broadcast to compressed and plain members arrives byte for byte", async () => {
  const room = new Broadcast<WebSocketConnection>();
  const server = serve({ perMessageDeflate: true }, (ws) => void room.add(ws));
  const { url } = await server.listening;
  const clients = [
    new WS(url, { perMessageDeflate: true }),
    new WS(url, { perMessageDeflate: false }),
    // Compressed once for it and its like (see the next test).
    new WS(url, { perMessageDeflate: { serverNoContextTakeover: true } }),
  ];
  const received = clients.map((c) => {
    const got: unknown[] = [];
    c.on(
      "message",
      (data: Uint8Array, binary: boolean) =>
        got.push(binary ? new Uint8Array(data) : data.toString()),
    );
    return got;
  });
  await Promise.all(
    clients.map((c) => new Promise((resolve) => c.once("open", resolve))),
  );
  assert.match(clients[0].extensions, /permessage-deflate/);
  assert.equal(clients[1].extensions, "");
  await eventually(() => room.size === 3, "all joined");
  const agreed = await Promise.all(
    [...room].map(async (ws) => (await ws.opened).extensions),
  );
  assert.equal(
    agreed.filter((e) => e.includes("server_no_context_takeover")).length,
    1,
  );
  const sent = [
    "hello",
    payload(100_000, 1),
    "é".repeat(50_000),
    new Uint8Array(0),
  ];
  for (const m of sent) assert.equal(room.send(m), 3);
  // And the compressed members' own messages still compress, before and
  // after broadcasts.
  for (const ws of room) {
    const { extensions, writable } = await ws.opened;
    if (extensions === "") continue;
    const writer = writable.getWriter();
    await writer.write("z".repeat(10_000));
    writer.releaseLock();
  }
  room.send("after");
  const wanted = [...sent, "z".repeat(10_000), "after"];
  await eventually(
    () => received.every((got) => got.length >= wanted.length - 1),
    "all arrived",
  );
  assert.deepEqual(received[0], wanted);
  assert.deepEqual(received[1], [...sent, "after"]);
  assert.deepEqual(received[2], wanted);
  for (const c of clients) c.close();
  await server.close();
});

// A raw client that offers `extensions` and returns the server's frames,
// unparsed past their first byte and payload (the server's are unmasked
// and short here: 7-bit or 16-bit lengths).
async function rawFrames(url: string, extensions: string) {
  const { port } = new URL(url);
  const socket = connect(Number(port), "127.0.0.1");
  let buffered = new Uint8Array(0);
  let notify = () => {};
  socket.on("data", (chunk: Uint8Array) => {
    const joined = new Uint8Array(buffered.length + chunk.length);
    joined.set(buffered);
    joined.set(chunk, buffered.length);
    buffered = joined;
    notify();
  });
  const more = () => new Promise<void>((resolve) => notify = resolve);
  socket.write(
    "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
      `Sec-WebSocket-Extensions: ${extensions}\r\n\r\n`,
  );
  const text = () => new TextDecoder().decode(buffered);
  while (!text().includes("\r\n\r\n")) await more();
  const head = text().slice(0, text().indexOf("\r\n\r\n"));
  buffered = buffered.subarray(new TextEncoder().encode(head).length + 4);
  return {
    head,
    socket,
    async next(): Promise<{ b0: number; payload: Uint8Array }> {
      for (;;) {
        if (buffered.length >= 2) {
          const length7 = buffered[1] & 0x7f;
          const at = length7 === 126 ? 4 : 2;
          const length = length7 === 126
            ? (buffered[2] << 8) | buffered[3]
            : length7;
          if (buffered.length >= at + length) {
            const frame = {
              b0: buffered[0],
              payload: buffered.slice(at, at + length),
            };
            buffered = buffered.subarray(at + length);
            return frame;
          }
        }
        await more();
      }
    },
  };
}

test("a broadcast is compressed once for members without context takeover, and goes plain to those with it", async () => {
  const room = new Broadcast<WebSocketConnection>();
  const server = serve({ perMessageDeflate: true }, (ws) => void room.add(ws));
  const { url } = await server.listening;
  const once = await Promise.all([
    rawFrames(url, "permessage-deflate; server_no_context_takeover"),
    rawFrames(url, "permessage-deflate; server_no_context_takeover"),
  ]);
  const context = await rawFrames(url, "permessage-deflate");
  for (const c of once) {
    assert.match(c.head, /server_no_context_takeover/);
  }
  assert.doesNotMatch(context.head, /no_context_takeover/);
  await eventually(() => room.size === 3, "all joined");

  const text = "the same words, again and again. ".repeat(100);
  const short = "below the threshold";
  assert.equal(room.send(text), 3);
  assert.equal(room.send(short), 3);
  const tail = new Uint8Array([0x00, 0x00, 0xff, 0xff]);
  const inflate = (payload: Uint8Array) =>
    new TextDecoder().decode(
      inflateRawSync(new Uint8Array([...payload, ...tail]), {
        finishFlush: constants.Z_SYNC_FLUSH,
      }),
    );
  const got = await Promise.all(once.map((c) => c.next()));
  for (const frame of got) {
    assert.equal(frame.b0, 0xc1, "FIN, RSV1, text");
    assert.ok(frame.payload.length < text.length / 4);
    assert.equal(inflate(frame.payload), text);
  }
  assert.deepEqual(got[0].payload, got[1].payload);
  // Below the threshold: plain, as the connection's own would go.
  for (const c of once) {
    const frame = await c.next();
    assert.equal(frame.b0, 0x81);
    assert.equal(new TextDecoder().decode(frame.payload), short);
  }
  // With context takeover: plain, both.
  for (const wanted of [text, short]) {
    const frame = await context.next();
    assert.equal(frame.b0, 0x81, "FIN, text, no RSV1");
    assert.equal(new TextDecoder().decode(frame.payload), wanted);
  }
  for (const c of [...once, context]) c.socket.destroy();
  await server.close();
});

test("room.writable broadcasts a stream, held to the pace of members that keep up", async () => {
  const pairs = [memoryPair(1 << 20), memoryPair(1 << 20)];
  const room = new Broadcast().add(pairs[0].server).add(pairs[1].server);
  const messages = Array.from({ length: 2000 }, (_, i) => `m${i}`);
  const piped = ReadableStream.from(messages).pipeTo(room.writable);
  const received = pairs.map(async (p) => {
    const got: unknown[] = [];
    const reader = (await p.client.opened).readable.getReader();
    while (got.length < messages.length) got.push((await reader.read()).value);
    reader.releaseLock();
    return got;
  });
  await piped;
  for (const got of await Promise.all(received)) {
    assert.deepEqual(got, messages);
  }
  for (const p of pairs) p.client.close();
  await Promise.all(pairs.map((p) => p.server.closed));
});

test("a broadcast waits for the messages written before it, even those still queued in the writable", async () => {
  // w1 is fragmented and in flight, w2 waits in the writable's queue:
  // the broadcast goes after both, and before w3, written after it.
  const pair = memoryPair(1000);
  const room = new Broadcast().add(pair.server);
  const writer = (await pair.server.opened).writable.getWriter();
  const w1 = "1".repeat(5000);
  writer.write(w1);
  writer.write("w2");
  assert.equal(room.send("B"), 1);
  writer.write("w3");
  const reader = (await pair.client.opened).readable.getReader();
  const got = [];
  for (let i = 0; i < 4; i++) got.push((await reader.read()).value);
  assert.deepEqual(got, [w1, "w2", "B", "w3"]);
  reader.releaseLock();
  pair.client.close();
  await pair.server.closed;
});

test("a shared message holds its bytes once: its payload is a view of its wire", () => {
  for (const data of [payload(100_000, 2), "é".repeat(50_000), "hi"]) {
    const { frame } = new SharedMessage(data);
    assert.equal(frame.payload.buffer, frame.wire.buffer);
    assert.deepEqual(
      frame.payload,
      typeof data === "string" ? new TextEncoder().encode(data) : data,
    );
    assert.deepEqual(
      frame.wire.subarray(frame.wire.length - frame.payload.length),
      frame.payload,
    );
  }
});

test("an onFull that throws does not keep the others' from running", async () => {
  const pairs = [memoryPair(1 << 20), memoryPair(1 << 20)];
  const called: unknown[] = [];
  const room = new Broadcast({
    maxQueued: 0, // the first message that has to wait is past it
    whenFull: "drop",
    onFull: (member) => {
      called.push(member);
      throw new Error("from onFull");
    },
  });
  for (const { server } of pairs) room.add(server);
  await Promise.all(pairs.map(({ server }) => server.opened));
  // Fill each member's output until a broadcast has to wait: then both
  // are past maxQueued at once, and send() throws once both were told.
  let thrown: unknown;
  for (let i = 0; i < 200 && called.length === 0; i++) {
    try {
      room.send(payload(64 * 1024, i));
    } catch (error) {
      thrown = error;
    }
  }
  assert.equal((thrown as Error)?.message, "from onFull");
  assert.equal(called.length, 2, "both members' onFull ran");
  for (const { client } of pairs) client.close();
});
