// Just enough of the Chrome DevTools Protocol to drive pages in headless
// Chromium, spoken over our own WebSocket client: open a page, run
// JavaScript in it, type, take a screenshot.
//
// Chromium is started by launchChromium (tests/_interop.ts) with
// --remote-debugging-port=0; the port it picked is in the profile's
// DevToolsActivePort file.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import { WebSocketStream } from "../src/client.ts";
import {
  deadline,
  launchChromium,
  type Process,
  type Scope,
} from "./_interop.ts";

// deno-lint-ignore no-explicit-any
type Json = any;

/** A browser under DevTools control. */
export interface Browser {
  /** Opens a page on `url` and waits until it has loaded. */
  open(url: string): Promise<Page>;
}

/** One page (a DevTools target, attached in flat mode). */
export interface Page {
  /** Evaluates `expression` in the page, awaiting a promise, and returns its value. */
  evaluate(expression: string): Promise<Json>;
  /** Waits until `expression` is truthy in the page, and returns its value. */
  waitFor(expression: string, ms?: number): Promise<Json>;
  /** Focuses the element, types `text` into it and presses Enter. */
  type(selector: string, text: string): Promise<void>;
  /** A PNG of what the page shows. */
  screenshot(): Promise<Uint8Array>;
  /** Closes the page (as closing its tab would). */
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function devToolsUrl(
  browser: Process,
  profile: string,
): Promise<string> {
  const file = join(profile, "DevToolsActivePort");
  for (let waited = 0; waited < 20_000; waited += 50) {
    try {
      const [port, path] = readFileSync(file, "utf8").split("\n");
      if (port !== "" && path !== undefined && path !== "") {
        return `ws://127.0.0.1:${port}${path}`;
      }
    } catch {
      // Not written yet.
    }
    await Promise.race([sleep(50), browser.exited]);
    if (browser.child.exitCode !== null) break;
  }
  throw new Error(
    `chromium did not open its DevTools port\n${browser.output()}`,
  );
}

/**
 * Starts headless Chromium under DevTools control; with `tls`, it accepts
 * our self-signed certificate. Everything is closed when the scope closes.
 */
export async function launchBrowser(
  scope: Scope,
  executable: string,
  { tls = false }: { tls?: boolean } = {},
): Promise<Browser> {
  const browser = launchChromium(scope, executable, "about:blank", {
    tls,
    args: [
      "--remote-debugging-port=0",
      // Pages in the background would have their timers slowed down.
      "--disable-background-timer-throttling",
      "--disable-renderer-backgrounding",
      "--disable-backgrounding-occluded-windows",
    ],
  });
  const ws = new WebSocketStream(await devToolsUrl(browser, browser.profile));
  const { readable, writable } = await deadline(
    ws.opened,
    10_000,
    "the DevTools connection",
  );
  scope.defer(async () => {
    try {
      ws.close({ closeCode: 1000 });
    } catch {
      // Closed already.
    }
    await ws.closed.catch(() => {});
  });
  const writer = writable.getWriter();
  const pending = new Map<
    number,
    { resolve: (v: Json) => void; reject: (e: Error) => void }
  >();
  let lastId = 0;
  (async () => {
    for await (const message of readable) {
      const reply = JSON.parse(message as string);
      const waiter = pending.get(reply.id);
      if (waiter === undefined) continue; // An event.
      pending.delete(reply.id);
      if (reply.error !== undefined) {
        waiter.reject(new Error(`DevTools: ${JSON.stringify(reply.error)}`));
      } else {
        waiter.resolve(reply.result);
      }
    }
  })().catch(() => {});

  const send = (
    method: string,
    params: Json = {},
    sessionId?: string,
  ): Promise<Json> => {
    const id = ++lastId;
    const reply = new Promise<Json>((resolve, reject) =>
      pending.set(id, { resolve, reject })
    );
    void writer.write(JSON.stringify({ id, method, params, sessionId }));
    return deadline(reply, 20_000, `DevTools ${method}`);
  };

  return {
    async open(url) {
      const { targetId } = await send("Target.createTarget", {
        url: "about:blank",
        newWindow: true,
        width: 800,
        height: 600,
      });
      const { sessionId } = await send("Target.attachToTarget", {
        targetId,
        flatten: true,
      });
      const call = (method: string, params?: Json) =>
        send(method, params, sessionId);
      const evaluate = async (expression: string) => {
        const { result, exceptionDetails } = await call("Runtime.evaluate", {
          expression,
          awaitPromise: true,
          returnByValue: true,
        });
        if (exceptionDetails !== undefined) {
          throw new Error(
            `in the page: ${
              exceptionDetails.exception?.description ?? exceptionDetails.text
            }`,
          );
        }
        return result.value;
      };
      const page: Page = {
        evaluate,
        waitFor: (expression, ms = 10_000) =>
          evaluate(`new Promise((resolve, reject) => {
            const until = Date.now() + ${ms};
            const check = () => {
              const value = (${expression});
              if (value) resolve(value);
              else if (Date.now() > until) {
                reject(new Error(${
            JSON.stringify(`timed out waiting for ${expression}`)
          }));
              } else setTimeout(check, 20);
            };
            check();
          })`),
        async type(selector, text) {
          await evaluate(
            `document.querySelector(${JSON.stringify(selector)}).focus()`,
          );
          await call("Input.insertText", { text });
          for (const type of ["keyDown", "keyUp"]) {
            await call("Input.dispatchKeyEvent", {
              type,
              key: "Enter",
              code: "Enter",
              windowsVirtualKeyCode: 13,
              text: type === "keyDown" ? "\r" : undefined,
            });
          }
        },
        async screenshot() {
          const { data } = await call("Page.captureScreenshot", {
            format: "png",
          });
          return Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        },
        async close() {
          await send("Target.closeTarget", { targetId });
        },
      };
      await call("Page.navigate", { url });
      // Until the page has loaded, an evaluation may run in the old
      // document, or fail as it goes: ask again.
      const loaded = `location.href === ${
        JSON.stringify(url)
      } && document.readyState === "complete"`;
      for (let waited = 0; waited < 10_000; waited += 50) {
        if (await evaluate(loaded).catch(() => false)) return page;
        await sleep(50);
      }
      throw new Error(`the page ${url} did not load`);
    },
  };
}

/** What the chat page's log shows, one "kind: text" line per entry. */
export const CHAT_LOG = `[...document.querySelectorAll("#log li")].map((li) =>
  li.dataset.kind + ": " + li.querySelector(".body").textContent)`;

/**
 * Waits until the chat page's log shows `line`, and returns the log; if it
 * never does, says what it shows instead.
 */
export async function showing(
  page: Page,
  line: string,
  ms?: number,
): Promise<string[]> {
  try {
    return await page.waitFor(
      `${CHAT_LOG}.includes(${JSON.stringify(line)}) && ${CHAT_LOG}`,
      ms,
    ) as string[];
  } catch (error) {
    const shown = await page.evaluate(CHAT_LOG).catch(() => "(unreadable)");
    throw new Error(
      `the page never showed ${JSON.stringify(line)}; it shows ${
        JSON.stringify(shown)
      }`,
      { cause: error },
    );
  }
}
