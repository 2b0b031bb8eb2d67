// The chat example (examples/chat/) at the server level: our own client
// against the chat's node:http server on a real socket (node:http2 over
// TLS), on whichever runtime runs this file; and, over in-memory duplexes,
// a client that stops reading. The browser's view is
// tests/chat_e2e_test.ts.

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import type { Http2SecureServer } from "node:http2";
import { test } from "node:test";
import { WebSocketStream, type WebSocketStreamOptions } from "../src/client.ts";
import { WebSocketConnection } from "../src/connection.ts";
import {
  ChatCloseCode,
  ChatHub,
  MAX_ROOMS_PER_CLIENT,
} from "../examples/chat/hub.ts";
import { nicknameKey, parseCommand } from "../examples/chat/protocol.ts";
import {
  type ChatServerOptions,
  createChatServer,
} from "../examples/chat/server.ts";
import { duplexPair, eventually } from "./_helpers.ts";
import { deadline, type Scope, TLS_CERT, TLS_KEY, within } from "./_interop.ts";

// deno-lint-ignore no-explicit-any
type Event = Record<string, any>;

interface Client {
  ws: WebSocketStream;
  /** Sends one message as it is. */
  write(message: string | Uint8Array): Promise<void>;
  /** Sends one command, as JSON. */
  send(command: unknown): Promise<void>;
  /** The next event from the server. */
  next(): Promise<Event>;
}

async function connect(
  scope: Scope,
  url: string,
  options: WebSocketStreamOptions = {},
): Promise<Client> {
  const ws = new WebSocketStream(url, options);
  // Closed before the server: our Close lets it read past unread messages.
  scope.defer(async () => {
    try {
      ws.close({ closeCode: 1000 });
    } catch {
      // Closed already.
    }
    await ws.closed.catch(() => {});
  });
  const { readable, writable } = await deadline(ws.opened, 5000, "open");
  const reader = readable.getReader();
  const writer = writable.getWriter();
  return {
    ws,
    write: (message) => writer.write(message),
    send: (command) => writer.write(JSON.stringify(command)),
    async next() {
      const { done, value } = await deadline(reader.read(), 5000, "an event");
      if (done) throw new Error("the connection ended before the next event");
      return JSON.parse(value as string);
    },
  };
}

async function startChat(
  scope: Scope,
  options: ChatServerOptions = {},
): Promise<{ url: string; hub: ChatHub }> {
  const chat = createChatServer({ port: 0, heartbeatInterval: 0, ...options });
  scope.defer(() => chat.close());
  const { port } = await chat.listening;
  return { url: `ws://127.0.0.1:${port}/chat`, hub: chat.hub };
}

async function join(
  scope: Scope,
  url: string,
  room: string,
  nick: string,
  options?: WebSocketStreamOptions,
) {
  const client = await connect(scope, url, options);
  await client.send({ type: "join", room, nick });
  const welcome = await client.next();
  assert.equal(welcome.type, "welcome", JSON.stringify(welcome));
  return { client, welcome };
}

interface HubClient {
  connection: WebSocketConnection;
  /** Sends one command, as JSON. */
  send(command: unknown): Promise<void>;
  /** The next event from the hub. */
  next(): Promise<Event>;
  /** Asks to join, and returns the answer: a welcome or an error. */
  join(room: string, nick: string): Promise<Event>;
  /** Closes the connection, and waits until the hub has let it go. */
  leave(): Promise<void>;
}

// A client of `hub` over in-memory pipes, connecting as `client` (whom
// the server would name: an address). The hub's own tests use these where
// a real socket would add nothing.
async function hubClient(
  scope: Scope,
  hub: ChatHub,
  client?: string,
): Promise<HubClient> {
  const [near, far] = duplexPair();
  const accepted = hub.accept(
    new WebSocketConnection(far, { role: "server" }),
    { client },
  );
  const connection = new WebSocketConnection(near, { role: "client" });
  const close = async () => {
    try {
      connection.close({ closeCode: 1000 });
    } catch {
      // Closed already.
    }
    await connection.closed.catch(() => {});
    await accepted;
  };
  scope.defer(close);
  const { readable, writable } = await deadline(
    connection.opened,
    5000,
    "open",
  );
  const reader = readable.getReader();
  const writer = writable.getWriter();
  const send = (command: unknown) => writer.write(JSON.stringify(command));
  const next = async () => {
    const { done, value } = await deadline(reader.read(), 5000, "an event");
    if (done) throw new Error("the connection ended before the next event");
    return JSON.parse(value as string);
  };
  return {
    connection,
    send,
    next,
    async join(room, nick) {
      await send({ type: "join", room, nick });
      return next();
    },
    leave: close,
  };
}

