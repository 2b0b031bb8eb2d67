// A broadcast server: every message a client sends goes to every other
// connected client, unchanged, text as text and binary as binary, framed
// once for all of them (Broadcast), over the node:http upgrade path. Origins
// are open, as in examples/echo.ts, for benchmarks and conformance tools. A
// client that falls more than 1 MiB of broadcasts behind is closed with
// 1013 (Try Again Later).
//
//   node examples/broadcast.ts [--port 9002] [--host 127.0.0.1]
//     [--redis redis://127.0.0.1:6379]
//   deno run -A examples/broadcast.ts --port 9002
//   bun examples/broadcast.ts --port 9002
//
// With --redis URL (or REDIS_URL), instances on any number of ports and
// machines are one broadcast: what a client sends on one reaches the
// clients of every other, over Redis pub/sub (examples/chat/redis_bus.ts),
// one PUBLISH per message.

import process from "node:process";
import { Broadcast } from "../src/broadcast.ts";
import type { WebSocketConnection } from "../src/connection.ts";
import { serve } from "../src/serve.ts";

function option(name: string, fallback: string): string {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 && at + 1 < process.argv.length
    ? process.argv[at + 1]
    : fallback;
}

const redis = option("redis", process.env.REDIS_URL ?? "");
const everyone = new Broadcast<WebSocketConnection>(
  redis === "" ? {} : {
    bus: await redisBusAt(redis),
    topic: "broadcast",
    onBusError: (error) => console.error(`redis: ${error}`),
  },
);
await everyone.ready;

const server = serve({
  port: Number(option("port", "9002")),
  hostname: option("host", "127.0.0.1"),
  origins: "*",
}, (ws) => void relay(ws));

async function relay(ws: WebSocketConnection): Promise<void> {
  try {
    const { readable } = await ws.opened;
    everyone.add(ws);
    for await (const message of readable) {
      everyone.send(message, { except: ws });
    }
  } catch {
    // A refused handshake or a failed connection: `closed` says which.
  }
  await ws.closed.catch(() => {});
}

// A bus over two node-redis clients (a subscriber can do nothing else).
// No offline queue: while Redis is away, publishing fails at once (and is
// logged) instead of piling up; the clients reconnect by themselves.
async function redisBusAt(url: string) {
  const { createClient } = await import("redis");
  const { redisBus } = await import("./chat/redis_bus.ts");
  const publisher = createClient({ url, disableOfflineQueue: true });
  const subscriber = publisher.duplicate();
  for (const client of [publisher, subscriber]) {
    client.on("error", (error) => console.error(`redis: ${error}`));
  }
  await Promise.all([publisher.connect(), subscriber.connect()]);
  return redisBus(publisher as never, subscriber as never);
}

const { url } = await server.listening;
console.log(`broadcast server listening on ${url.slice(0, -1)}`);
