// The chat across instances, over Redis (node-redis, the `redis` package):
// what the hub's ChatCluster needs. Rooms' messages and notices go over
// pub/sub (redis_bus.ts); who is in each room and each room's recent
// history are kept in Redis, so they span every instance:
//
//   chat:alive:<instance>   "1", expiring TTL_MS after its last heartbeat
//   chat:members:<room>     hash: nickname key -> JSON [nick, instance]
//   chat:rooms              set: rooms with members somewhere
//   chat:history:<room>     list: the newest messages, as JSON, capped
//
// An instance that dies (kill -9) stops its heartbeat: its key expires
// within TTL_MS, and the next heartbeat of another instance with members
// in the same room removes its members there and says they left. So a
// dead instance's members are gone from every list within TTL_MS plus one
// heartbeat (HEARTBEAT_MS). Every heartbeat also writes this instance's
// own members again, so a Redis that restarted empty is repaired within
// one.
//
// History is a capped list rather than a stream: each room needs only its
// newest messages for newcomers; messages themselves go over pub/sub, so
// what is published while an instance is cut off from Redis does not reach
// its members (a stream read from a position would let it catch up).

import { createClient } from "redis";
import type { BroadcastBus } from "../../src/broadcast_bus.ts";
import type { ChatCluster } from "./hub.ts";
import type { ChatMessage } from "./protocol.ts";
import { redisBus } from "./redis_bus.ts";

/** How long an instance counts as alive after its last heartbeat. */
export const TTL_MS = 6000;
/** How often an instance says it is alive. */
export const HEARTBEAT_MS = 2000;
/** How long a first connection to Redis may take. */
const CONNECT_MS = 5000;

type Client = ReturnType<typeof createClient>;

/** A cluster over Redis; `close()` leaves it (its key goes at once). */
export interface RedisCluster extends ChatCluster {
  close(): Promise<void>;
}

/** A cluster over the Redis at `url`; rejects if it cannot connect. */
export async function redisCluster(
  url: string,
  options: { onError?: (error: unknown) => void } = {},
): Promise<RedisCluster> {
  const onError = options.onError ??
    ((error: unknown) => console.error(`redis: ${error}`));
  // No offline queue: while Redis is away, commands fail at once (the hub
  // falls back to this instance alone) instead of piling up.
  const client: Client = createClient({
    url,
    disableOfflineQueue: true,
    socket: {
      reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, 5000),
    },
  });
  const subscriber: Client = client.duplicate();
  let down = false;
  for (const c of [client, subscriber]) {
    c.on("error", (error) => {
      if (!down) onError(error);
      down = true;
    });
    c.on("ready", () => {
      if (down) console.error("redis: connected again");
      down = false;
    });
  }
  // node-redis retries a first connection for ever: give up after a while.
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      Promise.all([client.connect(), subscriber.connect()]),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer within ${CONNECT_MS} ms`)),
          CONNECT_MS,
        );
      }),
    ]);
  } catch (error) {
    for (const c of [client, subscriber]) c.destroy();
    throw error;
  } finally {
    clearTimeout(timer);
  }
  const instance: string = crypto.randomUUID();
  const alive = (id: string) => `chat:alive:${id}`;
  const membersKey = (room: string) => `chat:members:${room}`;
  const historyKey = (room: string) => `chat:history:${room}`;

  // Which instances are alive, asked once per call.
  async function living(ids: Iterable<string>): Promise<Set<string>> {
    const unique = [...new Set(ids)].filter((id) => id !== instance);
    const found = new Set([instance]);
    if (unique.length === 0) return found;
    const values = await client.mGet(unique.map(alive));
    unique.forEach((id, i) => values[i] !== null && found.add(id));
    return found;
  }

  async function entries(room: string) {
    const all = await client.hGetAll(membersKey(room));
    return Object.entries(all).map(([key, value]) => {
      const [nick, id] = JSON.parse(value) as [string, string];
      return { key, nick, id };
    });
  }

  const bus: BroadcastBus = redisBus(client as never, subscriber as never);
  return {
    bus,
    async claim(room, key, nick) {
      const value = JSON.stringify([nick, instance]);
      if (await client.hSetNX(membersKey(room), key, value)) {
        await client.sAdd("chat:rooms", room);
        return null;
      }
      const held = await client.hGet(membersKey(room), key);
      if (held !== null) {
        const [holder, id] = JSON.parse(held) as [string, string];
        if ((await living([id])).has(id)) return holder;
      }
      // Its instance is gone: the name is free.
      await client.hSet(membersKey(room), key, value);
      await client.sAdd("chat:rooms", room);
      return null;
    },
    async release(room, key) {
      const held = await client.hGet(membersKey(room), key);
      if (held !== null && JSON.parse(held)[1] === instance) {
        await client.hDel(membersKey(room), key);
      }
    },
    async members(room) {
      const all = await entries(room);
      const up = await living(all.map((e) => e.id));
      return all.filter((e) => up.has(e.id)).map((e) => e.nick);
    },
    async record(room, message: ChatMessage, size) {
      await client.multi()
        .rPush(historyKey(room), JSON.stringify(message))
        .lTrim(historyKey(room), -size, -1)
        .exec();
    },
    async history(room, size) {
      const list = await client.lRange(historyKey(room), -size, -1);
      return list.map((item) => JSON.parse(item) as ChatMessage);
    },
    async heartbeat(local) {
      await client.set(alive(instance), "1", { PX: TTL_MS });
      const departed: { room: string; nick: string }[] = [];
      for (const [room, members] of local) {
        for (const [key, nick] of members) {
          await client.hSet(
            membersKey(room),
            key,
            JSON.stringify([nick, instance]),
          );
        }
        await client.sAdd("chat:rooms", room);
        // Members of instances that have died, in the rooms we are in:
        // whoever removes one first says it left.
        const all = await entries(room);
        const up = await living(all.map((e) => e.id));
        for (const { key, nick, id } of all) {
          if (up.has(id)) continue;
          if (await client.hDel(membersKey(room), key) === 1) {
            departed.push({ room, nick });
          }
        }
      }
      return departed;
    },
    async close() {
      await client.del(alive(instance)).catch(() => {});
      await Promise.all([client.close(), subscriber.close()]);
    },
  };
}
