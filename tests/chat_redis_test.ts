// The chat across instances over a real Redis (Debian's redis-server,
// started by the test): two chat servers share rooms, members, history and
// messages; an instance killed with SIGKILL leaves the others' member lists
// within the cluster's bound; while Redis is away each instance keeps its
// own members talking, and once it is back the instances hear each other.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { redisCluster } from "../examples/chat/redis_cluster.ts";
import { HEARTBEAT_MS, TTL_MS } from "../examples/chat/redis_cluster.ts";
import {
  type ChatServerOptions,
  createChatServer,
} from "../examples/chat/server.ts";
import { WebSocketStream } from "../src/client.ts";
import { deadline, interopTest, type Scope } from "./_interop.ts";
import { createClient } from "redis";
import {
  missingRedis,
  redisProxy,
  type RedisServer,
  startRedis,
} from "./_redis.ts";

// deno-lint-ignore no-explicit-any
type Event = Record<string, any>;

const missing = missingRedis();

// A test with a Redis of its own, stopped at the end.
function redisTest(
  name: string,
  body: (scope: Scope, redis: RedisServer) => Promise<void>,
  timeout?: number,
): void {
  interopTest(name, { missing }, async (scope) => {
    const redis = await startRedis();
    scope.defer(() => redis.close());
    await body(scope, redis);
  }, timeout);
}

async function chatServer(
  scope: Scope,
  redis: { url: string },
  options: ChatServerOptions = {},
) {
  const cluster = await redisCluster(redis.url, { onError: () => {} });
  const chat = createChatServer({
    port: 0,
    heartbeatInterval: 0,
    cluster,
    ...options,
  });
  scope.defer(async () => {
    await chat.close();
    await cluster.close().catch(() => {});
  });
  const { port } = await chat.listening;
  return `ws://127.0.0.1:${port}/chat`;
}

interface Client {
  say(text: string): Promise<void>;
  /** The next event that is not about someone joining, unless asked. */
  next(): Promise<Event>;
  /** Events until one matches. */
  until(match: (event: Event) => boolean, ms?: number): Promise<Event>;
  close(): void;
}

async function join(
  scope: Scope,
  url: string,
  room: string,
  nick: string,
): Promise<{ client: Client; welcome: Event }> {
  const ws = new WebSocketStream(url);
  const close = () => {
    try {
      ws.close({ closeCode: 1000 });
    } catch {
      // Closed already.
    }
  };
  scope.defer(async () => {
    close();
    await ws.closed.catch(() => {});
  });
  const { readable, writable } = await deadline(ws.opened, 5000, "open");
  const reader = readable.getReader();
  const writer = writable.getWriter();
  // A read that timed out is still the next one: its event must not be
  // lost to a second read.
  let pending: ReturnType<typeof reader.read> | null = null;
  const next = async (ms = 5000) => {
    pending ??= reader.read();
    const { done, value } = await deadline(pending, ms, "an event");
    pending = null;
    if (done) throw new Error("the connection ended");
    return JSON.parse(value as string) as Event;
  };
  await writer.write(JSON.stringify({ type: "join", room, nick }));
  const welcome = await next();
  const client: Client = {
    say: (text) => writer.write(JSON.stringify({ type: "say", text })),
    next: () => next(),
    async until(match, ms = 5000) {
      const end = Date.now() + ms;
      for (;;) {
        const event = await next(Math.max(1, end - Date.now()));
        if (match(event)) return event;
      }
    },
    close,
  };
  return { client, welcome };
}

redisTest(
  "chat instances sharing a Redis share rooms, members, history and messages",
  async (scope, redis) => {
    const one = await chatServer(scope, redis);
    const two = await chatServer(scope, redis);

    const { client: ada, welcome: first } = await join(
      scope,
      one,
      "lobby",
      "ada",
    );
    assert.deepEqual([first.type, first.members], ["welcome", ["ada"]]);
    const { client: bob, welcome } = await join(scope, two, "lobby", "bob");
    assert.equal(welcome.type, "welcome");
    assert.deepEqual(welcome.members.sort(), ["ada", "bob"]);
    assert.equal((await ada.until((e) => e.type === "joined")).nick, "bob");

    await ada.say("hi from one");
    assert.equal(
      (await bob.until((e) => e.type === "message")).text,
      "hi from one",
    );
    await bob.say("hello from two");
    assert.equal(
      (await ada.until((e) => e.text === "hello from two")).nick,
      "bob",
    );

    // A nickname is one person's across instances, whatever its case.
    for (const nick of ["ada", "Ada"]) {
      const { welcome: refused } = await join(scope, two, "lobby", nick);
      assert.equal(refused.type, "error");
      assert.match(refused.reason, /is taken/);
    }

    // A newcomer on either instance gets the room's history, in order.
    const { welcome: late } = await join(scope, one, "lobby", "cy");
    assert.deepEqual(
      late.history.map((m: Event) => `${m.nick}: ${m.text}`),
      ["ada: hi from one", "bob: hello from two"],
    );
    assert.deepEqual(late.members.sort(), ["ada", "bob", "cy"]);

    bob.close();
    const left = await ada.until((e) => e.type === "left");
    assert.deepEqual([left.nick, left.reason], ["bob", "left"]);
  },
);

