/**
 * The client's opening handshake (RFC 6455 §4.1): the request headers, with
 * a fresh key, and the checks of the server's response.
 *
 * @module
 */

import { equalsIgnoreCase, isToken, listHas, splitList } from "./_http.ts";
import { HandshakeError, type HandshakeErrorCode } from "./handshake_error.ts";
import { acceptKeySync, base64, VERSION } from "./accept_key.ts";
import { type ExtensionOffer, parseExtensions } from "./extensions.ts";

/** Options for {@linkcode clientHandshake}. */
export interface ClientHandshakeOptions {
  /**
   * The subprotocols to offer, most preferred first: distinct tokens.
   *
   * @default {[]}
   */
  protocols?: string | readonly string[];
  /**
   * The `Sec-WebSocket-Extensions` offer, such as a permessage-deflate
   * module gives.
   *
   * @default {""} (none)
   */
  extensions?: string;
  /**
   * The `Origin` to send. Browsers must send one (§4.1 item 8); other
   * clients may.
   *
   * @default {undefined} (none)
   */
  origin?: string;
  /**
   * More request headers: cookies, `Authorization`, `User-Agent`. They may
   * not set the handshake's own (`Host`, `Upgrade`, `Connection`, `Origin`
   * and the `Sec-WebSocket-*` headers).
   *
   * @default {{}}
   */
  headers?: HeadersInit;
  /**
   * Fills its argument with random bytes, for the key. Tests pass a
   * predictable one; anything else should keep the default, as §4.1 item
   * 7 requires the nonce be "selected randomly for each connection".
   *
   * @default {(bytes) => crypto.getRandomValues(bytes)}
   */
  random?: (bytes: Uint8Array) => void;
}

/** A client's opening handshake, from {@linkcode clientHandshake}. */
export interface ClientHandshake {
  /** The WebSocket URL, its scheme ws: or wss:, its fragment dropped. */
  url: URL;
  /** The request target: the URL's path and query ("/chat?room=1"). */
  target: string;
  /** The `Sec-WebSocket-Key` sent, to check the answer with. */
  key: string;
  /** The request headers, `Host` included. */
  headers: Headers;
  /** The subprotocols offered. */
  protocols: string[];
  /** The extensions offered, or "" for none. */
  extensions: string;
}

const encoder = new TextEncoder();

const OWN_HEADERS = [
  "host",
  "upgrade",
  "connection",
  "origin",
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-protocol",
  "sec-websocket-extensions",
];

function defaultRandom(bytes: Uint8Array): void {
  crypto.getRandomValues(bytes);
}

/**
 * The client's opening handshake (RFC 6455 §4.1): the request to send for
 * a `ws:`, `wss:`, `http:` or `https:` URL (the last two as the WHATWG
 * `WebSocket` reads them), with a fresh key. Send
 * `GET ${target} HTTP/1.1` with `headers`, then check the answer with
 * {@linkcode verifyResponse}. A user name and password in the URL become
 * an `Authorization: Basic` header. Bad arguments throw a `TypeError`.
 *
 * @example The request for a chat server
 * ```ts
 * import { clientHandshake } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const handshake = clientHandshake("wss://example.com/chat?room=1", {
 *   protocols: ["chat.v2", "chat"],
 * });
 * assert.equal(handshake.target, "/chat?room=1");
 * assert.equal(handshake.headers.get("host"), "example.com");
 * assert.equal(handshake.headers.get("sec-websocket-version"), "13");
 * assert.equal(handshake.headers.get("sec-websocket-protocol"), "chat.v2, chat");
 * assert.equal(handshake.headers.get("sec-websocket-key"), handshake.key);
 * assert.equal(handshake.key.length, 24);
 * ```
 */
