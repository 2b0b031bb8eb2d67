// A real Redis for the tests: Debian's redis-server (tests/interop/install.sh
// installs it), started on a free loopback port with a data directory of its
// own and nothing saved, stopped at the end. It can be stopped and started
// again on the same port, as an outage.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import { join } from "node:path";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Why redis-server cannot run, or null if it can. */
export function missingRedis(): string | null {
  const result = spawnSync("sh", ["-c", "command -v redis-server"]);
  return result.status === 0 ? null : "redis-server is not installed";
}

export interface RedisServer {
  readonly url: string;
  /** Stops the server (an outage); `start()` brings it back on its port. */
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its directory. */
  close(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(os.tmpdir(), "streamsocket-redis-"));
  let child: ChildProcess | null = null;
  const start = () =>
    new Promise<void>((resolve, reject) => {
      const server = spawn("redis-server", [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "no",
      ], { stdio: ["ignore", "pipe", "pipe"] });
      child = server;
      let log = "";
      const timer = setTimeout(
        () => reject(new Error(`redis-server did not start: ${log}`)),
        10_000,
      );
      server.once("error", (error) => {
        clearTimeout(timer);
        reject(
          new Error(
            `cannot run redis-server (tests/interop/install.sh installs it): ${error.message}`,
          ),
        );
      });
      server.stdout!.on("data", (data: Uint8Array) => {
        log += new TextDecoder().decode(data);
        if (log.includes("Ready to accept connections")) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      const server = child;
      child = null;
      if (server === null || server.exitCode !== null) return resolve();
      server.once("exit", () => resolve());
      server.kill("SIGKILL");
    });
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    stop,
    start,
    async close() {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** How many PUBLISH commands the Redis at `url` has run (INFO commandstats). */
export async function publishCount(url: string): Promise<number> {
  const { createClient } = await import("redis");
  const client = createClient({ url });
  await client.connect();
  const stats = await client.info("commandstats");
  await client.close();
  return Number(/cmdstat_publish:calls=(\d+)/.exec(stats)?.[1] ?? 0);
}

/**
 * A TCP proxy in front of the Redis at `url`: `cut()` drops its
 * connections and refuses new ones (one instance losing Redis while the
 * others keep it), `restore()` lets them through again.
 */
export async function redisProxy(url: string): Promise<{
  url: string;
  cut(): void;
  restore(): void;
  close(): void;
}> {
  const target = Number(new URL(url).port);
  let down = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((near) => {
    if (down) return void near.destroy();
    const far = net.connect(target, "127.0.0.1");
    for (const socket of [near, far]) {
      sockets.add(socket);
      socket.on("error", () => {});
      socket.on("close", () => {
        near.destroy();
        far.destroy();
        sockets.delete(socket);
      });
    }
    near.pipe(far);
    far.pipe(near);
  });
  await new Promise<void>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve())
  );
  const { port } = server.address() as net.AddressInfo;
  const cut = () => {
    down = true;
    for (const socket of sockets) socket.destroy();
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    cut,
    restore: () => void (down = false),
    close() {
      cut();
      server.close();
    },
  };
}
