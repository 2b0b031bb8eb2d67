// Helpers for the interop tests against real peers (Python's websockets,
// Chromium): a node:http server with our upgrade adapter, child processes,
// time bounds that clean up after themselves, and both sides of the
// exchange that every interop test runs (see tests/interop/payload.js).
//
// The peers come from Debian (tests/interop/install.sh). A missing peer
// fails its tests, unless SKIP_INTEROP=1 is set: then they are skipped.

import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import {
  createServer,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import type { Duplex } from "node:stream";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { concat } from "../src/_bytes.ts";
import { type NodeUpgradeOptions, upgrade } from "../src/adapters/node.ts";
import type {
  WebSocketCloseInfo,
  WebSocketConnection,
} from "../src/connection.ts";
import type { OutgoingMessage } from "../src/message.ts";
import {
  BINARY_CUTS,
  END,
  EXTRA_SPLIT,
  EXTRA_SPLIT_AT,
  extras,
  messageSet,
  TEXT_CUTS,
} from "./interop/payload.js";

/** Where the peers' files are. */
export const INTEROP_DIR: string = fileURLToPath(
  new URL("./interop/", import.meta.url),
);

/** A self-signed certificate for localhost and 127.0.0.1, valid until 2126, for tests only. */
export const TLS_CERT: string = join(INTEROP_DIR, "test_cert.pem");
/** The private key of {@linkcode TLS_CERT}. */
export const TLS_KEY: string = join(INTEROP_DIR, "test_key.pem");

/** Debian's Python, which has python3-websockets (a pyenv one may come first on PATH). */
export const PYTHON = "/usr/bin/python3";

/** A connection from our library, in either role. */
export type Connection = WebSocketConnection<false>;

// ---------------------------------------------------------------------------
// Requirements

/** Why Debian's python3-websockets cannot run, or null if it can. */
export function missingPythonWebsockets(): string | null {
  const result = spawnSync(PYTHON, ["-c", "import websockets"], {
    encoding: "utf8",
  });
  if (result.error !== undefined) {
    return `${PYTHON} cannot run (${result.error.message})`;
  }
  return result.status === 0
    ? null
    : `python3-websockets is not installed for ${PYTHON}`;
}

/** The path of Debian's chromium, or null if it is not installed. */
export function chromiumPath(): string | null {
  const result = spawnSync("sh", ["-c", "command -v chromium"], {
    encoding: "utf8",
  });
  const path = (result.stdout ?? "").trim();
  return result.status === 0 && path !== "" ? path : null;
}

const announced = new Set<string>();

/** What an interop test needs. */
export interface Requirements {
  /** Why the peer cannot run, or null: fails the test unless SKIP_INTEROP=1. */
  missing: string | null;
  /** Why the test cannot run yet, or null: skips it. */
  unavailable?: string | null;
}

/**
 * A `node:test` test that needs a peer, bounded in time: it fails if the
 * peer is missing, unless SKIP_INTEROP=1 skips it; everything registered on
 * the scope is cleaned up when it ends, however it ends.
 */
export function interopTest(
  name: string,
  { missing, unavailable = null }: Requirements,
  body: (scope: Scope) => Promise<void>,
  timeout = 60_000,
): void {
  const skip = unavailable !== null
    ? unavailable
    : missing !== null && process.env.SKIP_INTEROP === "1"
    ? `SKIP_INTEROP=1 and ${missing}`
    : false;
  if (skip !== false && !announced.has(skip)) {
    // Deno and Bun do not print a skipped test's reason.
    announced.add(skip);
    console.error(`interop tests skipped: ${skip}`);
  }
  // The runner's own limit is past ours, so ours reports (Bun's default
  // is 5 s, less than an exchange of 16 MiB messages can take).
  test(name, { skip, timeout: timeout + 10_000 }, async () => {
    if (missing !== null) {
      throw new Error(
        `${missing}: run tests/interop/install.sh, or set SKIP_INTEROP=1 to skip the interop tests`,
      );
    }
    await within(timeout, name, body);
  });
}

/** Things to clean up, in reverse order, and what to say if time runs out. */
export class Scope {
  #cleanups: (() => unknown)[] = [];
  #diagnostics: (() => string)[] = [];

  /** Runs `cleanup` when the scope closes. */
  defer(cleanup: () => unknown): void {
    this.#cleanups.push(cleanup);
  }

  /** Adds `describe()` to the message of a failure. */
  diagnose(describe: () => string): void {
    this.#diagnostics.push(describe);
  }

  /** What the diagnostics say now. */
  diagnostics(): string {
    return this.#diagnostics.map((describe) => describe()).filter(Boolean)
      .join("\n");
  }

  /** Runs every cleanup, each bounded to 5 s, the last registered first. */
  async close(): Promise<void> {
    const cleanups = this.#cleanups.reverse();
    this.#cleanups = [];
    for (const cleanup of cleanups) {
      try {
        await deadline(
          Promise.resolve().then(cleanup),
          5000,
          "a cleanup step",
        );
      } catch (error) {
        console.error("interop cleanup failed:", error);
      }
    }
  }
}

/** Rejects with a timeout error unless `promise` settles within `ms`. */
export function deadline<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Runs `body` with a fresh scope, within `ms`, then closes the scope. */
export async function within(
  ms: number,
  what: string,
  body: (scope: Scope) => Promise<void>,
): Promise<void> {
  const scope = new Scope();
  try {
    await deadline(body(scope), ms, `"${what}"`);
  } catch (error) {
    const notes = scope.diagnostics();
    if (notes !== "" && error instanceof Error) {
      error.message += `\n--- diagnostics ---\n${notes}`;
    }
    throw error;
  } finally {
    await scope.close();
  }
}

// ---------------------------------------------------------------------------
// Our server

/** A WebSocket connection our server accepted, with the path it asked for. */
export interface Accepted {
  ws: Connection;
  path: string;
}

/** A node:http server on 127.0.0.1 with our upgrade adapter. */
export interface TestServer {
  /** "http://127.0.0.1:PORT" ("https:" over TLS). */
  readonly origin: string;
  /** "ws://127.0.0.1:PORT" + path ("wss:" over TLS). */
  wsUrl(path: string): string;
  /** The next upgrade request, as our connection. */
  nextConnection(): Promise<Accepted>;
  /** The next body POSTed to /report/NAME, parsed as JSON. */
  report(name: string): Promise<unknown>;
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
};

/**
 * Starts a node:http server on 127.0.0.1:0 (node:https with `tls`, using
 * {@linkcode TLS_CERT}), which serves the files of tests/interop/ (the page
 * and its scripts), takes reports POSTed to /report/NAME, and hands every
 * upgrade request to our adapter. Closed, with every socket destroyed, when
 * the scope closes.
 */
export async function startServer(
  scope: Scope,
  options: NodeUpgradeOptions = {},
  { tls = false }: { tls?: boolean } = {},
): Promise<TestServer> {
  const sockets = new Set<Socket | Duplex>();
  const accepted = new Queue<Accepted>();
  const reports = new Map<string, Queue<unknown>>();
  const reportQueue = (name: string) => {
    let queue = reports.get(name);
    if (queue === undefined) reports.set(name, queue = new Queue());
    return queue;
  };
  const track = (socket: Socket | Duplex) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  };

  const listener = (
    request: IncomingMessage,
    response: ServerResponse,
  ) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    const report = /^\/report\/([\w-]+)$/.exec(url.pathname);
    if (request.method === "POST" && report !== null) {
      const chunks: Uint8Array[] = [];
      request.on("data", (chunk: Uint8Array) => chunks.push(chunk));
      request.on("end", () => {
        const text = new TextDecoder().decode(concat(chunks));
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          body = { error: `unparsable report: ${text.slice(0, 200)}` };
        }
        reportQueue(report[1]).push(body);
        response.writeHead(204).end();
      });
      return;
    }
    const file = /^\/([\w-]+\.(html|js))$/.exec(url.pathname);
    if (request.method === "GET" && file !== null) {
      let body: Uint8Array;
      try {
        body = readFileSync(join(INTEROP_DIR, file[1]));
      } catch {
        response.writeHead(404).end();
        return;
      }
      response.writeHead(200, {
        "content-type": CONTENT_TYPES[`.${file[2]}`],
        "cache-control": "no-store",
      }).end(body);
      return;
    }
    response.writeHead(404).end();
  };
  const server = tls
    ? createHttpsServer(
      { cert: readFileSync(TLS_CERT), key: readFileSync(TLS_KEY) },
      listener,
    )
    : createServer(listener);
  // Over TLS, "connection" gives the TCP socket, "secureConnection" the
  // TLS one: destroying either ends both.
  server.on("connection", track);
  server.on(
    "upgrade",
    (request: IncomingMessage, socket: Duplex, head: Uint8Array) => {
      track(socket);
      const ws = upgrade(request, socket as never, head, options);
      const path = new URL(request.url ?? "/", "http://localhost").pathname;
      accepted.push({ ws, path });
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const { port } = server.address() as { port: number };
  scope.defer(async () => {
    const closed = new Promise<void>((resolve) =>
      server.close(() => resolve())
    );
    for (const socket of sockets) socket.destroy();
    await closed;
  });
  const secure = tls ? "s" : "";
  return {
    origin: `http${secure}://127.0.0.1:${port}`,
    wsUrl: (path) => `ws${secure}://127.0.0.1:${port}${path}`,
    nextConnection: () => accepted.shift(),
    report: (name) => reportQueue(name).shift(),
  };
}

/** A queue whose `shift()` waits for the next item. */
class Queue<T> {
  #items: T[] = [];
  #waiters: ((item: T) => void)[] = [];

  push(item: T): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) waiter(item);
    else this.#items.push(item);
  }

  shift(): Promise<T> {
    if (this.#items.length > 0) return Promise.resolve(this.#items.shift()!);
    return new Promise((resolve) => this.#waiters.push(resolve));
  }
}

// ---------------------------------------------------------------------------
// Child processes

/** A child process whose output is kept, with its lines awaitable. */
export interface Process {
  readonly child: ChildProcess;
  /** The first stdout line (past or future) matching `pattern`. */
  line(pattern: RegExp): Promise<RegExpExecArray>;
  /** Stdout and stderr so far (the last 64 KiB of each). */
  output(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
}

const KEEP = 64 * 1024;

/** Starts tests/interop/peer.py (Python's websockets) with `args`. */
export function pythonPeer(
  scope: Scope,
  ...args: string[]
): ReturnType<typeof startProcess> {
  return startProcess(scope, PYTHON, [join(INTEROP_DIR, "peer.py"), ...args], {
    name: "peer.py",
  });
}

/**
 * Starts `command` with stdout and stderr captured. With `group`, it gets
 * a process group of its own, killed whole (a browser and its helpers).
 * Killed with SIGKILL when the scope closes, if it is still running.
 */
export function startProcess(
  scope: Scope,
  command: string,
  args: readonly string[],
  { group = false, name = command, noise }: {
    group?: boolean;
    name?: string;
    /** Stderr lines to leave out of `output()`. */
    noise?: RegExp;
  } = {},
): Process {
  const child = spawn(command, args, {
    stdio: ["ignore", "pipe", "pipe"],
    detached: group,
    env: { ...process.env, PYTHONUNBUFFERED: "1" },
  });
  let stdout = "";
  let stderr = "";
  let partial = "";
  const lines: string[] = [];
  const waiters = new Set<
    { pattern: RegExp; resolve: (m: RegExpExecArray) => void }
  >();
  child.stdout!.setEncoding("utf8");
  child.stderr!.setEncoding("utf8");
  child.stdout!.on("data", (text: string) => {
    stdout = (stdout + text).slice(-KEEP);
    partial += text;
    let at;
    while ((at = partial.indexOf("\n")) >= 0) {
      const line = partial.slice(0, at);
      partial = partial.slice(at + 1);
      lines.push(line);
      for (const waiter of waiters) {
        const match = waiter.pattern.exec(line);
        if (match !== null) {
          waiters.delete(waiter);
          waiter.resolve(match);
        }
      }
    }
  });
  child.stderr!.on("data", (text: string) => {
    stderr = (stderr + text).slice(-KEEP);
  });
  let running = true;
  const exited = new Promise<{ code: number | null; signal: string | null }>(
    (resolve) => {
      child.once("error", (error) => {
        running = false;
        stderr += `\nspawn error: ${error.message}`;
        resolve({ code: null, signal: null });
      });
      child.once("exit", (code, signal) => {
        running = false;
        resolve({ code, signal });
      });
    },
  );
  const output = () => {
    const err = noise === undefined ? stderr : stderr.split("\n")
      .filter((line) => !noise.test(line)).join("\n");
    return `[${name} stdout]\n${stdout.trimEnd()}\n[${name} stderr]\n${err.trimEnd()}`;
  };
  scope.diagnose(output);
  scope.defer(async () => {
    if (running && child.pid !== undefined) {
      try {
        if (group) process.kill(-child.pid, "SIGKILL");
        else child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await exited;
    child.stdout!.destroy();
    child.stderr!.destroy();
  });
  return {
    child,
    exited,
    output,
    line(pattern) {
      for (const line of lines) {
        const match = pattern.exec(line);
        if (match !== null) return Promise.resolve(match);
      }
      return new Promise((resolve) => waiters.add({ pattern, resolve }));
    },
  };
}

/** A Python peer's result: the JSON on its "RESULT" line. */
export async function pythonResult(
  peer: Process,
): Promise<Record<string, unknown>> {
  const match = await Promise.race([
    peer.line(/^RESULT (.*)$/),
    peer.exited.then(({ code, signal }) => {
      throw new Error(
        `the Python peer exited (code ${code}, signal ${signal}) without a result\n${peer.output()}`,
      );
    }),
  ]);
  return JSON.parse(match[1]);
}

// What headless Chromium complains about in a container, every time.
const CHROMIUM_NOISE =
  /dbus|Fontconfig|UPower|bluez|idle_linux|vaapi|sandbox_linux|unexpected operator|^\s*$/;

/**
 * Starts headless Chromium on `url`, with a fresh profile that is deleted
 * afterwards; with `tls`, it accepts our self-signed certificate; `args`
 * go on its command line. Its console messages go to stderr (and to the
 * diagnostics).
 */
export function launchChromium(
  scope: Scope,
  executable: string,
  url: string,
  { tls = false, args = [] }: { tls?: boolean; args?: readonly string[] } = {},
): Process & { profile: string } {
  const profile = mkdtempSync(join(tmpdir(), "streamsocket-chromium-"));
  scope.defer(() => rmSync(profile, { recursive: true, force: true }));
  const browser = startProcess(scope, executable, [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    `--user-data-dir=${profile}`,
    "--enable-logging=stderr",
    "--v=0",
    // Our test certificate is self-signed: trust it (and, in this
    // throw-away profile, anything else).
    ...(tls ? ["--ignore-certificate-errors"] : []),
    ...args,
    url,
  ], { group: true, name: "chromium", noise: CHROMIUM_NOISE });
  return { ...browser, profile };
}

// ---------------------------------------------------------------------------
// The exchange, our side

/** What one side received: a message's kind, size, hash, and whether it was right. */
export interface Received {
  name: string;
  type: "text" | "binary";
  size: number;
  sha256: string;
  ok: boolean;
}

/** What our side of an exchange saw. */
export interface SideReport {
  received: Received[];
  /** Our ping() resolved. */
  pong: boolean;
  /** Our ping() between the fragments of a message resolved. */
  midMessagePong: boolean;
  /** `closed`'s value. */
  close?: WebSocketCloseInfo;
  /** The readable ended (done) after the close. */
  readableEnded: boolean;
}

/** The SHA-256 of a message's bytes (text as UTF-8), in hex. */
export function sha256(data: string | Uint8Array): string {
  return createHash("sha256").update(data).digest("hex");
}

function describe(
  name: string,
  data: unknown,
  expected: string | Uint8Array,
): Received {
  if (typeof data === "string") {
    const bytes = new TextEncoder().encode(data);
    return {
      name,
      type: "text",
      size: bytes.length,
      sha256: sha256(bytes),
      ok: data === expected,
    };
  }
  if (data instanceof Uint8Array) {
    return {
      name,
      type: "binary",
      size: data.length,
      sha256: sha256(data),
      ok: expected instanceof Uint8Array && equalBytes(data, expected),
    };
  }
  throw new TypeError(`${name}: expected a message, got ${String(data)}`);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Checks the exchange between our server (`ours`, from `answer()`) and the
 * headless Chromium page (`theirs`, its report): every message both ways,
 * byte for byte, the page's pongs to our pings (one between two
 * fragments), and its close with 4000.
 */
export function assertPageExchange(
  ours: SideReport,
  theirs: Record<string, unknown>,
): void {
  assert.deepEqual(
    ours.received.map(({ name, type, size, sha256, ok }) => ({
      name,
      type,
      size,
      sha256,
      ok,
    })),
    expectedMessages(1, false, false).map((m) => ({ ...m, ok: true })),
    "our server received other messages than chromium sent",
  );
  assert.deepEqual(
    theirs.received,
    expectedMessages(2, true, true).map((m) => ({ ...m, ok: true })),
    "chromium received other messages than our server sent",
  );
  assert.equal(ours.pong, true);
  assert.equal(ours.midMessagePong, true);
  assert.deepEqual(ours.close, {
    closeCode: 4000,
    reason: "bye from chromium",
  });
}

/** What the receiver of a side's messages should report, in order. */
export function expectedMessages(
  seed: number,
  withExtras: boolean,
  end: boolean,
): { name: string; type: "text" | "binary"; size: number; sha256: string }[] {
  const all: { name: string; data: string | Uint8Array }[] = messageSet(seed)
    .map((m) => ({ name: `${m.type} ${m.size}`, data: m.data }));
  if (withExtras) all.push(...extras());
  if (end) all.push({ name: "end", data: END });
  return all.map(({ name, data }) => {
    const bytes = typeof data === "string"
      ? new TextEncoder().encode(data)
      : data;
    return {
      name,
      type: typeof data === "string" ? "text" : "binary",
      size: bytes.length,
      sha256: sha256(bytes),
    };
  });
}

async function receive(
  reader: ReadableStreamDefaultReader<string | Uint8Array>,
  name: string,
  expected: string | Uint8Array,
  report: SideReport,
): Promise<void> {
  const { done, value } = await deadline(
    reader.read(),
    20_000,
    `the message "${name}"`,
  );
  if (done) throw new Error(`the readable ended before the message "${name}"`);
  report.received.push(describe(name, value, expected));
}

function stream(
  chunks: readonly (string | Uint8Array)[],
): ReadableStream<string | Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(chunks[i++]);
      else controller.close();
    },
  }, { highWaterMark: 0 });
}

