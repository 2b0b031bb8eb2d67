/**
 * The opening handshake (RFC 6455 §4): the server's checks of an upgrade
 * request and the headers of its 101, the client's request headers and its
 * checks of the response. Pure functions over `Headers`, `Request` and
 * `Response`, with no I/O, so that every adapter shares them.
 *
 * @module
 */

import {
  equalsIgnoreCase,
  isOws,
  isToken,
  isTokenChar,
  MAX_LIST_ITEMS,
  splitList,
} from "./_http.ts";

// RFC 6455 §1.3 and §4.2.2: the GUID appended to the key.
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** The only version of the protocol there is (RFC 6455 §4.1, §11.6). */
const VERSION = "13";

/**
 * Stable identifiers for each way an opening handshake can fail. Match on
 * these, not on the message text.
 *
 * On the server (in {@linkcode UpgradeRefused}): `method_not_allowed`
 * (405), `unsupported_version` (426), `forbidden_origin` (403), `refused`
 * (the `accept` hook's status), `too_many_headers` and `head_too_large`
 * (431, from the `node:http` adapter), `handshake_timeout` (503, hooks that
 * took longer than the adapter's `handshakeTimeout`) and the rest 400. On the client (from
 * {@linkcode verifyResponse}): `unexpected_status`, `invalid_upgrade`,
 * `invalid_connection`, `invalid_accept`, `unexpected_protocol`,
 * `invalid_extensions` and `unexpected_extension`.
 */
export type HandshakeErrorCode =
  | "method_not_allowed"
  | "invalid_http_version"
  | "invalid_upgrade"
  | "invalid_connection"
  | "missing_host"
  | "invalid_key"
  | "invalid_version"
  | "unsupported_version"
  | "forbidden_origin"
  | "invalid_protocols"
  | "invalid_extensions"
  | "refused"
  | "too_many_headers"
  | "head_too_large"
  | "handshake_timeout"
  | "unexpected_status"
  | "invalid_response"
  | "invalid_accept"
  | "unexpected_protocol"
  | "unexpected_extension";

/** Options for {@linkcode HandshakeError}. */
export interface HandshakeErrorOptions {
  /** The stable identifier of the failure. */
  code: HandshakeErrorCode;
  /**
   * On the server, the HTTP status to refuse the request with; on the
   * client, the status of the response received.
   */
  status: number;
  /** The underlying error, if any. */
  cause?: unknown;
}

/**
 * What the peer got wrong in the opening handshake. The client throws it
 * from {@linkcode verifyResponse}; the server turns it into an
 * {@linkcode UpgradeRefused} and never throws it. Its message names the
 * header at fault and is safe to show to the peer.
 *
 * @example Telling a refused handshake from a broken one
 * ```ts
 * import { HandshakeError, verifyResponse } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const response = new Response("Forbidden", { status: 403 });
 * assert.throws(
 *   () => verifyResponse(response, { key: "dGhlIHNhbXBsZSBub25jZQ==" }),
 *   (error) =>
 *     error instanceof HandshakeError && error.code === "unexpected_status" &&
 *     error.status === 403,
 * );
 * ```
 */
export class HandshakeError extends Error {
  /** The stable identifier of the failure. */
  readonly code: HandshakeErrorCode;
  /** The HTTP status to refuse with (server) or that was received (client). */
  readonly status: number;

  /** Creates an error for a failed handshake. */
  constructor(message: string, options: HandshakeErrorOptions) {
    super(message, { cause: options.cause });
    this.name = "HandshakeError";
    this.code = options.code;
    this.status = options.status;
  }
}

const encoder = new TextEncoder();

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode.apply(null, bytes as unknown as number[]));
}

/**
 * The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`:
 * base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")), RFC 6455
 * §4.2.2 step 5.4, computed by `crypto.subtle`. {@linkcode acceptKeySync}
 * gives the same without awaiting.
 *
 * @example The RFC 6455 §1.3 example
 * ```ts
 * import { acceptKey } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await acceptKey("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
 * ```
 */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    encoder.encode(key + GUID),
  );
  return base64(new Uint8Array(digest));
}

