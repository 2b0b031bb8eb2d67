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
import type { ChatCluster } from "./hub.ts";
import type { ChatMessage } from "./protocol.ts";
import { redisBus } from "./redis_bus.ts";

/** How long an instance counts as alive after its last heartbeat. */
export const TTL_MS = 6000;
/** How often an instance says it is alive. */
export const HEARTBEAT_MS = 2000;
/** How long a first connection to Redis may take. */
const CONNECT_MS = 5000;
// A command Redis has not answered by then counts as failed (a stalled
// Redis, not a refused one): the hub goes on alone.
const COMMAND_MS = 2000;
// Commands waiting for an answer, at most: past it, new ones fail at once,
// so a stalled Redis cannot make the instance queue without bound.
const MAX_PENDING = 1000;
// A room's history outlives its last member by this much.
const HISTORY_MS = 7 * 24 * 3600 * 1000;

type Client = ReturnType<typeof createClient>;

/** A cluster over Redis; `close()` leaves it (its key goes at once). */
export interface RedisCluster extends ChatCluster {
  close(): Promise<void>;
}

// Claims a nickname: free, held by this instance, or held by one that is
// no longer alive, it is taken; held by a live one, its nick comes back.
// Atomic, so two instances cannot both take a dead instance's name.
const CLAIM = `
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local holder = cjson.decode(held)
  if holder[2] ~= ARGV[3] and redis.call('EXISTS', ARGV[4] .. holder[2]) == 1 then
    return holder[1]
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[5])
return false`;

// Deletes a field only if it still holds what was read.
const DELETE_IF = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0`;

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
  const entry = (nick: string) => JSON.stringify([nick, instance]);
  // Alive from the start: a claim made before the first heartbeat holds.
  await client.set(alive(instance), "1", { PX: TTL_MS });

  // Every command goes through here: bounded in number and in time.
  let pending = 0;
  function run<T>(command: () => Promise<T>): Promise<T> {
    if (pending >= MAX_PENDING) {
      return Promise.reject(new Error("Redis is not keeping up"));
    }
    pending++;
    let timeout: ReturnType<typeof setTimeout> | undefined;
    const answered = command();
    answered.catch(() => {}).finally(() => pending--);
    return Promise.race([
      answered,
      new Promise<never>((_, reject) => {
        timeout = setTimeout(
          () =>
            reject(new Error(`Redis did not answer within ${COMMAND_MS} ms`)),
          COMMAND_MS,
        );
      }),
    ]).finally(() => clearTimeout(timeout));
  }

  // Which of these instances are alive (this one is).
  async function living(ids: Iterable<string>): Promise<Set<string>> {
    const unique = [...new Set(ids)].filter((id) => id !== instance);
    const found = new Set([instance]);
    if (unique.length === 0) return found;
    const values = await run(() => client.mGet(unique.map(alive)));
    unique.forEach((id, i) => values[i] !== null && found.add(id));
    return found;
  }

  const deleteIf = (room: string, key: string, value: string) =>
    run(() =>
      client.eval(DELETE_IF, {
        keys: [membersKey(room)],
        arguments: [key, value],
      })
    ) as Promise<number>;

  const bus = redisBus(
    {
      publish: (channel, message) =>
        run(() => client.publish(channel, message)),
      subscribe: (...args) => subscriber.subscribe(...args),
      unsubscribe: (...args) => subscriber.unsubscribe(...args),
    },
    subscriber as never,
  );
  return {
    bus,
    async claim(room, key, nick) {
      const holder = await run(() =>
        client.eval(CLAIM, {
          keys: [membersKey(room), "chat:rooms"],
          arguments: [key, entry(nick), instance, "chat:alive:", room],
        })
      );
      return typeof holder === "string" ? holder : null;
    },
    async release(room, key) {
      const held = await run(() => client.hGet(membersKey(room), key));
      if (held !== null && JSON.parse(held)[1] === instance) {
        await deleteIf(room, key, held);
      }
    },
    async members(room) {
      const all = await run(() => client.hGetAll(membersKey(room)));
      const entries = Object.values(all).map((v) =>
        JSON.parse(v) as [string, string]
      );
      const up = await living(entries.map(([, id]) => id));
      return entries.filter(([, id]) => up.has(id)).map(([nick]) => nick);
    },
    async record(room, message: ChatMessage, size) {
      await run(() =>
        client.multi()
          .rPush(historyKey(room), JSON.stringify(message))
          .lTrim(historyKey(room), -size, -1)
          .pExpire(historyKey(room), HISTORY_MS)
          .exec()
      );
    },
    async history(room, size) {
      const list = await run(() => client.lRange(historyKey(room), -size, -1));
      return list.map((item) => JSON.parse(item) as ChatMessage);
    },
    async heartbeat(here) {
      await run(() => client.set(alive(instance), "1", { PX: TTL_MS }));
      // Every room with members anywhere, and ours.
      const rooms = new Set([
        ...await run(() => client.sMembers("chat:rooms")),
        ...here().members.keys(),
      ]);
      const names = [...rooms];
      const tables = names.length === 0 ? [] : await run(() => {
        const batch = client.multi();
        for (const room of names) batch.hGetAll(membersKey(room));
        return batch.exec();
      }) as unknown as Record<string, string>[];
      const ids = tables.flatMap((table) =>
        Object.values(table).map((v) => (JSON.parse(v) as [string, string])[1])
      );
      const up = await living(ids);
      // Who is here now, read after every await above: a member that left
      // meanwhile has been released on this same connection, before the
      // writes below.
      const now = here();
      const departed: { room: string; nick: string; reason: string }[] = [];
      const writes = client.multi();
      let writing = false;
      for (const [i, room] of names.entries()) {
        const table = tables[i] ?? {};
        const ours = now.members.get(room);
        let left = 0;
        for (const [key, value] of Object.entries(table)) {
          const [nick, id] = JSON.parse(value) as [string, string];
          // Ours, but gone (it left while Redis was away): or of an
          // instance that died. Whoever deletes it says it left.
          const stale = id === instance
            ? !ours?.has(key) && !now.claiming.has(`${room}\n${key}`)
            : !up.has(id);
          if (stale && await deleteIf(room, key, value) === 1) {
            departed.push({
              room,
              nick,
              reason: id === instance ? "left" : "connection lost",
            });
          } else left++;
        }
        // Ours that Redis does not have (it restarted empty, say).
        for (const [key, nick] of ours ?? []) {
          if (table[key] !== entry(nick)) {
            writes.hSet(membersKey(room), key, entry(nick));
            writing = true;
            left++;
          }
        }
        if (left === 0) writes.sRem("chat:rooms", room);
        else writes.sAdd("chat:rooms", room);
        writing = true;
      }
      if (writing) await run(() => writes.exec());
      return departed;
    },
    async close() {
      await run(() => client.del(alive(instance))).catch(() => {});
      await Promise.all([client.close(), subscriber.close()]);
    },
  };
}