export function clientHandshake(
  url: string | URL,
  options: ClientHandshakeOptions = {},
): ClientHandshake {
  const parsed = new URL(url);
  // WHATWG WebSocket: http: and https: URLs are read as ws: and wss:.
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  else if (parsed.protocol === "https:") parsed.protocol = "wss:";
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new TypeError(
      `Cannot open WebSocket: the URL's scheme must be ws: or wss:, got ${parsed.protocol}`,
    );
  }
  // §3: "Fragment identifiers are meaningless in the context of WebSocket
  // URIs".
  parsed.hash = "";

  const protocols = typeof options.protocols === "string"
    ? [options.protocols]
    : [...(options.protocols ?? [])];
  const seen = new Set<string>();
  for (const protocol of protocols) {
    if (typeof protocol !== "string" || !isToken(protocol)) {
      throw new TypeError(
        `Cannot open WebSocket: subprotocol ${String(protocol)} is not a token`,
      );
    }
    if (seen.has(protocol)) {
      throw new TypeError(
        `Cannot open WebSocket: subprotocol ${protocol} is offered twice`,
      );
    }
    seen.add(protocol);
  }
  const extensions = options.extensions ?? "";
  if (extensions !== "") {
    try {
      parseExtensions(extensions);
    } catch (error) {
      throw new TypeError(
        `Cannot open WebSocket: invalid extensions offer ${extensions}`,
        { cause: error },
      );
    }
  }

  const nonce = new Uint8Array(16);
  (options.random ?? defaultRandom)(nonce);
  const key = base64(nonce);

  // §4.1 items 4–11.
  const headers = new Headers({
    host: parsed.host,
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-key": key,
    "sec-websocket-version": VERSION,
  });
  if (protocols.length > 0) {
    headers.set("sec-websocket-protocol", protocols.join(", "));
  }
  if (extensions !== "") headers.set("sec-websocket-extensions", extensions);
  if (options.origin !== undefined) headers.set("origin", options.origin);
  if (parsed.username !== "" || parsed.password !== "") {
    const credentials = `${decodeUserinfo(parsed.username)}:${
      decodeUserinfo(parsed.password)
    }`;
    headers.set(
      "authorization",
      `Basic ${base64(encoder.encode(credentials))}`,
    );
    parsed.username = "";
    parsed.password = "";
  }
  for (const [name, value] of new Headers(options.headers)) {
    if (OWN_HEADERS.includes(name)) {
      throw new TypeError(
        `Cannot open WebSocket: the ${name} header is the handshake's own`,
      );
    }
    headers.append(name, value);
  }

  return {
    url: parsed,
    target: `${parsed.pathname}${parsed.search}`,
    key,
    headers,
    protocols,
    extensions,
  };
}

/**
 * The HTTP/2 request headers of the same handshake as an extended CONNECT
 * (RFC 8441 §5), for a connection whose server sent
 * `SETTINGS_ENABLE_CONNECT_PROTOCOL`: `:method` CONNECT, `:protocol`
 * websocket, `:scheme`, `:path` and `:authority`, then the handshake's
 * headers without `Host`, `Upgrade`, `Connection` and the key. Check the
 * answer with {@linkcode verifyResponse} and `http2: true`.
 *
 * @example The CONNECT for a chat server
 * ```ts
 * import { clientHandshake, extendedConnectHeaders } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const headers = extendedConnectHeaders(
 *   clientHandshake("wss://example.com/chat", { protocols: ["chat"] }),
 * );
 * assert.equal(headers[":method"], "CONNECT");
 * assert.equal(headers[":protocol"], "websocket");
 * assert.equal(headers[":scheme"], "https");
 * assert.equal(headers[":authority"], "example.com");
 * assert.equal(headers["sec-websocket-protocol"], "chat");
 * assert.equal(headers["sec-websocket-key"], undefined);
 * ```
 */
export function extendedConnectHeaders(
  handshake: ClientHandshake,
): Record<string, string> {
  const { url, target } = handshake;
  const headers: Record<string, string> = {
    ":method": "CONNECT",
    ":protocol": "websocket",
    // §5: the scheme "MUST be "https" for "wss"-schemed WebSockets and
    // "http" for "ws"-schemed WebSockets".
    ":scheme": url.protocol === "wss:" ? "https" : "http",
    ":path": target,
    ":authority": url.host,
  };
  for (const [name, value] of handshake.headers) {
    // §5: Connection and Upgrade "MUST NOT be included"; Host is conveyed
    // as :authority; the key is not used.
    if (
      name !== "host" && name !== "upgrade" && name !== "connection" &&
      name !== "sec-websocket-key"
    ) headers[name] = value;
  }
  return headers;
}