test("chat: two clients join a room, hear of each other and exchange messages", async () => {
  await within(20_000, "chat exchange", async (scope) => {
    const { url, hub } = await startChat(scope);
    const { client: ada, welcome } = await join(scope, url, "lobby", "ada");
    assert.deepEqual(welcome.members, ["ada"]);
    assert.deepEqual(welcome.history, []);

    const { client: bob, welcome: bobWelcome } = await join(
      scope,
      url,
      "lobby",
      "bob",
    );
    assert.deepEqual(bobWelcome.members, ["ada", "bob"]);
    const joined = await ada.next();
    assert.equal(joined.type, "joined");
    assert.equal(joined.nick, "bob");
    assert.deepEqual(hub.rooms, { lobby: ["ada", "bob"] });

    await ada.send({ type: "say", text: "hello bob" });
    await bob.send({ type: "say", text: "hi ada" });
    // Everyone, the sender too, sees every message, in the server's order.
    for (const client of [ada, bob]) {
      const said = [await client.next(), await client.next()];
      assert.deepEqual(
        said.map(({ type, nick, text }) => ({ type, nick, text })),
        [
          { type: "message", nick: "ada", text: "hello bob" },
          { type: "message", nick: "bob", text: "hi ada" },
        ],
      );
      assert.equal(typeof said[0].time, "number");
    }

    // Leaving is a notice for the others.
    bob.ws.close({ closeCode: 1000 });
    await bob.ws.closed;
    const left = await ada.next();
    assert.deepEqual([left.type, left.nick, left.reason], [
      "left",
      "bob",
      "left",
    ]);
    assert.deepEqual(hub.rooms, { lobby: ["ada"] });
    ada.ws.close({ closeCode: 1000 });
    await ada.ws.closed;
  });
});

test("chat over TLS: an HTTP/1.1 client and an HTTP/2 client share a room, on one port", async () => {
  await within(20_000, "chat over TLS", async (scope) => {
    const cert = readFileSync(TLS_CERT, "utf8");
    const chat = createChatServer({
      port: 0,
      heartbeatInterval: 0,
      tls: { cert, key: readFileSync(TLS_KEY) },
    });
    scope.defer(() => chat.close());
    // How each WebSocket came: an HTTP/1.1 'upgrade', or an HTTP/2 CONNECT.
    const seen: string[] = [];
    const server = chat.server as Http2SecureServer;
    server.on("upgrade", (request: IncomingMessage) => {
      seen.push(`${request.httpVersion} ${request.method}`);
    });
    server.on("stream", (_stream, headers) => {
      if (headers[":method"] === "CONNECT") seen.push("2.0 CONNECT");
    });
    const { url: origin } = await chat.listening;
    assert.match(origin, /^wss:/);
    const url = new URL("/chat", origin).href;
    const tls = { ca: cert };
    const { client: ada } = await join(scope, url, "lobby", "ada", { tls });
    const { client: bob, welcome } = await join(scope, url, "lobby", "bob", {
      tls,
      httpVersion: "2",
    });
    assert.deepEqual(welcome.members, ["ada", "bob"]);
    assert.deepEqual(seen, ["1.1 GET", "2.0 CONNECT"]);
    assert.equal((await ada.next()).type, "joined");
    // Each hears the other, and itself.
    const say = async (from: Client, nick: string, text: string) => {
      await from.send({ type: "say", text });
      for (const client of [ada, bob]) {
        const { type, nick: who, text: said } = await client.next();
        assert.deepEqual([type, who, said], ["message", nick, text]);
      }
    };
    await say(bob, "bob", "over HTTP/2");
    await say(ada, "ada", "over HTTP/1.1");
  });
});