/**
 * The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`, as
 * {@linkcode acceptKey} gives it, but synchronously: SHA-1 in JavaScript,
 * 1–2 µs a key, where awaiting `crypto.subtle.digest` takes 2 µs on Bun
 * and 10–40 µs on Node and Deno. The server and client checks use it.
 *
 * @example The RFC 6455 §1.3 example
 * ```ts
 * import { acceptKeySync } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(acceptKeySync("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
 * ```
 */
export function acceptKeySync(key: string): string {
  return base64(sha1(encoder.encode(key + GUID)));
}

// SHA-1 (FIPS 180-4 §6.1). RFC 6455 §10.8: the handshake "doesn't depend
// on any security properties of SHA-1".
function sha1(bytes: Uint8Array): Uint8Array {
  const length = bytes.length;
  // The message, a 1 bit, zeros, and the 64-bit bit length, in 512-bit blocks.
  const words = new Int32Array((((length + 8) >>> 6) + 1) * 16);
  for (let i = 0; i < length; i++) {
    words[i >>> 2] |= bytes[i] << (24 - (i & 3) * 8);
  }
  words[length >>> 2] |= 0x80 << (24 - (length & 3) * 8);
  words[words.length - 2] = Math.floor(length / 0x20000000);
  words[words.length - 1] = length * 8;
  let h0 = 0x67452301;
  let h1 = 0xefcdab89 | 0;
  let h2 = 0x98badcfe | 0;
  let h3 = 0x10325476;
  let h4 = 0xc3d2e1f0 | 0;
  const w = new Int32Array(80);
  for (let block = 0; block < words.length; block += 16) {
    for (let t = 0; t < 16; t++) w[t] = words[block + t];
    for (let t = 16; t < 80; t++) {
      const x = w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16];
      w[t] = (x << 1) | (x >>> 31);
    }
    let a = h0;
    let b = h1;
    let c = h2;
    let d = h3;
    let e = h4;
    for (let t = 0; t < 80; t++) {
      let f: number;
      if (t < 20) f = ((b & c) | (~b & d)) + 0x5a827999;
      else if (t < 40) f = (b ^ c ^ d) + 0x6ed9eba1;
      else if (t < 60) f = ((b & c) | (b & d) | (c & d)) + 0x8f1bbcdc;
      else f = (b ^ c ^ d) + 0xca62c1d6;
      const next = (((a << 5) | (a >>> 27)) + f + e + w[t]) | 0;
      e = d;
      d = c;
      c = (b << 30) | (b >>> 2);
      b = a;
      a = next;
    }
    h0 = (h0 + a) | 0;
    h1 = (h1 + b) | 0;
    h2 = (h2 + c) | 0;
    h3 = (h3 + d) | 0;
    h4 = (h4 + e) | 0;
  }
  const out = new Uint8Array(20);
  const view = new DataView(out.buffer);
  view.setInt32(0, h0);
  view.setInt32(4, h1);
  view.setInt32(8, h2);
  view.setInt32(12, h3);
  view.setInt32(16, h4);
  return out;
}

/**
 * One element of a `Sec-WebSocket-Extensions` list (RFC 6455 §9.1): an
 * extension a client offers, or one a server accepted.
 */
export interface ExtensionOffer {
  /** The extension's token, as sent ("permessage-deflate"). */
  name: string;
  /**
   * Its parameters in the order sent: a value (quoted values unquoted), or
   * `true` for a parameter without one. A null-prototype object, so any
   * name is safe to look up.
   */
  params: Record<string, string | true>;
  /**
   * Set when a parameter is named more than once in this element; `params`
   * holds its first value. RFC 7692 §7 has a server decline such an offer
   * (and the next one tried) and a client fail such a response.
   */
  repeated?: true;
}

