// A node:http server with upgrade(), run in a process of its own by
// tests/hostile_server_test.ts, so that a crash is seen as the process
// dying instead of taking the test runner down, and a flood of messages
// competes with the tests' own peers only for the CPU:
//
//   <runtime> tests/_echo_server.ts
//
// Made as the README shows: createServer() and an 'upgrade' listener. Its
// `accept` hook takes 50 ms on /slow and refuses /forbidden with 403; other
// paths open and echo. Prints its port on one line, then runs until its
// standard input ends.

import { createServer } from "node:http";
import process from "node:process";
import { upgrade } from "../src/adapters/node.ts";

const server = createServer();
server.on("upgrade", (request, socket, head) => {
  const ws = upgrade(request, socket, head, {
    origins: "*",
    accept: async (request) => {
      const path = new URL(request.url!).pathname;
      if (path === "/slow") await new Promise((r) => setTimeout(r, 50));
      return path !== "/forbidden";
    },
  });
  ws.opened.then(({ readable, writable }) => readable.pipeTo(writable))
    .catch(() => {});
  ws.closed.catch(() => {});
});
server.listen(0, "127.0.0.1", () => {
  // A string: Deno colours a number it logs, even into a pipe.
  console.log(String((server.address() as { port: number }).port));
});
process.stdin.resume();
process.stdin.on("end", () => {
  server.close();
  server.closeAllConnections();
  process.stdin.pause();
});
