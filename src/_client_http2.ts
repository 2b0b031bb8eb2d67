// The client's HTTP/2 path (RFC 8441): one HTTP/2 session per origin, shared
// by every WebSocket to it, each an extended CONNECT on a stream of its own.

import http2 from "node:http2";
import {
  CANCEL,
  fieldsOf,
  http2Duplex,
  type Http2StreamLike,
  rawHeadersOf,
} from "./_http2_stream.ts";
import type { HandshakeResult } from "./connection.ts";
import { connectTarget, deadline, openError } from "./_dial.ts";
import { type ClientHandshake, extendedConnectHeaders } from "./handshake.ts";

/** TLS settings a session is made with, as `WebSocketStream` takes them. */
export interface SessionTls {
  ca?: string | Uint8Array;
  rejectUnauthorized?: boolean;
}

// The parts of a ClientHttp2Session used here.
interface Session {
  request(
    headers: Record<string, string>,
    options?: { endStream?: boolean },
  ): ClientStream;
  close(): void;
  destroy(): void;
  readonly closed: boolean;
  readonly destroyed: boolean;
  readonly remoteSettings?: {
    enableConnectProtocol?: boolean;
    maxConcurrentStreams?: number;
  };
  // deno-lint-ignore no-explicit-any
  on(event: string, listener: (...args: any[]) => void): unknown;
  // deno-lint-ignore no-explicit-any
  once(event: string, listener: (...args: any[]) => void): unknown;
  // deno-lint-ignore no-explicit-any
  off(event: string, listener: (...args: any[]) => void): unknown;
}

interface ClientStream extends Http2StreamLike {
  /** The RST_STREAM code it closed with. */
  readonly rstCode?: number;
  // deno-lint-ignore no-explicit-any
  once(event: string, listener: (...args: any[]) => void): unknown;
}

// A session, and whether its server offers the extended CONNECT: settled
// once its first SETTINGS arrive (RFC 8441 §3: a client MAY use it "upon
// receipt of SETTINGS_ENABLE_CONNECT_PROTOCOL with a value of 1").
interface Pooled {
  session: Session;
  offers: Promise<boolean>;
  // Whether the server's SETTINGS have come: until then, a graceful close
  // would wait for a preface that may never come.
  settled: boolean;
  // The WebSockets on it, and those opening: at none, it is closed.
  users: number;
  // The streams they have opened on it: at the server's
  // SETTINGS_MAX_CONCURRENT_STREAMS, the next WebSocket takes a new
  // session, as nghttp2 would otherwise hold its stream back until one of
  // these closes.
  streams: number;
}

// One session per origin and TLS settings while a WebSocket uses it.
const pool = new Map<string, Pooled>();

function poolKey(url: URL, tls: SessionTls): string {
  const settings = connectTarget(url, tls).tls;
  return `${url.protocol}//${url.host} ${settings.rejectUnauthorized} ${
    settings.ca ?? ""
  }`;
}

function connectSession(url: URL, tls: SessionTls, key: string): Pooled {
  const { secure, tls: settings } = connectTarget(url, tls);
  const session = http2.connect(
    `${secure ? "https" : "http"}://${url.host}`,
    secure ? settings : {},
  ) as unknown as Session;
  const forget = () => {
    if (pool.get(key)?.session === session) pool.delete(key);
  };
  const offers = new Promise<boolean>((resolve, reject) => {
    session.once("remoteSettings", (settings) => {
      resolve(settings?.enableConnectProtocol === true);
    });
    session.once("error", reject);
    session.once("close", () => reject(new Error("The session closed")));
  });
  // An 'error' no one listens to would crash the process: the streams on
  // the session fail with it.
  session.on("error", forget);
  session.on("close", forget);
  session.on("goaway", forget);
  const pooled: Pooled = {
    session,
    offers,
    settled: false,
    users: 0,
    streams: 0,
  };
  offers.then(() => (pooled.settled = true), () => {});
  pool.set(key, pooled);
  return pooled;
}

function release(key: string, pooled: Pooled, streamed: boolean): void {
  if (streamed) pooled.streams--;
  if (--pooled.users > 0) return;
  if (pool.get(key) === pooled) pool.delete(key);
  const session = pooled.session;
  if (!pooled.settled) return session.destroy();
  if (session.closed) return;
  session.close();
  // A graceful close waits on every stream: one the peer never ends does
  // not hold the connection for longer than this.
  const timer = setTimeout(() => session.destroy(), CLOSE_SESSION_TIMEOUT);
  // Not a reason to stay alive: the session itself is, while it is open.
  (timer as { unref?: () => void }).unref?.();
  session.once("close", () => clearTimeout(timer));
}

// RFC 9113 §7: REFUSED_STREAM.
const REFUSED_STREAM = 7;

// How long the client's session may take to close gracefully.
const CLOSE_SESSION_TIMEOUT = 5_000;

/** An HTTP/2 attempt, as `WebSocketStream` drives it. */
export interface Http2Dial {
  /**
   * Resolves with the connection's transport, once the server said 2xx;
   * with `fallback`, null if the server speaks no HTTP/2 or does not offer
   * WebSockets over it.
   */
  result: Promise<HandshakeResult | null>;
  /** Drops the attempt, unless it has succeeded. */
  fail(reason: unknown): boolean;
}

/** What the client checks the response with. */
export type CheckResponse = (
  response: { status: number; headers: Headers },
) => { protocol: string; extensions: string };

