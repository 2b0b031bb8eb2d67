// Hostile peers against the node:http upgrade path, made as the README
// shows (createServer() and an 'upgrade' listener), in a process of its own
// (tests/_echo_server.ts): a peer that resets the TCP connection at any
// moment of the handshake must not crash the server, a request without a
// valid Host is refused, and a peer that floods tiny messages does not hold
// back other peers' echoes.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import net from "node:net";
import process from "node:process";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SERVER = fileURLToPath(
  new URL("./_echo_server.ts", import.meta.url),
);

function runtimeArgs(): string[] {
  const g = globalThis as { Deno?: unknown };
  return g.Deno !== undefined ? ["run", "-A", SERVER] : [SERVER];
}

interface Child {
  port: number;
  /** Whether the process has exited, and what it printed. */
  exited(): string | null;
  stop(): Promise<void>;
}

async function startServer(): Promise<Child> {
  const child: ChildProcess = spawn(process.execPath, runtimeArgs(), {
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  let exit: string | null = null;
  child.stderr!.on("data", (chunk) => (out += chunk));
  const done = new Promise<void>((resolve) =>
    child.on("exit", (code, signal) => {
      exit = `exited with ${code ?? signal}: ${out}`;
      resolve();
    })
  );
  const port = await new Promise<number>((resolve, reject) => {
    let line = "";
    child.stdout!.on("data", (chunk) => {
      line += chunk;
      const port = /^(\d+)$/m.exec(line);
      if (port !== null) resolve(Number(port[1]));
    });
    done.then(() => reject(new Error(exit!)));
  });
  return {
    port,
    exited: () => exit,
    async stop() {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await done;
      clearTimeout(timer);
    },
  };
}

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

function request(path: string, headers: string): string {
  return `GET ${path} HTTP/1.1\r\n${headers}Upgrade: websocket\r\n` +
    "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

const valid = (path = "/") =>
  request(path, `Host: 127.0.0.1\r\nSec-WebSocket-Key: ${KEY}\r\n`);

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.on("error", () => {});
    socket.once("connect", () => resolve(socket));
    socket.once("error", reject);
  });
}

/** Sends `head`, waits `delay` ms, and resets the connection (RST). */
async function resetAfter(
  port: number,
  head: string,
  delay: number,
): Promise<void> {
  const socket = await connect(port);
  socket.write(head);
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  socket.resetAndDestroy();
}

/** Sends `head` and returns the status line of the answer. */
async function statusOf(port: number, head: string): Promise<string> {
  const socket = await connect(port);
  socket.write(head);
  let received = "";
  await new Promise<void>((resolve) => {
    socket.on("data", (chunk) => {
      received += chunk.toString("latin1");
      if (received.includes("\r\n")) resolve();
    });
    socket.on("close", () => resolve());
  });
  socket.destroy();
  return received.split("\r\n")[0];
}

const resets: [string, string, number][] = [
  ["while a 400 refusal is written", request("/", "Host: a\r\n"), 0],
  [
    "while a 403 refusal is written",
    valid("/forbidden").replace("\r\n\r\n", "\r\nOrigin: http://x\r\n\r\n"),
    0,
  ],
  ["right after a valid request", valid(), 0],
  ["while an async accept hook runs", valid("/slow"), 10],
  ["right after the 101", valid(), 2],
];

test("upgrade survives a peer that resets the TCP connection at every moment of the handshake", async () => {
  const server = await startServer();
  try {
    for (const [, head, delay] of resets) {
      for (let i = 0; i < 20; i++) await resetAfter(server.port, head, delay);
    }
    // Late errors (a write to a reset socket) surface a turn or two later.
    await new Promise((r) => setTimeout(r, 200));
    for (const [where] of resets) {
      assert.equal(server.exited(), null, `the server died: ${where}`);
    }
    assert.match(await statusOf(server.port, valid()), /^HTTP\/1\.1 101 /);
  } finally {
    await server.stop();
  }
});

test("upgrade refuses a request without a valid Host with 400 (RFC 6455 §4.2.1, RFC 9112 §3.2)", async () => {
  const server = await startServer();
  try {
    const key = `Sec-WebSocket-Key: ${KEY}\r\n`;
    for (
      const [what, headers] of [
        ["no Host", key],
        ["an empty Host", `Host:\r\n${key}`],
        ["two Host lines", `Host: a.example\r\nHost: b.example\r\n${key}`],
        ["a Host with a path", `Host: a.example/x\r\n${key}`],
      ]
    ) {
      const status = await statusOf(server.port, request("/", headers));
      // node:http itself answers 400 to some of these on some runtimes;
      // none may reach 101.
      assert.match(status, /^HTTP\/1\.1 400 /, what);
    }
    assert.equal(server.exited(), null);
  } finally {
    await server.stop();
  }
});

test("a peer that floods tiny messages does not hold back another peer's echoes", async () => {
  const server = await startServer();
  const open = async () => {
    const socket = await connect(server.port);
    socket.write(valid());
    await new Promise<void>((resolve) => {
      let head = "";
      const onData = (chunk: Uint8Array) => {
        head += new TextDecoder().decode(chunk);
        if (!head.includes("\r\n\r\n")) return;
        socket.off("data", onData);
        resolve();
      };
      socket.on("data", onData);
    });
    return socket;
  };
  // A one-byte text, masked with a zero key.
  const tiny = new Uint8Array([0x81, 0x81, 0, 0, 0, 0, 0x61]);
  const flooder = await open();
  const prober = await open();
  try {
    flooder.on("data", () => {});
    // 64 KiB of tiny messages a write, for as long as the probes run.
    const batch = new Uint8Array(9362 * tiny.length);
    for (let i = 0; i < batch.length; i += tiny.length) batch.set(tiny, i);
    let flooding = true;
    const flood = (async () => {
      while (flooding && !flooder.destroyed) {
        if (!flooder.write(batch)) {
          await new Promise((resolve) => {
            flooder.once("drain", resolve);
            flooder.once("close", resolve);
          });
        }
      }
    })();
    // Give the flood a head start, then probe: one message at a time.
    await new Promise((r) => setTimeout(r, 300));
    const rtts: number[] = [];
    for (let i = 0; i < 20; i++) {
      const sent = performance.now();
      const echoed = new Promise((resolve) => prober.once("data", resolve));
      prober.write(tiny);
      await echoed;
      rtts.push(performance.now() - sent);
      await new Promise((r) => setTimeout(r, 20));
    }
    flooding = false;
    flooder.destroy();
    await flood;
    rtts.sort((a, b) => a - b);
    // Unbounded work per turn held the probes back by 1.5-3 s on Deno;
    // bounded, the median is a few milliseconds.
    const median = rtts[rtts.length >> 1];
    assert.ok(
      median < 250,
      `median echo ${median.toFixed(0)} ms under the flood: ${
        rtts.map((r) => r.toFixed(0))
      }`,
    );
  } finally {
    prober.destroy();
    await server.stop();
  }
});