/**
 * Parses a `Sec-WebSocket-Extensions` value (RFC 6455 §9.1) into its
 * elements, in order, duplicates kept (a client may offer one extension
 * several ways). Several header lines joined by commas, as `Headers.get`
 * joins them, mean the same as one line. Empty list elements are skipped.
 *
 * Strict where the grammar is: "If a value is received by either the
 * client or the server during negotiation that does not conform to the
 * ABNF below, the recipient of such malformed data MUST immediately _Fail
 * the WebSocket Connection_." A quoted value must be a token once
 * unquoted. A parameter named twice breaks no grammar rule: the element is
 * kept, marked `repeated`, for the extension to decline. At most 256
 * elements and parameters in all. Linear time, no regular expressions.
 *
 * @throws {HandshakeError} with code `invalid_extensions` and status 400
 * if the value is malformed or too long.
 *
 * @example Two offers of permessage-deflate, one with a quoted value
 * ```ts
 * import { parseExtensions } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const offers = parseExtensions(
 *   'permessage-deflate; client_max_window_bits="10", permessage-deflate',
 * );
 * assert.deepEqual(offers.map((o) => o.name), ["permessage-deflate", "permessage-deflate"]);
 * assert.equal(offers[0].params.client_max_window_bits, "10");
 * assert.deepEqual(Object.keys(offers[1].params), []);
 * ```
 */
export function parseExtensions(value: string): ExtensionOffer[] {
  const offers: ExtensionOffer[] = [];
  const length = value.length;
  let items = 0;
  let i = 0;
  const fail = (what: string): never => {
    throw new HandshakeError(
      `Cannot parse Sec-WebSocket-Extensions: ${what} at character ${i}`,
      { code: "invalid_extensions", status: 400 },
    );
  };
  const skipOws = () => {
    while (i < length && isOws(value.charCodeAt(i))) i++;
  };
  const token = (what: string): string => {
    const start = i;
    while (i < length && isTokenChar(value.charCodeAt(i))) i++;
    if (i === start) fail(`expected ${what}`);
    return value.slice(start, i);
  };
  while (true) {
    skipOws();
    if (i >= length) break;
    if (value.charCodeAt(i) === 0x2c) { // an empty element
      i++;
      continue;
    }
    if (++items > MAX_LIST_ITEMS) fail("too many elements");
    const name = token("an extension name");
    const params: Record<string, string | true> = Object.create(null);
    let repeated = false;
    skipOws();
    while (i < length && value.charCodeAt(i) === 0x3b) { // ";"
      i++;
      skipOws();
      if (++items > MAX_LIST_ITEMS) fail("too many parameters");
      const param = token("a parameter name");
      skipOws();
      let paramValue: string | true = true;
      if (i < length && value.charCodeAt(i) === 0x3d) { // "="
        i++;
        skipOws();
        paramValue = value.charCodeAt(i) === 0x22
          ? quoted()
          : token("a parameter value");
        skipOws();
      }
      if (Object.hasOwn(params, param)) repeated = true;
      else params[param] = paramValue;
    }
    offers.push(repeated ? { name, params, repeated } : { name, params });
    if (i < length && value.charCodeAt(i) !== 0x2c) fail("expected , or ;");
    i++;
  }
  return offers;

  // quoted-string, which must unquote to a token (RFC 6455 §9.1).
  function quoted(): string {
    i++; // the opening quote
    let out = "";
    while (i < length) {
      let code = value.charCodeAt(i++);
      if (code === 0x22) {
        if (out.length === 0) fail("an empty quoted value");
        return out;
      }
      if (code === 0x5c) { // quoted-pair
        if (i >= length) break;
        code = value.charCodeAt(i++);
      }
      if (!isTokenChar(code)) fail("a quoted value that is not a token");
      out += String.fromCharCode(code);
    }
    return fail("an unterminated quoted value");
  }
}

/**
 * The parts of a request the server's handshake reads. A `Request` is one;
 * an adapter over `node:http` or a raw socket builds one, with
 * `httpVersion` from the request line.
 */
export interface UpgradeRequest {
  /** The request method. */
  readonly method: string;
  /** The request headers. */
  readonly headers: Headers;
  /** The request URL; its host stands in for a missing `Host` header. */
  readonly url?: string;
  /** The HTTP version ("1.1"), where known; HTTP/1.0 is refused. */
  readonly httpVersion?: string;
}

/**
 * Who may connect, judged by the `Origin` header (RFC 6455 §10.2). A
 * request without one is not from a browser (§4.2.1 item 7: "A connection
 * attempt lacking this header field SHOULD NOT be interpreted as coming
 * from a browser client"): every policy but a function lets it through,
 * as the policy exists to stop scripts on other sites from connecting
 * with the user's cookies.
 *
 * - `"same-origin"`: the origin's host and port must be the `Host`
 *   header's, ASCII case-insensitively (like gorilla/websocket).
 * - `"*"`: any origin.
 * - a list of origins such as `"https://example.com"`: one must match.
 * - a function, given the origin (`null` when absent): `true` lets in.
 */
