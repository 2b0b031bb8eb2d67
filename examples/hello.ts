// The whole library in one file: a server made by serve() (node:http, so
// the full codec, on Node, Deno and Bun alike) and our client, talking over
// a real socket.
//
//   node examples/hello.ts    deno run -A examples/hello.ts    bun examples/hello.ts

import { WebSocketStream } from "../src/client.ts";
import { serve } from "../src/serve.ts";

// The server shouts back every text message and counts binary ones.
const server = serve({ protocols: ["shout"] }, async (ws) => {
  const { readable, writable, protocol } = await ws.opened;
  console.log(`server: a client connected, speaking "${protocol}"`);
  await readable
    .pipeThrough(
      new TransformStream<string | Uint8Array, string>({
        transform(message, controller) {
          controller.enqueue(
            typeof message === "string"
              ? message.toUpperCase() + "!"
              : `got ${message.length} bytes`,
          );
        },
      }),
    )
    .pipeTo(writable);
  console.log("server: closed with", await ws.closed);
});
const { url } = await server.listening;

const client = new WebSocketStream(url, {
  protocols: ["shout"],
});
const { readable, writable } = await client.opened;
console.log(`client: connected to ${client.url}`);
const writer = writable.getWriter();
const reader = readable.getReader();
for (
  const message of [
    "hello",
    "streams all the way down",
    new Uint8Array(100_000),
  ]
) {
  await writer.write(message);
  console.log(
    "client: sent",
    typeof message === "string"
      ? JSON.stringify(message)
      : `${message.length} bytes`,
  );
  console.log("client: got ", JSON.stringify((await reader.read()).value));
}
const started = performance.now();
await client.ping();
console.log(
  `client: ping answered in ${(performance.now() - started).toFixed(2)} ms`,
);
client.close({ closeCode: 1000, reason: "bye" });
console.log("client: closed with", await client.closed);
await server.close();
