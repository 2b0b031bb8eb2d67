// A chat server: open the URL it prints in two browser tabs and talk.
//
//   npm start                          (Node, port 8080)
//   node examples/chat/main.ts [--port 8080] [--host 127.0.0.1]
//   deno run -A examples/chat/main.ts
//   bun examples/chat/main.ts
//   node examples/chat/main.ts --redis redis://127.0.0.1:6379
//   npm start -- --tls-cert cert.pem --tls-key key.pem
//
// --port 0 picks a free port. With --redis URL (or REDIS_URL), every
// instance given the same Redis is one chat: rooms, members, history and
// messages span them (examples/chat/redis_cluster.ts). --reuse-port lets
// several instances share one port (on Node and Deno), one per core.
// --tls-cert and --tls-key (PEM files, both or neither) serve it over TLS
// (https://), with HTTP/2 and HTTP/1.1 on one port; a browser then opens
// its WebSocket over the page's own HTTP/2 connection (RFC 8441).

import { readFileSync } from "node:fs";
import process from "node:process";
import { parseArgs } from "node:util";
import type { ServeTlsOptions } from "../../src/serve.ts";
import { createChatServer } from "./server.ts";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string", default: "8080" },
    redis: { type: "string", default: process.env.REDIS_URL ?? "" },
    "reuse-port": { type: "boolean", default: false },
    "tls-cert": { type: "string" },
    "tls-key": { type: "string" },
  },
});
const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`--port: expected a port number, got ${values.port}`);
  process.exit(2);
}

const certFile = values["tls-cert"];
const keyFile = values["tls-key"];
if ((certFile === undefined) !== (keyFile === undefined)) {
  console.error(
    "--tls-cert and --tls-key go together: a certificate and its key, PEM",
  );
  process.exit(2);
}
const tls = certFile === undefined || keyFile === undefined
  ? undefined
  : readTls(certFile, keyFile);

// The certificate and its key (serve() checks that they parse and match).
function readTls(certFile: string, keyFile: string): ServeTlsOptions {
  const attempt = <T>(what: string, run: () => T): T => {
    try {
      return run();
    } catch (error) {
      console.error(`${what}: ${(error as Error).message}`);
      process.exit(2);
    }
  };
  const cert = attempt(
    `--tls-cert: cannot read ${certFile}`,
    () => readFileSync(certFile),
  );
  const key = attempt(
    `--tls-key: cannot read ${keyFile}`,
    () => readFileSync(keyFile),
  );
  return { cert, key };
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

let chat;
try {
  chat = createChatServer({
    port,
    hostname: values.host,
    cluster,
    reusePort: values["reuse-port"],
    tls,
  });
} catch (error) {
  // serve()'s checks of the certificate and key.
  console.error(`--tls-cert, --tls-key: ${(error as Error).message}`);
  process.exit(2);
}
try {
  const { port: bound } = await chat.listening;
  const host = values.host.includes(":") ? `[${values.host}]` : values.host;
  const scheme = tls === undefined ? "http" : "https";
  console.log(`chat server: ${scheme}://${host}:${bound}/`);
  if (tls !== undefined) console.log("over TLS, with HTTP/2 and HTTP/1.1");
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