export type OriginPolicy<R extends UpgradeRequest = UpgradeRequest> =
  | "same-origin"
  | "*"
  | readonly string[]
  | ((origin: string | null, request: R) => boolean);

/**
 * What an `extensions` hook returns to accept extensions: the
 * `Sec-WebSocket-Extensions` value to answer with, plus whatever the hook
 * needs to remember about them (returned as `agreement`).
 */
export interface ExtensionAgreement {
  /** The response header value; only extensions the client offered. */
  response: string;
}

/** What the server agreed, as the `accept` hook sees it. */
export interface Negotiated {
  /** The chosen subprotocol, or "" for none. */
  protocol: string;
  /** The `Sec-WebSocket-Extensions` value to answer with, or "" for none. */
  extensions: string;
}

/** Options for {@linkcode acceptUpgrade}. */
export interface AcceptUpgradeOptions<
  R extends UpgradeRequest = UpgradeRequest,
  A extends ExtensionAgreement = ExtensionAgreement,
> {
  /**
   * Who may connect, by `Origin`; see {@linkcode OriginPolicy}. Refused
   * with 403.
   *
   * @default {"same-origin"}
   */
  origins?: OriginPolicy<R>;
  /**
   * The subprotocols the server speaks. The client lists its own "ordered
   * by preference" (§4.2.1 item 8), so the first one it offered that is
   * in this list is chosen, whatever this list's order. Or a function
   * given the offered list, returning one of them, or `undefined` for
   * none; returning one not offered is a `TypeError`. A server answers
   * only with a protocol the client offered (§4.2.2 step 4, /subprotocol/).
   *
   * @default {[]} (no subprotocol)
   */
  protocols?:
    | readonly string[]
    | ((offered: string[], request: R) => string | undefined);
  /**
   * Decides which of the offered extensions to use: given the client's
   * offers in order, returns the response value and whatever it needs to
   * keep, or `undefined` for none. Naming an extension the client did not
   * offer is a `TypeError` ("Extensions not listed by the client MUST NOT
   * be listed", §4.2.2 step 4).
   *
   * @default {undefined} (no extension is accepted)
   */
  extensions?: (
    offers: ExtensionOffer[],
    request: R,
  ) => A | undefined | Promise<A | undefined>;
  /**
   * Called last, once the request is a valid handshake, with what was
   * negotiated: `true` accepts, `false` refuses with 403, and a `Response`
   * refuses with that response (a 401 with `WWW-Authenticate`, a redirect:
   * §4.2.2 steps 2 and 3). Where cookies and authentication are checked.
   *
   * @default {undefined} (accept)
   */
  accept?: (
    request: R,
    negotiated: Negotiated,
  ) => boolean | Response | Promise<boolean | Response>;
}

/** The server accepts: send a 101 with `headers`, then speak WebSocket. */
export interface UpgradeAccepted<
  A extends ExtensionAgreement = ExtensionAgreement,
> {
  /** Always true: the handshake was accepted. */
  ok: true;
  /** 101 Switching Protocols. */
  status: 101;
  /**
   * The 101's headers: `Upgrade`, `Connection`, `Sec-WebSocket-Accept`,
   * and `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions` when
   * agreed.
   */
  headers: Headers;
  /** The client's `Sec-WebSocket-Key`. */
  key: string;
  /** The chosen subprotocol, or "" for none. */
  protocol: string;
  /** The agreed `Sec-WebSocket-Extensions` value, or "" for none. */
  extensions: string;
  /** What the `extensions` hook returned, if it accepted any. */
  agreement: A | undefined;
}

/**
 * The server refuses: answer with `status`, `headers` and `reason` as the
 * body ({@linkcode refusalResponse} builds it), or with `response` when
 * the `accept` hook gave one.
 */