// Cuts `data` at the offsets in `cuts` (a repeated offset: an empty part).
function cut<T>(data: T[], cuts: readonly number[]): T[][] {
  const bounds = [0, ...cuts, data.length];
  const out: T[][] = [];
  for (let i = 0; i + 1 < bounds.length; i++) {
    out.push(data.slice(bounds[i], bounds[i + 1]));
  }
  return out;
}

// Sends the extras: text with a character split between two fragments and
// one of our pings between them (answered before the rest goes out), then
// a fragmented text and a fragmented binary message.
async function sendExtras(
  ws: Connection,
  writer: WritableStreamDefaultWriter<string | Uint8Array | OutgoingMessage>,
  report: SideReport,
): Promise<void> {
  const split = new TextEncoder().encode(EXTRA_SPLIT);
  let pulls = 0;
  const splitMessage: OutgoingMessage = {
    type: "text",
    // No high-water mark: each pull waits for the encoder to ask, so the
    // first fragment is out before the ping.
    stream: new ReadableStream<Uint8Array>({
      async pull(controller) {
        pulls++;
        if (pulls === 1) {
          controller.enqueue(split.subarray(0, EXTRA_SPLIT_AT));
        } else if (pulls === 2) {
          await deadline(
            ws.ping(new TextEncoder().encode("mid-message")),
            20_000,
            "the pong to a ping between fragments",
          );
          report.midMessagePong = true;
          controller.enqueue(split.subarray(EXTRA_SPLIT_AT));
        } else {
          controller.close();
        }
      },
    }, { highWaterMark: 0 }),
  };
  await writer.write(splitMessage);
  const [, text, binary] = extras();
  // Text is cut between code points, as peer.py cuts it.
  await writer.write({
    type: "text",
    stream: stream(
      cut([...(text.data as string)], TEXT_CUTS).map((part) => part.join("")),
    ),
  });
  await writer.write({
    type: "binary",
    stream: stream(
      cut([...(binary.data as Uint8Array)], BINARY_CUTS).map((part) =>
        new Uint8Array(part)
      ),
    ),
  });
}