test("chat: a newcomer gets the room's latest messages, and only that room's", async () => {
  await within(20_000, "chat history", async (scope) => {
    const { url } = await startChat(scope, { historySize: 2 });
    const { client: ada } = await join(scope, url, "lobby", "ada");
    for (const text of ["one", "two", "three"]) {
      await ada.send({ type: "say", text });
      assert.equal((await ada.next()).text, text);
    }
    const { client: eve } = await join(scope, url, "elsewhere", "eve");
    await eve.send({ type: "say", text: "not in the lobby" });
    await eve.next();

    const { welcome } = await join(scope, url, "lobby", "bob");
    assert.deepEqual(
      welcome.history.map(({ nick, text }: Event) => `${nick}: ${text}`),
      ["ada: two", "ada: three"],
    );
    assert.deepEqual(welcome.members, ["ada", "bob"]);
  });
});

test("chat: bad commands get an error event and the connection stays open", async () => {
  await within(20_000, "chat errors", async (scope) => {
    const { url } = await startChat(scope);
    const client = await connect(scope, url);
    const errors = [
      "not json",
      JSON.stringify([1, 2]),
      JSON.stringify({ type: "say", text: "before joining" }),
      JSON.stringify({ type: "join", room: "lobby", nick: "<script>" }),
      JSON.stringify({ type: "shout" }),
      JSON.stringify({ type: "join", room: "lobby", nick: "ada" }),
      JSON.stringify({ type: "say", text: "x".repeat(2001) }),
      JSON.stringify({ type: "join", room: "other", nick: "ada" }),
    ];
    for (const message of errors) await client.write(message);
    await client.write(new Uint8Array([1, 2, 3]));
    const reasons: string[] = [];
    for (let i = 0; i < errors.length + 1; i++) {
      const event = await client.next();
      if (event.type === "welcome") continue;
      assert.equal(event.type, "error", JSON.stringify(event));
      reasons.push(event.reason);
    }
    assert.deepEqual(reasons, [
      "not JSON",
      "unknown message type undefined",
      "join a room first",
      "a nickname is 1 to 24 letters, digits, '_', '-' or '.'",
      'unknown message type "shout"',
      "a message is at most 2000 characters",
      "already in room lobby",
      "binary messages are not part of the chat protocol",
    ]);

    // The same nickname in the same room is refused; the client may retry.
    const other = await connect(scope, url);
    await other.send({ type: "join", room: "lobby", nick: "ada" });
    assert.deepEqual(await other.next(), {
      type: "error",
      reason: "the nickname ada is taken in lobby",
    });
    await other.send({ type: "join", room: "lobby", nick: "ada2" });
    assert.equal((await other.next()).type, "welcome");
  });
});

test("chat: a message too large for chat closes the connection with 1009", async () => {
  await within(20_000, "chat limit", async (scope) => {
    const { url } = await startChat(scope);
    const client = await connect(scope, url);
    await client.write("x".repeat(64 * 1024));
    // The server's Close carries 1009, and our client echoes it.
    assert.equal((await client.ws.closed).closeCode, 1009);
  });
});

test("chat: the heartbeat drops a client that stops answering pings", async () => {
  await within(20_000, "chat heartbeat", async (scope) => {
    const { url, hub } = await startChat(scope, {
      // ada must answer within one interval: not so short that a loaded
      // machine's stall drops her too.
      heartbeatInterval: 250,
      closeTimeout: 1000,
    });
    const { client: ada } = await join(scope, url, "lobby", "ada");
    // Our client with autoPong off: as good as dead, for the heartbeat.
    const mute = await connect(scope, url, { autoPong: false });
    await mute.send({ type: "join", room: "lobby", nick: "mute" });
    assert.equal((await mute.next()).type, "welcome");
    assert.equal((await ada.next()).nick, "mute");

    assert.deepEqual(await mute.ws.closed, {
      closeCode: ChatCloseCode.NoPong,
      reason: "no answer to ping",
    });
    const left = await ada.next();
    assert.deepEqual([left.type, left.nick, left.reason], [
      "left",
      "mute",
      "no answer to ping",
    ]);
    // ada answered every ping, and is still there.
    assert.deepEqual(hub.rooms, { lobby: ["ada"] });
  });
});