export interface UpgradeRefused {
  /** Always false: the handshake was refused. */
  ok: false;
  /** The stable identifier of what was wrong. */
  code: HandshakeErrorCode;
  /** The HTTP status to answer with. */
  status: number;
  /** A short explanation, safe to send to the client. */
  reason: string;
  /** Headers the refusal needs: `Allow` on 405, `Sec-WebSocket-Version` on 426. */
  headers: Headers;
  /** The response the `accept` hook refused with, if it gave one. */
  response?: Response;
}

/** What {@linkcode acceptUpgrade} decided. */
export type UpgradeResult<A extends ExtensionAgreement = ExtensionAgreement> =
  | UpgradeAccepted<A>
  | UpgradeRefused;

function refuse(
  code: HandshakeErrorCode,
  status: number,
  message: string,
): never {
  throw new HandshakeError(`Cannot upgrade: ${message}`, { code, status });
}

// "1.1", "2", "2.0" → whether at least 1.1; malformed → null.
function atLeastHttp11(version: string): boolean | null {
  let i = 0;
  let major = 0;
  let minor = 0;
  const length = version.length;
  if (length === 0 || length > 8) return null;
  for (; i < length && version.charCodeAt(i) !== 0x2e; i++) {
    const digit = version.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return null;
    major = major * 10 + digit;
  }
  if (i === 0) return null;
  if (i < length) {
    if (++i === length) return null;
    for (; i < length; i++) {
      const digit = version.charCodeAt(i) - 0x30;
      if (digit < 0 || digit > 9) return null;
      minor = minor * 10 + digit;
    }
  }
  return major > 1 || (major === 1 && minor >= 1);
}

const BASE64 = new Uint8Array(128);
for (
  const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
) BASE64[c.charCodeAt(0)] = 1;

// §4.2.1 item 5: "base64-encoded ... value that, when decoded, is 16 bytes
// in length": 22 base64 characters and "==". The unused low bits of the
// last character are not checked: the RFC's own example in §4.1,
// "AQIDBAUGBwgJCgsMDQ4PEC==", has them set.
function isNonce(key: string): boolean {
  if (
    key.length !== 24 || key.charCodeAt(22) !== 0x3d ||
    key.charCodeAt(23) !== 0x3d
  ) return false;
  for (let i = 0; i < 22; i++) {
    const code = key.charCodeAt(i);
    if (code >= 128 || BASE64[code] !== 1) return false;
  }
  return true;
}

// The request's authority, or null if it has none that is valid. RFC 9112
// §3.2: "A server MUST respond with a 400 (Bad Request) status code to any
// HTTP/1.1 request message that lacks a Host header field and to any
// request message that contains more than one Host header field line or a
// Host header field with an invalid field value." (Two lines reach here
// joined by a comma, which normalizeHost refuses.)
function hostOf(request: UpgradeRequest): string | null {
  const host = request.headers.get("host");
  if (host === null) {
    // A Fetch request (Deno.serve, Bun.serve) may carry its authority in
    // its URL only.
    if (request.url === undefined) return null;
    try {
      return new URL(request.url).host || null;
    } catch {
      return null;
    }
  }
  return host !== "" && normalizeHost(host, "http:") !== null ? host : null;
}

// The host and port of `authority` as the URL parser normalizes them for
// `scheme` (lowercase, default port dropped), or null if it is not one.
function normalizeHost(authority: string, scheme: string): string | null {
  for (let i = 0; i < authority.length; i++) {
    const code = authority.charCodeAt(i);
    // Only a host and port: no path, query, fragment, userinfo, spaces,
    // or the comma that joins two header lines.
    if (
      code <= 0x20 || code === 0x2f || code === 0x3f || code === 0x23 ||
      code === 0x40 || code === 0x5c || code === 0x2c || code >= 0x7f
    ) return null;
  }
  try {
    return new URL(`${scheme}//${authority}`).host;
  } catch {
    return null;
  }
}

function parseUrl(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}