redisTest(
  "an instance killed with SIGKILL leaves the others' member lists within the cluster's bound",
  async (scope, redis) => {
    const one = await chatServer(scope, redis);
    // The other instance in a process of its own, to kill.
    // The runtime that runs this file runs it.
    const run = "Deno" in globalThis ? ["run", "-A"] : [];
    const child = spawn(process.execPath, [
      ...run,
      fileURLToPath(new URL("../examples/chat/main.ts", import.meta.url)),
      "--port",
      "0",
      "--redis",
      redis.url,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    scope.defer(() => child.kill("SIGKILL"));
    const port = await new Promise<number>((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (data: Uint8Array) => {
        out += new TextDecoder().decode(data);
        const match = /chat server: http:\/\/[^:]+:(\d+)\//.exec(out);
        if (match) resolve(Number(match[1]));
      });
      child.once("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
    });
    const { client: ada } = await join(scope, one, "lobby", "ada");
    const { welcome } = await join(
      scope,
      `ws://127.0.0.1:${port}/chat`,
      "lobby",
      "ghost",
    );
    assert.deepEqual(welcome.members.sort(), ["ada", "ghost"]);
    await ada.until((e) => e.type === "joined" && e.nick === "ghost");

    const killed = Date.now();
    child.kill("SIGKILL");
    const bound = TTL_MS + 2 * HEARTBEAT_MS;
    const left = await ada.until((e) => e.type === "left", bound + 2000);
    assert.deepEqual([left.nick, left.reason], ["ghost", "connection lost"]);
    assert.ok(Date.now() - killed <= bound + 1000, `${Date.now() - killed} ms`);
    const { welcome: after } = await join(scope, one, "lobby", "cy");
    assert.deepEqual(after.members.sort(), ["ada", "cy"]);
  },
  60_000,
);

redisTest(
  "while Redis is away each instance keeps its own members talking, and then they hear each other again",
  async (scope, redis) => {
    const one = await chatServer(scope, redis);
    const two = await chatServer(scope, redis);
    const { client: ada } = await join(scope, one, "lobby", "ada");
    const { client: amy } = await join(scope, one, "lobby", "amy");
    const { client: bob } = await join(scope, two, "lobby", "bob");
    await ada.until((e) => e.type === "joined" && e.nick === "bob");

    await redis.stop();
    await ada.say("while redis is down");
    assert.equal(
      (await amy.until((e) => e.type === "message")).text,
      "while redis is down",
    );

    await redis.start();
    // Until the instances are back on Redis, a message may not cross.
    const end = Date.now() + 15_000;
    for (let i = 0;; i++) {
      assert.ok(Date.now() < end, "one and two did not hear each other again");
      await ada.say(`back? ${i}`);
      const heard = await bob.until(
        (e) => e.type === "message" && e.text.startsWith("back?"),
        500,
      ).catch(() => null);
      if (heard !== null) break;
    }
  },
  60_000,
);

redisTest(
  "a member who leaves while its instance is cut off from Redis is said to have left once it is back, and its name is free",
  async (scope, redis) => {
    const proxy = await redisProxy(redis.url);
    scope.defer(() => proxy.close());
    const one = await chatServer(scope, proxy);
    const two = await chatServer(scope, redis);
    const { client: alice } = await join(scope, one, "r", "alice");
    const { client: bob } = await join(scope, two, "r", "bob");
    await alice.until((e) => e.type === "joined" && e.nick === "bob");

    proxy.cut();
    await new Promise((resolve) => setTimeout(resolve, 200));
    alice.close(); // its "left" and its release fail: one has no Redis
    await new Promise((resolve) => setTimeout(resolve, 300));
    proxy.restore();
    const left = await bob.until((e) => e.type === "left", 10_000);
    assert.deepEqual([left.nick, left.reason], ["alice", "left"]);
    const { welcome } = await join(scope, one, "r", "alice");
    assert.equal(welcome.type, "welcome", JSON.stringify(welcome));
    assert.deepEqual(welcome.members.sort(), ["alice", "bob"]);
  },
  30_000,
);

redisTest(
  "two instances claiming a dead instance's nickname at once: one gets it",
  async (scope, redis) => {
    const raw = createClient({ url: redis.url });
    await raw.connect();
    scope.defer(() => raw.close());
    await raw.hSet("chat:members:r", "ann", JSON.stringify(["ann", "gone"]));
    const clusters = await Promise.all(
      [0, 1].map(() => redisCluster(redis.url, { onError: () => {} })),
    );
    scope.defer(() => Promise.all(clusters.map((c) => c.close())));
    for (let round = 0; round < 20; round++) {
      const key = `ann${round}`;
      await raw.hSet("chat:members:r", key, JSON.stringify(["ann", "gone"]));
      const answers = await Promise.all(
        clusters.map((c) => c.claim("r", key, "ann")),
      );
      assert.equal(answers.filter((a) => a === null).length, 1, `${answers}`);
    }
  },
);

redisTest(
  "an idle room closed on one instance to make way tells the others its members left",
  async (scope, redis) => {
    const one = await chatServer(scope, redis, {
      maxRooms: 1,
      roomIdleTimeout: 0,
    });
    const two = await chatServer(scope, redis);
    const { client: ann } = await join(scope, one, "r", "ann");
    const { client: amy } = await join(scope, one, "r", "amy");
    const { client: bob } = await join(scope, two, "r", "bob");
    await ann.until((e) => e.type === "joined" && e.nick === "bob");
    await amy.until((e) => e.type === "joined" && e.nick === "bob");
    // A new room on one takes the place of r there.
    const { welcome } = await join(scope, one, "elsewhere", "zed");
    assert.equal(welcome.type, "welcome");
    const gone = new Set<string>();
    while (gone.size < 2) {
      const left = await bob.until((e) => e.type === "left");
      assert.equal(left.reason, "room closed");
      gone.add(left.nick);
    }
    assert.deepEqual([...gone].sort(), ["amy", "ann"]);
    // Those here are closed together: neither hears the other leave.
    const heard: Event[] = [];
    await ann.until((e) => {
      heard.push(e);
      return false;
    }, 1000).catch(() => {});
    assert.deepEqual(heard.filter((e) => e.type === "left"), []);
  },
);