function newReport(): SideReport {
  return {
    received: [],
    pong: false,
    midMessagePong: false,
    readableEnded: false,
  };
}

async function endOfReadable(
  reader: ReadableStreamDefaultReader<string | Uint8Array>,
  report: SideReport,
): Promise<void> {
  const { done, value } = await deadline(
    reader.read(),
    10_000,
    "the end of the readable",
  );
  if (!done) {
    throw new Error(
      `a message after the last one: ${String(value).slice(0, 80)}`,
    );
  }
  report.readableEnded = true;
}

/**
 * The answering side, on one of our connections: receives the caller's set
 * (seed 1, and the extras if the caller can fragment), checking every
 * byte; sends set 2 and the extras; pings; sends "end"; waits for the
 * caller's close.
 */
export async function answer(
  ws: Connection,
  { callerFragments }: { callerFragments: boolean },
): Promise<SideReport> {
  const report = newReport();
  const { readable, writable } = await ws.opened;
  const reader = readable.getReader();
  const writer = writable.getWriter();
  for (const m of messageSet(1)) {
    await receive(reader, `${m.type} ${m.size}`, m.data, report);
  }
  if (callerFragments) {
    for (const e of extras()) await receive(reader, e.name, e.data, report);
  }
  for (const m of messageSet(2)) await writer.write(m.data);
  await sendExtras(ws, writer, report);
  await deadline(ws.ping(), 20_000, "the pong to our ping");
  report.pong = true;
  await writer.write(END);
  writer.releaseLock();
  report.close = await deadline(ws.closed, 20_000, "the caller's close");
  await endOfReadable(reader, report);
  return report;
}

