// A chat server: open the URL it prints in two browser tabs and talk.
//
//   npm start                          (Node, port 8080)
//   node examples/chat/main.ts [--port 8080] [--host 127.0.0.1]
//   deno run -A examples/chat/main.ts
//   bun examples/chat/main.ts
//   node examples/chat/main.ts --redis redis://127.0.0.1:6379
//
// --port 0 picks a free port. With --redis URL (or REDIS_URL), every
// instance given the same Redis is one chat: rooms, members, history and
// messages span them (examples/chat/redis_cluster.ts). --reuse-port lets
// several instances share one port (on Node and Deno), one per core.

import process from "node:process";
import { parseArgs } from "node:util";
import { createChatServer } from "./server.ts";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8080" },
    redis: { type: "string", default: process.env.REDIS_URL ?? "" },
    "reuse-port": { type: "boolean", default: false },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port: expected a port number, got ${values.port}`);
  process.exit(2);
}

// Imported only when asked for: without it the chat needs nothing but the
// runtime.
const cluster = values.redis === ""
  ? undefined
  : await (await import("./redis_cluster.ts")).redisCluster(values.redis)
    .catch((error: Error) => {
      console.error(`cannot reach Redis at ${values.redis}: ${error.message}`);
      process.exit(1);
    });

const chat = createChatServer({
  port,
  hostname: values.host,
  cluster,
  reusePort: values["reuse-port"],
});
try {
  const { port: bound } = await chat.listening;
  const host = values.host.includes(":") ? `[${values.host}]` : values.host;
  console.log(`chat server: http://${host}:${bound}/`);
  console.log("open it in two browser tabs; Ctrl+C stops the server");
  if (cluster !== undefined) {
    console.log(`sharing rooms with every instance on ${values.redis}`);
  }
} catch (error) {
  console.error(
    `cannot listen on ${values.host}:${port}: ${(error as Error).message}`,
  );
  console.error("try another port: --port 8081 (or --port 0 for any)");
  process.exit(1);
}

process.once("SIGINT", async () => {
  console.log("\nshutting down");
  await chat.close();
  await cluster?.close();
  process.exit(0);
});
