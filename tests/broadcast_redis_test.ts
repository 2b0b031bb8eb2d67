// Broadcast across instances over a real Redis (Debian's redis-server,
// started by the test; node-redis as the client, through the chat demo's
// redisBus): what one instance sends reaches the others, with one Redis
// PUBLISH per message; while Redis is down each instance keeps serving its
// own members, and once it is back the instances hear each other again.

import assert from "node:assert/strict";
import { createClient } from "redis";
import { redisBus } from "../examples/chat/redis_bus.ts";
import { Broadcast } from "../src/broadcast.ts";
import { eventually, memoryMember } from "./_helpers.ts";
import { interopTest } from "./_interop.ts";
import { missingRedis, publishCount, startRedis } from "./_redis.ts";

type Client = ReturnType<typeof createClient>;

// An instance: two clients (a subscriber can do nothing else), and a
// Broadcast on them. No offline queue: a publish while Redis is away
// fails at once instead of piling up.
async function instance(url: string, errors: unknown[]) {
  const publisher: Client = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      reconnectStrategy: (retries) => Math.min(20 * 2 ** retries, 500),
    },
  });
  publisher.on("error", () => {}); // reconnecting; publish() reports
  const subscriber: Client = publisher.duplicate();
  subscriber.on("error", () => {});
  await Promise.all([publisher.connect(), subscriber.connect()]);
  const room = new Broadcast({
    bus: redisBus(publisher as never, subscriber as never),
    topic: "chat:lobby",
    onBusError: (error) => errors.push(error),
  });
  await room.ready;
  return {
    room,
    async close() {
      await room.close();
      await Promise.all([publisher.close(), subscriber.close()]);
    },
  };
}

const member = memoryMember;

interopTest(
  "instances joined over Redis deliver each other's broadcasts, one PUBLISH each, and survive Redis going away",
  { missing: missingRedis() },
  async () => {
    const redis = await startRedis();
    const errors: unknown[] = [];
    const a = await instance(redis.url, errors);
    const b = await instance(redis.url, errors);
    const members = await Promise.all([member(), member(), member()]);
    const [a1, b1, b2] = members;
    try {
      a.room.add(a1.server);
      b.room.add(b1.server).add(b2.server);

      const bytes = new Uint8Array([1, 2, 3]);
      assert.equal(a.room.send("hello from a"), 1);
      assert.equal(b.room.send(bytes), 2);
      await eventually(
        () => a1.got.length === 2 && b1.got.length === 2 && b2.got.length === 2,
        "delivered everywhere",
        5000,
      );
      for (const { got } of members) {
        assert.ok(got.includes("hello from a"));
        assert.deepEqual(got.find((m) => m instanceof Uint8Array), bytes);
      }
      assert.equal(
        await publishCount(redis.url),
        2,
        "one PUBLISH per broadcast",
      );

      // Redis goes away: each instance still serves its own members, and
      // says so.
      await redis.stop();
      assert.equal(a.room.send("while redis is down"), 1);
      await eventually(() => a1.got.length === 3, "delivered here", 5000);
      await eventually(() => errors.length > 0, "the failure reported", 5000);
      assert.equal(b1.got.length, 2, "not there: pub/sub drops it");

      // Back: the clients reconnect and resubscribe by themselves.
      await redis.start();
      // Sent until heard: until then, a publish fails or is not heard.
      const heard = async (
        from: typeof a,
        got: unknown[],
        text: string,
      ) => {
        const deadline = Date.now() + 10_000;
        while (!got.includes(text)) {
          assert.ok(Date.now() < deadline, `not heard again: ${text}`);
          from.room.send(text);
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      };
      await heard(b, a1.got, "b is back");
      await heard(a, b1.got, "a is back");
    } finally {
      for (const { client } of members) client.close();
      await Promise.all(
        members.map(({ server }) => server.closed.catch(() => {})),
      );
      await a.close().catch(() => {});
      await b.close().catch(() => {});
      await redis.close();
    }
  },
);