function originAllowed<R extends UpgradeRequest>(
  policy: OriginPolicy<R>,
  origin: string | null,
  request: R,
): boolean {
  if (typeof policy === "function") return policy(origin, request) === true;
  if (policy === "*" || origin === null) return true;
  // "null" (an opaque origin, such as a sandboxed iframe's) is no host.
  const url = origin === "null" ? null : parseUrl(origin);
  if (policy === "same-origin") {
    const host = hostOf(request);
    if (url === null || host === null || url.host === "") return false;
    const expected = normalizeHost(host, url.protocol);
    return expected !== null && equalsIgnoreCase(expected, url.host);
  }
  if (!Array.isArray(policy)) {
    throw new TypeError(
      `Cannot upgrade: origins must be "same-origin", "*", a list or a function, got ${
        String(policy)
      }`,
    );
  }
  for (const allowed of policy) {
    if (equalsIgnoreCase(allowed, origin)) return true;
    if (url === null || url.origin === "null") continue;
    const other = parseUrl(allowed);
    if (other !== null && other.origin === url.origin) return true;
  }
  return false;
}

// §4.1 item 10: "The elements that comprise this value MUST be non-empty
// strings with characters in the range U+0021 to U+007E not including
// separator characters as defined in [RFC2616] and MUST all be unique
// strings."
function parseProtocols(value: string | null): string[] {
  if (value === null) return [];
  const offered = splitList(value);
  if (offered === null) {
    return refuse(
      "invalid_protocols",
      400,
      "too many Sec-WebSocket-Protocol values",
    );
  }
  const seen = new Set<string>();
  for (const protocol of offered) {
    if (!isToken(protocol) || seen.has(protocol)) {
      refuse(
        "invalid_protocols",
        400,
        "Sec-WebSocket-Protocol must be distinct tokens",
      );
    }
    seen.add(protocol);
  }
  return offered;
}

function chooseProtocol<R extends UpgradeRequest>(
  option: AcceptUpgradeOptions<R>["protocols"],
  offered: string[],
  request: R,
): string {
  if (option === undefined || offered.length === 0) return "";
  if (typeof option === "function") {
    const chosen = option(offered.slice(), request);
    if (chosen === undefined) return "";
    if (!offered.includes(chosen)) {
      throw new TypeError(
        `Cannot upgrade: the protocols function chose ${
          String(chosen)
        }, which the client did not offer`,
      );
    }
    return chosen;
  }
  for (const protocol of offered) {
    if (option.includes(protocol)) return protocol;
  }
  return "";
}

// Checks the request, in the order a client can best act on: what makes it
// no WebSocket handshake at all, then the version, then the origin.
function check(request: UpgradeRequest): string {
  // §4.2.1 item 1: "An HTTP/1.1 or higher GET request". Any other method
  // is 405, which MUST name the allowed ones (RFC 9110 §15.5.6).
  if (request.method !== "GET") {
    refuse("method_not_allowed", 405, "the method must be GET");
  }
  if (
    request.httpVersion !== undefined &&
    atLeastHttp11(request.httpVersion) !== true
  ) {
    refuse("invalid_http_version", 400, "HTTP/1.1 or later is required");
  }
  // §4.2.1 item 3: "An |Upgrade| header field containing the value
  // "websocket", treated as an ASCII case-insensitive value."
  if (!listHas(request.headers.get("upgrade"), "websocket")) {
    refuse("invalid_upgrade", 400, "the Upgrade header must include websocket");
  }
  // §4.2.1 item 4: "A |Connection| header field that includes the token
  // "Upgrade", treated as an ASCII case-insensitive value."
  if (!listHas(request.headers.get("connection"), "upgrade")) {
    refuse(
      "invalid_connection",
      400,
      "the Connection header must include upgrade",
    );
  }
  // §4.2.1 item 2: "A |Host| header field containing the server's authority."
  if (hostOf(request) === null) {
    refuse("missing_host", 400, "the Host header is missing or invalid");
  }
  // §4.2.1 item 5, and §11.3.1: "The |Sec-WebSocket-Key| header field MUST
  // NOT appear more than once in an HTTP request" (two would be joined by
  // a comma, and fail here).
  const key = request.headers.get("sec-websocket-key");
  if (key === null || !isNonce(key)) {
    refuse(
      "invalid_key",
      400,
      "Sec-WebSocket-Key must be 16 bytes in base64",
    );
  }
  // §4.2.1 item 6, §4.2.2 step 4 (/version/): "If this version does not
  // match a version understood by the server, the server MUST abort ... and
  // instead send an appropriate HTTP error code (such as 426 Upgrade
  // Required) and a |Sec-WebSocket-Version| header field indicating the
  // version(s) the server is capable of understanding."
  const version = request.headers.get("sec-websocket-version");
  if (version !== VERSION) {
    // §11.3.5: it "MUST NOT appear more than once in an HTTP request".
    if (version !== null && version.includes(",")) {
      refuse(
        "invalid_version",
        400,
        "Sec-WebSocket-Version must appear once",
      );
    }
    refuse("unsupported_version", 426, "Sec-WebSocket-Version must be 13");
  }
  return key;
}