function decodeUserinfo(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The parts of a response the client's handshake reads. A `Response` is one. */
export interface HandshakeResponse {
  /** The status code. */
  readonly status: number;
  /** The response headers. */
  readonly headers: Headers;
}

/** What the client offered: a {@linkcode ClientHandshake} is one. */
export interface ClientOffer {
  /** The `Sec-WebSocket-Key` sent. */
  key: string;
  /**
   * The request was an HTTP/2 extended CONNECT (RFC 8441, from
   * {@linkcode extendedConnectHeaders}): success is a 2xx, with no
   * `Upgrade`, `Connection` or `Sec-WebSocket-Accept` to check.
   *
   * @default {false}
   */
  http2?: boolean;
  /**
   * The subprotocols offered.
   *
   * @default {[]}
   */
  protocols?: readonly string[];
  /**
   * The `Sec-WebSocket-Extensions` offered.
   *
   * @default {""}
   */
  extensions?: string;
}

/** What the server agreed to, from {@linkcode verifyResponse}. */
export interface ServerAgreement {
  /** The subprotocol in use, or "" for none. */
  protocol: string;
  /** The extensions in use as the server listed them, or "" for none. */
  extensions: string;
  /** The same, parsed, in the order they apply (§9.1). */
  accepted: ExtensionOffer[];
}

/**
 * Checks the server's answer to a client's opening handshake (RFC 6455
 * §4.1, the client's validation steps 1–6) and returns what was agreed.
 *
 * @throws {HandshakeError} when the connection must fail: a status other
 * than 101 (`unexpected_status`, with the status received, for the caller
 * to handle per HTTP: authenticate, follow a redirect), an `Upgrade` other
 * than websocket, a `Connection` without upgrade, a wrong
 * `Sec-WebSocket-Accept`, a subprotocol not offered (or several), or an
 * extension not offered (or one twice, or a malformed list).
 *
 * @example Checking a server's 101
 * ```ts
 * import { acceptUpgrade, clientHandshake, verifyResponse } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const handshake = clientHandshake("ws://localhost:8080/", { protocols: ["chat"] });
 * const server = await acceptUpgrade(
 *   { method: "GET", headers: handshake.headers },
 *   { protocols: ["chat"] },
 * );
 * assert.ok(server.ok);
 * const agreed = verifyResponse({ status: 101, headers: server.headers }, handshake);
 * assert.equal(agreed.protocol, "chat");
 * assert.equal(agreed.extensions, "");
 * ```
 */
export function verifyResponse(
  response: HandshakeResponse,
  offer: ClientOffer,
): ServerAgreement {
  const { status, headers } = response;
  const fail = failure(status);
  if (offer.http2 === true) {
    // RFC 8441 §5: its server answers 200, and as for any CONNECT, a 2xx
    // opens the tunnel (RFC 9110 §9.3.6). Then on to step 5: the key's
    // processing "has been superseded by the :protocol pseudo-header
    // field", and HTTP/2 has no Upgrade or Connection.
    if (status < 200 || status > 299) {
      fail("unexpected_status", `the server answered ${status}, not 200`);
    }
    return agreement(response, offer);
  }
  // Step 1: anything but 101 is handled "per HTTP [RFC2616] procedures".
  if (status !== 101) {
    fail("unexpected_status", `the server answered ${status}, not 101`);
  }
  // Step 2: "If the response lacks an |Upgrade| header field or the
  // |Upgrade| header field contains a value that is not an ASCII case-
  // insensitive match for the value "websocket", the client MUST _Fail the
  // WebSocket Connection_."
  const upgrade = splitList(headers.get("upgrade") ?? "");
  if (
    upgrade === null || upgrade.length === 0 ||
    !upgrade.every((item) => equalsIgnoreCase(item, "websocket"))
  ) {
    fail("invalid_upgrade", "the Upgrade header must be websocket");
  }
  // Step 3: "... doesn't contain a token that is an ASCII case-insensitive
  // match for the value "Upgrade" ..."
  if (!listHas(headers.get("connection"), "upgrade")) {
    fail("invalid_connection", "the Connection header must include upgrade");
  }
  // Step 4: the accept value, "ignoring any leading and trailing
  // whitespace" (Headers trims it). A repeated header is joined with a
  // comma, and fails too (§11.3.3: it "MUST NOT appear more than once").
  if (headers.get("sec-websocket-accept") !== acceptKeySync(offer.key)) {
    fail("invalid_accept", "Sec-WebSocket-Accept does not match the key");
  }
  return agreement(response, offer);
}

function failure(
  status: number,
): (code: HandshakeErrorCode, message: string) => never {
  return (code, message) => {
    throw new HandshakeError(`Cannot open WebSocket: ${message}`, {
      code,
      status,
    });
  };
}

// Steps 5 and 6: the extensions and the subprotocol.
function agreement(
  response: HandshakeResponse,
  offer: ClientOffer,
): ServerAgreement {
  const { status, headers } = response;
  const fail = failure(status);
  // Step 5: "... indicates the use of an extension that was not present in
  // the client's handshake ..., the client MUST _Fail the WebSocket
  // Connection_."
  const extensions = headers.get("sec-websocket-extensions");
  let accepted: ExtensionOffer[] = [];
  if (extensions !== null) {
    try {
      accepted = parseExtensions(extensions);
    } catch (error) {
      if (!(error instanceof HandshakeError)) throw error;
      throw new HandshakeError(
        `Cannot open WebSocket: ${error.message}`,
        { code: error.code, status, cause: error },
      );
    }
    const offered = offer.extensions ? parseExtensions(offer.extensions) : [];
    const seen = new Set<string>();
    for (const { name } of accepted) {
      if (!offered.some((o) => o.name === name)) {
        fail(
          "unexpected_extension",
          `the server accepted ${name}, not offered`,
        );
      }
      if (seen.has(name)) {
        fail("unexpected_extension", `the server accepted ${name} twice`);
      }
      seen.add(name);
    }
  }
  // Step 6: "... indicates the use of a subprotocol that was not present
  // in the client's handshake ..., the client MUST _Fail the WebSocket
  // Connection_." §11.3.4: it "MUST NOT appear more than once in an HTTP
  // response", so a comma-joined pair is no offered token either.
  const protocol = headers.get("sec-websocket-protocol");
  if (protocol !== null && !(offer.protocols ?? []).includes(protocol)) {
    fail(
      "unexpected_protocol",
      `the server chose subprotocol ${protocol}, not offered`,
    );
  }
  return {
    protocol: protocol ?? "",
    extensions: extensions ?? "",
    accepted,
  };
}
