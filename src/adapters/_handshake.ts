// What the node:http and node:http2 adapters share of the server's side of
// the handshake: the options' checks, the hooks' time limit and the head's
// limits.

import {
  DEFAULT_MAX_HEAD_SIZE,
  DEFAULT_MAX_HEADERS,
  type HeadLimits,
} from "../_http.ts";
import type { NodeSocket } from "../_node_socket.ts";
import { checkTime } from "../_options.ts";
import {
  acceptUpgrade,
  type AcceptUpgradeOptions,
  HandshakeError,
  refusalResponse,
  type UpgradeRefused,
  type UpgradeRequest,
  type UpgradeResult,
} from "../handshake.ts";
import {
  checkPerMessageDeflateOptions,
  perMessageDeflateExtension,
  type PerMessageDeflateOptions,
} from "../permessage_deflate.ts";

/** The default of the adapters' `handshakeTimeout`. */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;

/** The handshake's options, as the adapters take them. */
export interface HandshakeOptions
  extends AcceptUpgradeOptions<UpgradeRequest>, HeadLimits {
  handshakeTimeout?: number;
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
}

/**
 * Checks the options, and turns `perMessageDeflate` into the extensions
 * hook that negotiates it (RFC 7692).
 */
export function handshakeOptions<O extends HandshakeOptions>(options: O): O {
  const deflate = checkPerMessageDeflateOptions(options.perMessageDeflate);
  if (deflate !== null && options.extensions !== undefined) {
    throw new TypeError(
      "Cannot upgrade: perMessageDeflate and an extensions hook cannot both be given",
    );
  }
  if (options.handshakeTimeout !== undefined) {
    checkTime("handshakeTimeout", options.handshakeTimeout);
  }
  return deflate === null
    ? options
    : { ...options, extensions: perMessageDeflateExtension(deflate) };
}

/**
 * The handshake's decision: `refused` if the head was already, else what
 * `acceptUpgrade` decides, or a 503 once the hooks have taken longer than
 * `handshakeTimeout`. Only the hooks can make the decision wait: without
 * them, no timer.
 */
export function decide(
  request: UpgradeRequest,
  options: HandshakeOptions,
  refused: UpgradeRefused | null,
): UpgradeRefused | Promise<UpgradeResult> {
  if (refused !== null) return refused;
  const decision = acceptUpgrade(request, options);
  const timeout = options.accept === undefined &&
      options.extensions === undefined
    ? 0
    : options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT;
  if (timeout === 0) return decision;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<UpgradeResult>((resolve) => {
    timer = setTimeout(() =>
      resolve({
        ok: false,
        code: "handshake_timeout",
        status: 503,
        reason: `Cannot upgrade: the handshake took more than ${timeout} ms`,
        headers: new Headers(),
      }), timeout);
  });
  return Promise.race([decision, late]).finally(() => clearTimeout(timer));
}

/**
 * A refusal with 431 for a head over the adapter's own limits, or null.
 * (`node:http` and `node:http2` limit the head too, but not the same way
 * on every runtime: Deno's `node:http` hands on up to 1000 headers.)
 * `raw` is the header names and values, alternating.
 */
export function checkHead(
  method: string | undefined,
  target: string | undefined,
  raw: readonly string[],
  limits: HeadLimits,
): UpgradeRefused | null {
  const maxHeadSize = limits.maxHeadSize ?? DEFAULT_MAX_HEAD_SIZE;
  const maxHeaders = limits.maxHeaders ?? DEFAULT_MAX_HEADERS;
  const refuse = (
    code: "too_many_headers" | "head_too_large",
    reason: string,
  ): UpgradeRefused => ({
    ok: false,
    code,
    status: 431,
    reason,
    headers: new Headers(),
  });
  if (raw.length / 2 > maxHeaders) {
    return refuse(
      "too_many_headers",
      `Cannot upgrade: more than ${maxHeaders} header lines`,
    );
  }
  // The request line, and "name: value\r\n" for each header.
  let size = (method?.length ?? 3) + (target?.length ?? 1) + 12;
  for (let i = 0; i < raw.length; i++) size += raw[i].length + 2;
  if (size > maxHeadSize) {
    return refuse(
      "head_too_large",
      `Cannot upgrade: the request head is larger than ${maxHeadSize} bytes`,
    );
  }
  return null;
}

/**
 * The refusal a client gets when a hook throws (`opened` rejects with what
 * it threw): a 500, rather than no answer at all.
 */
export function hookFailed(): UpgradeRefused {
  return {
    ok: false,
    code: "refused",
    status: 500,
    reason: "Cannot upgrade: the server failed",
    headers: new Headers(),
  };
}

/**
 * Sends a refusal over `connection` (a socket, or an HTTP/2 stream) with
 * `send`, and drops it with `drop` once closeTimeout has passed, if it is
 * still open; throws what `opened` rejects with.
 */
export async function sendRefusal<C extends NodeSocket>(
  connection: C,
  refused: UpgradeRefused,
  closeTimeout: number,
  send: (connection: C, response: Response, body: Uint8Array) => void,
  drop: (connection: C) => void,
): Promise<never> {
  const response = refused.response ?? refusalResponse(refused);
  // Read before the connection is looked at: it may close meanwhile.
  const body = new Uint8Array(await response.arrayBuffer());
  if (connection.destroyed) throw closedDuringHandshake();
  send(connection, response, body);
  // A peer that neither reads the refusal nor hangs up is not waited on
  // for longer than a closing connection would be.
  const linger = setTimeout(drop, closeTimeout, connection);
  connection.on("close", () => clearTimeout(linger));
  throw new HandshakeError(
    `Refused the WebSocket handshake: ${refused.reason}`,
    { code: refused.code, status: response.status },
  );
}

/** What `opened` rejects with when the peer left during the handshake. */
export function closedDuringHandshake(): HandshakeError {
  return new HandshakeError("The socket closed during the handshake", {
    code: "refused",
    status: 0,
  });
}

/**
 * An 'error' listener for the socket or stream while the handshake runs:
 * an 'error' no one listens to crashes the process, and a peer that resets
 * the connection meanwhile must not. The handshake finds it destroyed.
 */
export function ignoreError(): void {}