function listHas(value: string | null, token: string): boolean {
  if (value === null) return false;
  const items = splitList(value);
  if (items === null) return false;
  for (const item of items) if (equalsIgnoreCase(item, token)) return true;
  return false;
}

function refusalHeaders(code: HandshakeErrorCode): Headers {
  const headers = new Headers();
  if (code === "method_not_allowed") headers.set("allow", "GET");
  // §4.4: the server "MUST respond with a |Sec-WebSocket-Version| header
  // field ... containing all versions it is willing to use".
  if (code === "unsupported_version" || code === "invalid_version") {
    headers.set("sec-websocket-version", VERSION);
  }
  return headers;
}

/**
 * The server's side of the opening handshake (RFC 6455 §4.2): checks an
 * upgrade request, chooses a subprotocol and extensions, asks the `accept`
 * hook, and says either how to accept (the 101's headers) or how to
 * refuse. It never throws for anything the client sent; it throws a
 * `TypeError` for the caller's mistakes (a hook choosing what the client
 * did not offer), and passes on what the hooks throw.
 *
 * Refusals, checked in this order: not GET, 405 with `Allow: GET`; an HTTP
 * version below 1.1, an `Upgrade` without `websocket`, a `Connection`
 * without `upgrade`, no `Host`, a `Sec-WebSocket-Key` that is not 16
 * bytes of base64, 400; a `Sec-WebSocket-Version` other than 13 (or
 * none), 426 with `Sec-WebSocket-Version: 13`; an origin the policy
 * refuses, 403; a malformed `Sec-WebSocket-Protocol` or
 * `Sec-WebSocket-Extensions` (or more than 256 elements), 400; the
 * `accept` hook's refusal, 403 or its own response.
 *
 * @example Accepting a chat client, and refusing an old one
 * ```ts
 * import { acceptUpgrade } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const headers = {
 *   Host: "example.com",
 *   Upgrade: "websocket",
 *   Connection: "keep-alive, Upgrade",
 *   "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
 *   "Sec-WebSocket-Version": "13",
 *   "Sec-WebSocket-Protocol": "chat.v2, chat",
 *   Origin: "https://example.com",
 * };
 * const result = await acceptUpgrade(
 *   new Request("https://example.com/chat", { headers }),
 *   { protocols: ["chat", "chat.v2"] },
 * );
 * assert.ok(result.ok);
 * assert.equal(result.protocol, "chat.v2"); // the client's first choice
 * assert.equal(result.headers.get("sec-websocket-accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
 *
 * const old = await acceptUpgrade(
 *   new Request("https://example.com/chat", {
 *     headers: { ...headers, "Sec-WebSocket-Version": "8" },
 *   }),
 * );
 * assert.ok(!old.ok);
 * assert.equal(old.status, 426);
 * assert.equal(old.headers.get("sec-websocket-version"), "13");
 * ```
 */
export async function acceptUpgrade<
  R extends UpgradeRequest,
  A extends ExtensionAgreement = ExtensionAgreement,
