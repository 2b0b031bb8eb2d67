// The chat example end to end: its server (on whichever runtime runs this
// file) and two pages in headless Chromium, each typing into the chat's own
// page and reading what it shows. Chromium is driven through the DevTools
// protocol, over our own WebSocket client (tests/_cdp.ts). A screenshot of
// each page goes to test-output/ (ignored by git).
//
// Install the browser with tests/interop/install.sh; without it this test
// fails, unless SKIP_INTEROP=1 skips it.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { createChatServer } from "../examples/chat/server.ts";
import { CHAT_LOG, launchBrowser, type Page, showing } from "./_cdp.ts";
import { chromiumPath, interopTest } from "./_interop.ts";

const chromium = chromiumPath();
const missing = chromium === null ? "chromium is not installed" : null;

const runtime = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";
const OUTPUT = new URL("../test-output/", import.meta.url);

const LOG = CHAT_LOG;

async function join(page: Page, nick: string): Promise<void> {
  // The room field says "lobby" already.
  await page.type("#nick", nick);
  await showing(page, `notice: you joined #lobby as ${nick}`);
}

async function screenshot(page: Page, name: string): Promise<void> {
  const png = await page.screenshot();
  // A PNG: its signature, and more than a blank page's few hundred bytes.
  assert.deepEqual(
    [...png.subarray(0, 8)],
    [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a],
  );
  assert.ok(png.length > 5000, `a ${png.length}-byte screenshot`);
  mkdirSync(OUTPUT, { recursive: true });
  writeFileSync(new URL(`chat-${runtime}-${name}.png`, OUTPUT), png);
}

interopTest(
  "chat in chromium: two pages join a room, see the history and each other's messages",
  { missing },
  async (scope) => {
    // A heartbeat on: the browsers answer its pings all along. A pong must
    // come back within one interval; at 100 ms a loaded CI machine dropped
    // a page (4001: the timer ran before the read of its pong).
    const chat = createChatServer({ port: 0, heartbeatInterval: 1000 });
    scope.defer(() => chat.close());
    const { port } = await chat.listening;
    const url = `http://127.0.0.1:${port}/`;
    const browser = await launchBrowser(scope, chromium!);

    const ada = await browser.open(url);
    await join(ada, "ada");
    await ada.type("#text", "hello, anyone here?");
    await showing(ada, "message: ada: hello, anyone here?");

    const bob = await browser.open(url);
    await join(bob, "bob");
    await showing(ada, "notice: bob joined");
    await bob.type("#text", "hi ada, it's bob");
    await showing(ada, "message: bob: hi ada, it's bob");
    // Markup is shown as text, not run.
    await ada.type("#text", "<b>welcome</b>, bob");
    for (const page of [ada, bob]) {
      await showing(page, "message: ada: <b>welcome</b>, bob");
    }
    assert.equal(await bob.evaluate(`document.querySelector("#log b")`), null);

    assert.deepEqual(await ada.evaluate(LOG), [
      "notice: you joined #lobby as ada",
      "message: ada: hello, anyone here?",
      "notice: bob joined",
      "message: bob: hi ada, it's bob",
      "message: ada: <b>welcome</b>, bob",
    ]);
    // bob came in after ada's first message: he has it as history.
    assert.deepEqual(await bob.evaluate(LOG), [
      "history: ada: hello, anyone here?",
      "notice: you joined #lobby as bob",
      "message: bob: hi ada, it's bob",
      "message: ada: <b>welcome</b>, bob",
    ]);
    for (const page of [ada, bob]) {
      assert.equal(
        await page.evaluate(`document.querySelector("#members").textContent`),
        "in #lobby: ada, bob",
      );
    }
    await screenshot(ada, "ada");
    await screenshot(bob, "bob");

    // Closing bob's tab closes his WebSocket: ada sees him leave.
    await bob.close();
    await showing(ada, "notice: bob left (left)");
    assert.deepEqual(chat.hub.rooms, { lobby: ["ada"] });
  },
);
