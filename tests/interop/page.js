// The browser's side of the Chromium interop tests, loaded by page.html
// from our node:http server. The query says what to do:
//
//   ?mode=exchange&ws=URL      the caller's side of the exchange (payload.js),
//                              then close(4000, "bye from chromium")
//   ?mode=server-close&ws=URL  say hello, wait for the server's Close
//   ?mode=cross-origin&ws=URL  try to connect, expecting a refusal
//
// It POSTs its result as JSON to /report/MODE on the server it came from.

import { END, extras, messageSet } from "./payload.js";

const params = new URLSearchParams(location.search);
const mode = params.get("mode") ?? "";
const target = params.get("ws") ?? "";
const encoder = new TextEncoder();

/** @param {unknown} body */
async function report(body) {
  await fetch(`/report/${mode}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** @param {Uint8Array} bytes */
async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * @param {Uint8Array} a
 * @param {Uint8Array} b
 */
function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * @param {string} name
 * @param {unknown} data
 * @param {string | Uint8Array} expected
 */
async function describe(name, data, expected) {
  if (typeof data === "string") {
    const bytes = encoder.encode(data);
    return {
      name,
      type: "text",
      size: bytes.length,
      sha256: await sha256(bytes),
      ok: data === expected,
    };
  }
  const bytes = new Uint8Array(/** @type {ArrayBuffer} */ (data));
  return {
    name,
    type: "binary",
    size: bytes.length,
    sha256: await sha256(bytes),
    ok: expected instanceof Uint8Array && equalBytes(bytes, expected),
  };
}

/**
 * Opens a WebSocket whose messages, close and error are promised in order.
 *
 * @param {string} url
 */
function open(url) {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  /** @type {unknown[]} */
  const messages = [];
  /** @type {(() => void) | null} */
  let wake = null;
  /** @type {string[]} */
  const events = [];
  ws.onmessage = (event) => {
    messages.push(event.data);
    wake?.();
  };
  ws.onerror = () => {
    events.push("error");
    wake?.();
  };
  const closed = new Promise((resolve) => {
    ws.onclose = (event) => {
      events.push("close");
      resolve({
        code: event.code,
        reason: event.reason,
        wasClean: event.wasClean,
      });
      wake?.();
    };
  });
  const opened = new Promise((resolve, reject) => {
    ws.onopen = () => {
      events.push("open");
      resolve(undefined);
    };
    closed.then(() => reject(new Error("closed before it opened")));
  });
  return {
    ws,
    events,
    opened,
    closed,
    /** @returns {Promise<unknown>} */
    async next() {
      while (messages.length === 0) {
        if (ws.readyState === WebSocket.CLOSED) {
          throw new Error("closed while waiting for a message");
        }
        await new Promise((resolve) => (wake = () => resolve(undefined)));
      }
      return messages.shift();
    },
  };
}

async function exchange() {
  const peer = open(target);
  await peer.opened;
  const result = {
    protocol: peer.ws.protocol,
    extensions: peer.ws.extensions,
    received: /** @type {unknown[]} */ ([]),
  };
  for (const m of messageSet(1)) peer.ws.send(m.data);
  for (const m of messageSet(2)) {
    const name = `${m.type} ${m.size}`;
    result.received.push(await describe(name, await peer.next(), m.data));
  }
  for (const e of extras()) {
    result.received.push(await describe(e.name, await peer.next(), e.data));
  }
  result.received.push(await describe("end", await peer.next(), END));
  peer.ws.close(4000, "bye from chromium");
  return { ...result, close: await peer.closed, events: peer.events };
}

async function serverClose() {
  const peer = open(target);
  await peer.opened;
  peer.ws.send("hello");
  const echo = await peer.next();
  return { echo, close: await peer.closed, events: peer.events };
}

async function crossOrigin() {
  const peer = open(target);
  const close = await peer.closed;
  return { close, events: peer.events };
}

const modes = {
  "exchange": exchange,
  "server-close": serverClose,
  "cross-origin": crossOrigin,
};

try {
  const run = modes[/** @type {keyof typeof modes} */ (mode)];
  if (run === undefined) throw new Error(`unknown mode "${mode}"`);
  await report({ origin: location.origin, ...(await run()) });
} catch (error) {
  await report({ error: String(error?.stack ?? error) });
}