/**
 * The calling side, on one of our connections: sends set 1 and the extras;
 * receives set 2, the extras and "end", checking every byte; pings; closes
 * with 4000 and `reason`.
 */
export async function call(
  ws: Connection,
  reason: string,
): Promise<SideReport> {
  const report = newReport();
  const { readable, writable } = await ws.opened;
  const reader = readable.getReader();
  const writer = writable.getWriter();
  for (const m of messageSet(1)) await writer.write(m.data);
  await sendExtras(ws, writer, report);
  for (const m of messageSet(2)) {
    await receive(reader, `${m.type} ${m.size}`, m.data, report);
  }
  for (const e of extras()) await receive(reader, e.name, e.data, report);
  await receive(reader, "end", END, report);
  await deadline(ws.ping(), 20_000, "the pong to our ping");
  report.pong = true;
  writer.releaseLock();
  ws.close({ closeCode: 4000, reason });
  report.close = await deadline(ws.closed, 20_000, "the close handshake");
  await endOfReadable(reader, report);
  return report;
}

/** Reads one message and echoes it, for the short scenarios. */
export async function echoOnce(ws: Connection): Promise<string | Uint8Array> {
  const { readable, writable } = await ws.opened;
  const reader = readable.getReader();
  const { done, value } = await deadline(reader.read(), 20_000, "a message");
  if (done) throw new Error("the readable ended before the first message");
  reader.releaseLock();
  const writer = writable.getWriter();
  await writer.write(value);
  writer.releaseLock();
  return value;
}