test("ChatHub drops a client that stops reading once maxQueued bytes of the room's messages wait for it, and the room goes on", async () => {
  await within(20_000, "chat slow client", async () => {
    // About eight of the room's messages (each some 60 bytes of JSON).
    const maxQueued = 512;
    const hub = new ChatHub({ maxQueued, heartbeatInterval: 0 });
    // Connections over in-memory pipes, which buffer almost nothing: a
    // reader that stops shows at once.
    const member = (nick: string) => {
      const [near, far] = duplexPair();
      const server = new WebSocketConnection(far, {
        role: "server",
        closeTimeout: 200,
      });
      void hub.accept(server);
      const client = new WebSocketConnection(near, { role: "client" });
      return { nick, server, client };
    };
    const fast = member("fast");
    const slow = member("slow");
    const opened = await Promise.all([fast.client.opened, slow.client.opened]);
    const [fastIn, slowIn] = opened.map(({ readable }) => readable.getReader());
    const [fastOut, slowOut] = opened.map(({ writable }) =>
      writable.getWriter()
    );
    const read = async (reader: typeof fastIn): Promise<Event> =>
      JSON.parse(
        (await deadline(reader.read(), 5000, "an event")).value as string,
      );

    await slowOut.write(
      JSON.stringify({ type: "join", room: "r", nick: "slow" }),
    );
    assert.equal((await read(slowIn)).type, "welcome");
    await fastOut.write(
      JSON.stringify({ type: "join", room: "r", nick: "fast" }),
    );
    assert.equal((await read(fastIn)).type, "welcome");
    // From here on, slow reads nothing.

    const limit = 200;
    let sent = 0;
    while (sent < limit && hub.rooms.r.includes("slow")) {
      const text = `m${sent++}`;
      await fastOut.write(JSON.stringify({ type: "say", text }));
      // fast gets each of its messages, slow or no slow.
      assert.equal((await read(fastIn)).text, text);
    }
    // slow went once maxQueued bytes (and the pipes' few slots) were full,
    // long before every message had been sent.
    assert.ok(
      sent > maxQueued / 100 && sent < limit / 2,
      `dropped after ${sent}`,
    );
    const left = await read(fastIn);
    assert.deepEqual([left.type, left.nick, left.reason], [
      "left",
      "slow",
      "too slow",
    ]);
    assert.deepEqual(hub.rooms, { r: ["fast"] });
    // The room goes on without it.
    await fastOut.write(JSON.stringify({ type: "say", text: "still here" }));
    assert.equal((await read(fastIn)).text, "still here");

    // Its Close waits behind the messages it does not read: the server
    // drops the transport after closeTimeout.
    const error = await slow.server.closed.then(() => null, (e) => e);
    assert.equal((error as { code?: string } | null)?.code, "close_timeout");
    hub.close();
    fast.client.close({ closeCode: 1000 });
    await fast.client.closed.catch(() => {});
  });
});