>(
  request: R,
  options: AcceptUpgradeOptions<R, A> = {},
): Promise<UpgradeResult<A>> {
  const valid = validate(request, options);
  if (!valid.ok) return valid;
  const { key, protocol, offers } = valid;

  let agreement: A | undefined;
  let extensions = "";
  if (options.extensions !== undefined && offers.length > 0) {
    agreement = await options.extensions(offers, request);
    if (agreement !== undefined) {
      extensions = checkAgreement(agreement, offers);
      // An empty response accepts nothing.
      if (extensions === "") agreement = undefined;
    }
  }

  if (options.accept !== undefined) {
    const verdict = await options.accept(request, { protocol, extensions });
    if (verdict instanceof Response) {
      if (verdict.status === 101) {
        throw new TypeError(
          "Cannot upgrade: the accept hook must refuse with a status other than 101",
        );
      }
      return {
        ok: false,
        code: "refused",
        status: verdict.status,
        reason: verdict.statusText,
        headers: verdict.headers,
        response: verdict,
      };
    }
    if (verdict !== true) {
      return {
        ok: false,
        code: "refused",
        status: 403,
        reason: "Cannot upgrade: refused",
        headers: new Headers(),
      };
    }
  }

  // §4.2.2 step 5: "a valid HTTP response indicating the following ..."
  const headers = new Headers({
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-accept": acceptKeySync(key),
  });
  if (protocol !== "") headers.set("sec-websocket-protocol", protocol);
  if (extensions !== "") headers.set("sec-websocket-extensions", extensions);
  return {
    ok: true,
    status: 101,
    headers,
    key,
    protocol,
    extensions,
    agreement,
  };
}

// Everything about the request that needs no hook, as a refusal or the
// parts acceptUpgrade goes on with.
function validate<R extends UpgradeRequest>(
  request: R,
  options: AcceptUpgradeOptions<R, ExtensionAgreement>,
):
  | UpgradeRefused
  | { ok: true; key: string; protocol: string; offers: ExtensionOffer[] } {
  try {
    const key = check(request);
    // §4.2.2 step 4 (/origin/): "If the server does not wish to accept this
    // connection, it MUST return an appropriate HTTP error code (e.g., 403
    // Forbidden)".
    const origin = request.headers.get("origin");
    if (!originAllowed(options.origins ?? "same-origin", origin, request)) {
      refuse("forbidden_origin", 403, "the origin is not allowed");
    }
    const protocol = chooseProtocol(
      options.protocols,
      parseProtocols(request.headers.get("sec-websocket-protocol")),
      request,
    );
    // §9.1: a malformed value "MUST immediately _Fail the WebSocket
    // Connection_", whether or not any extension is wanted.
    const extensions = request.headers.get("sec-websocket-extensions");
    const offers = extensions === null ? [] : parseExtensions(extensions);
    return { ok: true, key, protocol, offers };
  } catch (error) {
    if (!(error instanceof HandshakeError)) throw error;
    return {
      ok: false,
      code: error.code,
      status: error.status,
      reason: error.message,
      headers: refusalHeaders(error.code),
    };
  }
}

// The hook's response value: well formed, and only offered extensions.
function checkAgreement(
  agreement: ExtensionAgreement,
  offers: ExtensionOffer[],
): string {
  const response = agreement.response;
  if (typeof response !== "string") {
    throw new TypeError(
      "Cannot upgrade: the extensions hook must return { response: string }",
    );
  }
  let accepted: ExtensionOffer[];
  try {
    accepted = parseExtensions(response);
  } catch (error) {
    throw new TypeError(
      `Cannot upgrade: the extensions hook answered with an invalid value: ${response}`,
      { cause: error },
    );
  }
  for (const { name } of accepted) {
    if (!offers.some((offer) => offer.name === name)) {
      throw new TypeError(
        `Cannot upgrade: the extensions hook accepted ${name}, which the client did not offer`,
      );
    }
  }
  return response;
}

/**
 * The `Response` for a refusal: the hook's own, or `status` with
 * `reason` as a plain-text body and the refusal's headers.
 *
 * @example Answering a request that is not a WebSocket handshake
 * ```ts
 * import { acceptUpgrade, refusalResponse } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const result = await acceptUpgrade(new Request("https://example.com/", { method: "POST" }));
 * assert.ok(!result.ok);
 * const response = refusalResponse(result);
 * assert.equal(response.status, 405);
 * assert.equal(response.headers.get("allow"), "GET");
 * assert.equal(await response.text(), "Cannot upgrade: the method must be GET");
 * ```
 */
export function refusalResponse(refusal: UpgradeRefused): Response {
  if (refusal.response !== undefined) return refusal.response;
  return new Response(refusal.reason, {
    status: refusal.status,
    headers: refusal.headers,
  });
}

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
  const status = response.status;
  const fail = (code: HandshakeErrorCode, message: string): never => {
    throw new HandshakeError(`Cannot open WebSocket: ${message}`, {
      code,
      status,
    });
  };
  const headers = response.headers;
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