/**
 * Opens a WebSocket as an extended CONNECT on a stream of the origin's
 * session, made if there is none. Fails if the server does not offer it
 * (RFC 8441 §3: no SETTINGS_ENABLE_CONNECT_PROTOCOL) or the session cannot
 * connect (or with `fallback`, resolves null then), if it answers other
 * than 2xx, or if `check` throws.
 */
export function dialHttp2(
  handshake: ClientHandshake,
  options: {
    tls: SessionTls;
    timeout: number;
    signal?: AbortSignal;
    check: CheckResponse;
    fallback?: boolean;
  },
): Http2Dial {
  const url = handshake.url;
  const address = url.host;
  const signal = options.signal;
  // WHATWG: "If signal is aborted, then reject this's opened promise and
  // closed promise with signal's abort reason and return."
  if (signal?.aborted) {
    return { result: Promise.reject(signal.reason), fail: () => false };
  }
  const key = poolKey(url, options.tls);
  let pooled = pool.get(key) ?? connectSession(url, options.tls, key);
  pooled.users++;
  let stream: ClientStream | null = null;
  let settle:
    | ((error: unknown, result?: HandshakeResult | null) => void)
    | null = null;
  const fail = (reason: unknown): boolean => {
    if (settle === null) return false;
    settle(reason);
    return true;
  };
  const result = new Promise<HandshakeResult | null>((resolve, reject) => {
    const stop = deadline(address, options.timeout, signal, fail);
    settle = (error, result) => {
      settle = null;
      stop();
      if (result === undefined || result === null) {
        if (stream !== null && !stream.destroyed) {
          // Unread data (a refusal's body) keeps node:http2's stream, and
          // then its session's graceful close, from ever finishing.
          stream.resume();
          stream.close(CANCEL);
        }
        release(key, pooled, stream !== null);
        if (result === null) resolve(null);
        else reject(error);
      } else {
        // The session is released once the WebSocket's stream closes, by a
        // listener that holds nothing of this attempt.
        const opened = stream as ClientStream & Releasing;
        opened.off("close", onEarlyClose);
        opened[RELEASE] = { key, pooled };
        opened.once("close", releaseStream);
        resolve(result);
      }
    };
    pooled.offers.then(open, unreachable);
  });
  function unreachable(error: unknown): void {
    if (settle === null) return;
    if (options.fallback) return settle(null, null);
    fail(
      openError(
        `cannot connect to ${address} over HTTP/2: ${
          error instanceof Error ? error.message : String(error)
        }`,
        error,
        "connect_failed",
      ),
    );
  }

  let retried = false;
  function onEarlyClose(): void {
    // RFC 9113 §8.7: a stream refused with REFUSED_STREAM "has not been
    // processed", and may be retried: once, on the origin's next session
    // (a server going away refuses the streams it will not serve).
    if (settle !== null && !retried && stream?.rstCode === REFUSED_STREAM) {
      retried = true;
      pooled.streams--;
      stream = null;
      move();
      return;
    }
    fail(openError(`${address} reset the stream during the handshake`));
  }

  // On to the origin's next session, made if need be.
  function move(): void {
    const from = pooled;
    const next = pool.get(key);
    pooled = next !== undefined && next !== from
      ? next
      : connectSession(url, options.tls, key);
    pooled.users++;
    release(key, from, false);
    pooled.offers.then(open, unreachable);
  }

  function open(offered: boolean): void {
    if (settle === null) return;
    if (!offered) {
      if (options.fallback) return settle(null, null);
      fail(
        openError(
          `${address} does not offer WebSockets over HTTP/2 (no SETTINGS_ENABLE_CONNECT_PROTOCOL)`,
          undefined,
          "connect_failed",
        ),
      );
      return;
    }
    // This session is full of our streams: the next one. (Not one with
    // none of ours: a server that allows 0 streams for now would have each
    // new session found full, and new ones made until the deadline; there,
    // nghttp2 holds the stream until the server allows it.)
    const limit = pooled.session.remoteSettings?.maxConcurrentStreams;
    if (limit !== undefined && pooled.streams > 0 && pooled.streams >= limit) {
      return move();
    }
    let current: ClientStream;
    try {
      current = pooled.session.request(extendedConnectHeaders(handshake), {
        endStream: false,
      });
    } catch (error) {
      fail(openError(`cannot open a stream to ${address}`, error));
      return;
    }
    pooled.streams++;
    stream = current;
    // An 'error' no one listens to crashes the process; the 'close' after
    // it fails the attempt.
    current.on("error", ignore);
    current.once("close", onEarlyClose);
    current.once("response", (fields: Record<string, unknown>) => {
      if (settle === null) return;
      const headers = fieldsOf(rawHeadersOf(fields));
      let agreed;
      try {
        agreed = options.check({ status: Number(fields[":status"]), headers });
      } catch (error) {
        fail(error);
        return;
      }
      const duplex = http2Duplex(current);
      current.off("error", ignore);
      settle(
        null,
        Object.assign(duplex, {
          protocol: agreed.protocol,
          extensions: agreed.extensions,
          head: new Uint8Array(0),
        }),
      );
    });
  }

  return { result, fail };
}

function ignore(): void {}

// An open WebSocket's stream: what to release when it closes.
const RELEASE = Symbol("release");

interface Releasing {
  [RELEASE]?: { key: string; pooled: Pooled };
}

function releaseStream(this: Releasing): void {
  const { key, pooled } = this[RELEASE]!;
  this[RELEASE] = undefined;
  release(key, pooled, true);
}
