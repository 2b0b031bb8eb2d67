// The chat across instances, end to end: two chat servers sharing a real
// Redis, and pages in headless Chromium on each. Messages cross, a page
// that comes later sees the history, and a page whose server restarts
// comes back by itself, under its nickname, without showing twice what it
// showed already.

import assert from "node:assert/strict";
import { redisCluster } from "../examples/chat/redis_cluster.ts";
import { createChatServer } from "../examples/chat/server.ts";
import { CHAT_LOG, launchBrowser, showing } from "./_cdp.ts";
import { chromiumPath, interopTest, type Scope } from "./_interop.ts";
import { missingRedis, type RedisServer, startRedis } from "./_redis.ts";

const chromium = chromiumPath();
const missing = chromium === null
  ? "chromium is not installed"
  : missingRedis();

const LOG = CHAT_LOG;

// A chat instance on `port` (0: any) sharing `redis`.
async function instance(scope: Scope, redis: RedisServer, port = 0) {
  const cluster = await redisCluster(redis.url, { onError: () => {} });
  const chat = createChatServer({ port, heartbeatInterval: 0, cluster });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await chat.close();
    await cluster.close().catch(() => {});
  };
  scope.defer(close);
  const { port: bound } = await chat.listening;
  return { port: bound, url: `http://127.0.0.1:${bound}/`, close };
}

interopTest(
  "chat in chromium across two instances over Redis: messages, history, and a page that comes back after a restart",
  { missing },
  async (scope) => {
    const redis = await startRedis();
    scope.defer(() => redis.close());
    const one = await instance(scope, redis);
    const two = await instance(scope, redis);
    const browser = await launchBrowser(scope, chromium!);

    const ada = await browser.open(one.url);
    await ada.type("#nick", "ada");
    await showing(ada, "notice: you joined #lobby as ada");
    const bob = await browser.open(two.url);
    await bob.type("#nick", "bob");
    await showing(bob, "notice: you joined #lobby as bob");
    await showing(ada, "notice: bob joined");

    await ada.type("#text", "hello from one");
    await showing(bob, "message: ada: hello from one");
    await bob.type("#text", "hello from two");
    await showing(ada, "message: bob: hello from two");

    // Later, on either instance: the history, from Redis.
    const cy = await browser.open(one.url);
    await cy.type("#nick", "cy");
    const cyLog = await showing(cy, "notice: you joined #lobby as cy");
    assert.deepEqual(cyLog.slice(0, 2), [
      "history: ada: hello from one",
      "history: bob: hello from two",
    ]);
    await cy.close();

    // ada's server restarts on its port: her page comes back by itself.
    await one.close();
    await ada.waitFor(
      `${LOG}.some((line) => line.startsWith("status: reconnecting"))`,
    );
    const again = await instance(scope, redis, one.port);
    assert.equal(again.port, one.port);
    const log = await showing(ada, "notice: back in #lobby as ada", 20_000);
    // What it showed before is not shown again.
    assert.equal(
      log.filter((line) => line.endsWith("hello from one")).length,
      1,
      JSON.stringify(log),
    );
    await ada.type("#text", "back again");
    await showing(bob, "message: ada: back again");
  },
  90_000,
);