test("chat: a client that stops reading is dropped, and the server closes its socket", async () => {
  await within(30_000, "chat slow socket", async (scope) => {
    const chat = createChatServer({
      port: 0,
      heartbeatInterval: 0,
      maxQueued: 32 * 1024,
      closeTimeout: 200,
    });
    scope.defer(() => chat.close());
    const { port } = await chat.listening;
    const url = `ws://127.0.0.1:${port}/chat`;
    const connections = () =>
      new Promise<number>((resolve, reject) =>
        chat.server.getConnections((error, n) =>
          error ? reject(error) : resolve(n)
        )
      );

    // slow joins, then reads nothing: its socket's buffers fill, then
    // maxQueued.
    const slow = await connect(scope, url);
    await slow.send({ type: "join", room: "r", nick: "slow" });
    const { client: fast } = await join(scope, url, "r", "fast");
    const text = "z".repeat(2000);
    let sent = 0;
    // Loopback buffers hold a few MiB: 20000 messages of 2 kB is 40 MB.
    while (chat.hub.rooms.r.includes("slow") && sent < 20_000) {
      await fast.send({ type: "say", text });
      assert.equal((await fast.next()).type, "message");
      sent++;
    }
    const left = await fast.next();
    assert.deepEqual([left.type, left.nick, left.reason], [
      "left",
      "slow",
      "too slow",
    ]);
    // Its Close cannot get through: after closeTimeout the server drops
    // the socket, and only fast's remains.
    while (await connections() > 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.equal(await connections(), 1);
  });
});

test("parseCommand accepts the protocol's commands and nothing else", () => {
  assert.deepEqual(
    parseCommand('{"type":"join","room":"café","nick":"zoë_2"}'),
    { type: "join", room: "café", nick: "zoë_2" },
  );
  assert.deepEqual(parseCommand('{"type":"say","text":" hi "}'), {
    type: "say",
    text: " hi ",
  });
  for (
    const bad of [
      "null",
      '"text"',
      '{"type":"say","text":"   "}',
      '{"type":"say","text":7}',
      '{"type":"join","room":"","nick":"a"}',
      `{"type":"join","room":"r","nick":"${"n".repeat(25)}"}`,
    ]
  ) {
    assert.equal(parseCommand(bad).type, "invalid", bad);
  }
});

test("parseCommand shows a nickname as typed, less spaces and invisible characters, and refuses control characters and mixed scripts", () => {
  const joining = (nick: string) =>
    parseCommand(JSON.stringify({ type: "join", room: "r", nick }));
  for (
    const [typed, shown] of [
      [" ada ", "ada"],
      ["a\u200Bda", "ada"], // a zero-width space
      ["\u202Eada\u2066", "ada"], // Bidi controls
      ["ADA", "ADA"],
      ["zoe\u0308", "zo\u00EB"], // composed
      ["ada_2.0", "ada_2.0"], // digits and punctuation belong to no script
      ["\u0430\u0501\u0430", "\u0430\u0501\u0430"], // all Cyrillic
      ["\u5C71\u7530\u30E6\u30AD", "\u5C71\u7530\u30E6\u30AD"], // Han and Katakana
    ]
  ) {
    assert.deepEqual(
      joining(typed),
      { type: "join", room: "r", nick: shown },
      JSON.stringify(typed),
    );
  }
  for (
    const [typed, reason] of [
      ["a\u0000da", "a nickname cannot contain control characters"],
      ["ada\n", "a nickname cannot contain control characters"],
      ["\u0430da", "a nickname cannot mix scripts: Cyrillic and Latin"],
      ["ad\u03B1", "a nickname cannot mix scripts: Latin and Greek"],
      ["ada\u5C71", "a nickname cannot mix scripts: Latin and another script"],
      [
        "\u200B\u200D",
        "a nickname is 1 to 24 letters, digits, '_', '-' or '.'",
      ],
    ]
  ) {
    assert.deepEqual(
      joining(typed),
      { type: "invalid", reason },
      JSON.stringify(typed),
    );
  }
});

test("nicknameKey makes case variants, look-alikes and invisible characters collide, and nothing else", () => {
  for (
    const [a, b] of [
      ["ada", "ADA"],
      ["ada", "a\u200Bda"],
      ["ada", " ada "],
      ["ada", "\uFF41\uFF44\uFF41"], // full-width
      ["ada", "\u{1D41A}\u{1D41D}\u{1D41A}"], // mathematical bold
      ["ada", "\u0430\u0501\u0430"], // Cyrillic
      ["ada", "\u0430da"], // mixed: parseCommand refuses it, but the key holds
      ["paypal", "\u0440\u0430\u0443\u0440\u0430\u04CF"], // Cyrillic
      ["NEO", "\u039D\u0395\u039F"], // Greek capitals
      ["NEO", "\u03BD\u03B5\u03BF"], // the same, small
      ["bob", "b0b"],
      ["alex", "a1ex"],
      ["alex", "aIex"],
      ["moe", "rnoe"],
      ["zo\u00EB", "zoe\u0308"],
      ["zo\u00EB", "z\u043E\u0451"], // Cyrillic o and yo
    ]
  ) {
    assert.equal(
      nicknameKey(b),
      nicknameKey(a),
      `${a} and ${JSON.stringify(b)}`,
    );
  }
  for (
    const [a, b] of [
      ["ada", "adb"],
      ["ada", "ana"],
      ["ada", "\u00E1da"],
      ["ada", "ada2"],
      ["bob", "bop"],
    ]
  ) {
    assert.notEqual(nicknameKey(b), nicknameKey(a), `${a} and ${b}`);
  }
});

test("ChatHub refuses a nickname that looks like one in the room as taken, and shows each as typed", async () => {
  await within(20_000, "chat look-alikes", async (scope) => {
    const hub = new ChatHub({ heartbeatInterval: 0 });
    scope.defer(() => hub.close());
    const ada = await hubClient(scope, hub);
    assert.equal((await ada.join("lobby", "ada")).type, "welcome");

    const other = await hubClient(scope, hub);
    for (
      const [nick, reason] of [
        [
          "\u0430\u0501\u0430",
          "the nickname \u0430\u0501\u0430 is taken in lobby: it looks like ada",
        ],
        ["ADA", "the nickname ADA is taken in lobby: it looks like ada"],
        ["a\u200Bda", "the nickname ada is taken in lobby"],
        ["ada ", "the nickname ada is taken in lobby"],
        ["\u0430da", "a nickname cannot mix scripts: Cyrillic and Latin"],
      ]
    ) {
      assert.deepEqual(
        await other.join("lobby", nick),
        { type: "error", reason },
        JSON.stringify(nick),
      );
    }
    const welcome = await other.join("lobby", "Bob ");
    assert.deepEqual([welcome.type, welcome.nick, welcome.members], [
      "welcome",
      "Bob",
      ["ada", "Bob"],
    ]);
    assert.equal((await ada.next()).nick, "Bob");
    assert.deepEqual(hub.rooms, { lobby: ["ada", "Bob"] });
  });
});

test("ChatHub refuses a client past MAX_ROOMS_PER_CLIENT rooms, and counts each until its last member leaves", async () => {
  await within(20_000, "chat rooms per client", async (scope) => {
    const hub = new ChatHub({ heartbeatInterval: 0 });
    scope.defer(() => hub.close());
    const host = "192.0.2.1";
    const created: HubClient[] = [];
    for (let i = 1; i <= MAX_ROOMS_PER_CLIENT; i++) {
      const client = await hubClient(scope, hub, host);
      assert.equal((await client.join(`r${i}`, "ada")).type, "welcome");
      created.push(client);
    }
    const refused = (room: string) => ({
      type: "error",
      reason:
        `cannot create room ${room}: one client may have at most ${MAX_ROOMS_PER_CLIENT} rooms open`,
    });
    const late = await hubClient(scope, hub, host);
    assert.deepEqual(await late.join("r4", "ada"), refused("r4"));
    // Joining a room is not creating one.
    assert.equal((await late.join("r1", "bob")).type, "welcome");
    // Another client has rooms of its own.
    const eve = await hubClient(scope, hub, "192.0.2.2");
    assert.equal((await eve.join("r4", "eve")).type, "welcome");

    // r1 counts against its creator while anyone is in it...
    await created[0].leave();
    assert.deepEqual(hub.rooms.r1, ["bob"]);
    const again = await hubClient(scope, hub, host);
    assert.deepEqual(await again.join("r5", "ada"), refused("r5"));
    // ...and closes when the last one leaves, which frees its place.
    await late.leave();
    await eventually(() => !("r1" in hub.rooms), "r1 closes");
    assert.equal((await again.join("r5", "ada")).type, "welcome");
    assert.deepEqual(hub.rooms, {
      r2: ["ada"],
      r3: ["ada"],
      r4: ["eve"],
      r5: ["ada"],
    });
  });
});

test("ChatHub: a hundred idle connections from one client, each creating a room, leave room for a newcomer", async () => {
  await within(30_000, "chat idle flood", async (scope) => {
    // The default maxRooms: 100.
    const hub = new ChatHub({ heartbeatInterval: 0 });
    scope.defer(() => hub.close());
    const flood = await Promise.all(
      Array.from({ length: 100 }, () => hubClient(scope, hub, "192.0.2.66")),
    );
    const answers = await Promise.all(
      flood.map((client, i) => client.join(`flood${i}`, "bot")),
    );
    const welcomed = answers.filter(({ type }) => type === "welcome");
    assert.equal(welcomed.length, MAX_ROOMS_PER_CLIENT);
    assert.equal(Object.keys(hub.rooms).length, MAX_ROOMS_PER_CLIENT);

    const newcomer = await hubClient(scope, hub, "192.0.2.7");
    assert.equal((await newcomer.join("lobby", "ada")).type, "welcome");
  });
});

test("ChatHub gives a newcomer's room the place of the one quiet longest, once every room is taken and that one has been idle for roomIdleTimeout", async () => {
  await within(20_000, "chat idle rooms", async (scope) => {
    let clock = 0;
    const hub = new ChatHub({
      heartbeatInterval: 0,
      maxRooms: 3,
      roomIdleTimeout: 60_000,
      now: () => clock,
    });
    scope.defer(() => hub.close());
    // Three clients, a room each: r1 at 0 s, r2 at 1 s, r3 at 2 s.
    const holders: HubClient[] = [];
    for (let i = 1; i <= 3; i++) {
      clock = (i - 1) * 1000;
      const client = await hubClient(scope, hub, `192.0.2.${i}`);
      assert.equal((await client.join(`r${i}`, "ada")).type, "welcome");
      holders.push(client);
    }
    // r1 hears a message at 5 s: r2 is now the quietest.
    clock = 5000;
    await holders[0].send({ type: "say", text: "still here" });
    assert.equal((await holders[0].next()).text, "still here");

    const newcomer = await hubClient(scope, hub, "192.0.2.9");
    clock = 60_000;
    assert.deepEqual(await newcomer.join("new", "eve"), {
      type: "error",
      reason:
        "cannot create room new: all 3 rooms are in use; join one, or try again later",
    });
    clock = 61_000;
    assert.equal((await newcomer.join("new", "eve")).type, "welcome");
    assert.deepEqual(await holders[1].connection.closed, {
      closeCode: ChatCloseCode.RoomClosed,
      reason: "room closed: idle while the server was full",
    });
    assert.deepEqual(hub.rooms, { r1: ["ada"], r3: ["ada"], new: ["eve"] });
  });
});

test("ChatHub: a join that finds the room's only other member too slow still joins the room", async () => {
  await within(30_000, "chat join past a slow member", async () => {
    const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
    let joinedPastSlow = 0;
    // The slow member's backlog grows a message at a time, until the
    // "joined" notice is what pushes it past maxQueued.
    for (let backlog = 1; backlog <= 14; backlog++) {
      const hub = new ChatHub({ maxQueued: 600, heartbeatInterval: 0 });
      const open = async () => {
        const [near, far] = duplexPair();
        void hub.accept(
          new WebSocketConnection(far, { role: "server", closeTimeout: 100 }),
        );
        const client = new WebSocketConnection(near, { role: "client" });
        const { readable, writable } = await client.opened;
        return { reader: readable.getReader(), writer: writable.getWriter() };
      };
      const slow = await open();
      await slow.writer.write(
        JSON.stringify({ type: "join", room: "r", nick: "slow" }),
      );
      await slow.reader.read(); // its welcome; then it reads no more
      for (let i = 0; i < backlog; i++) {
        await slow.writer.write(JSON.stringify({ type: "say", text: "x" }));
      }
      await pause(20);
      if (!hub.rooms.r?.includes("slow")) {
        hub.close();
        continue;
      }
      const newcomer = await open();
      await newcomer.writer.write(
        JSON.stringify({ type: "join", room: "r", nick: "new" }),
      );
      const welcome = JSON.parse(
        (await newcomer.reader.read()).value as string,
      );
      assert.equal(welcome.type, "welcome");
      // In the room the hub lists, whatever became of the slow member.
      assert.ok(hub.rooms.r?.includes("new"), JSON.stringify(hub.rooms));
      if (!hub.rooms.r.includes("slow")) joinedPastSlow++;
      hub.close();
    }
    assert.ok(joinedPastSlow > 0, "no join found the slow member too slow");
  });
});
