/**
 * The server's opening handshake (RFC 6455 §4.2, and RFC 8441 §5 over
 * HTTP/2): the checks of an upgrade request or an extended CONNECT, the
 * origin policy, subprotocols and extensions, and the headers of its 101
 * (200 over HTTP/2) or its refusal. Pure functions over `Headers`, `Request` and
 * `Response`, with no I/O, so that every adapter shares them.
 *
 * @module
 */

import { equalsIgnoreCase, isToken, listHas, splitList } from "./_http.ts";
import { HandshakeError, type HandshakeErrorCode } from "./handshake_error.ts";
import { acceptKeySync, VERSION } from "./accept_key.ts";
import { type ExtensionOffer, parseExtensions } from "./extensions.ts";

/**
 * The parts of a request the server's handshake reads. A `Request` is one;
 * an adapter over `node:http` or a raw socket builds one, with
 * `httpVersion` from the request line. An adapter over `node:http2` gives
 * `httpVersion` "2.0", the method CONNECT, the `:protocol` pseudo-header as
 * `protocol`, and a `url` made of `:scheme`, `:authority` and `:path`
 * (none when one is missing): a CONNECT over HTTP/2 is RFC 8441's
 * handshake.
 */
export interface UpgradeRequest {
  /** The request method. */
  readonly method: string;
  /** The request headers. */
  readonly headers: Headers;
  /** The request URL; its host stands in for a missing `Host` header. */
  readonly url?: string;
  /**
   * The HTTP version ("1.1", "2.0"), where known; HTTP/1.0 is refused, and
   * a CONNECT over 2 or later is an extended CONNECT (RFC 8441).
   */
  readonly httpVersion?: string;
  /** The `:protocol` pseudo-header of an HTTP/2 extended CONNECT. */
  readonly protocol?: string;
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

/**
 * The server accepts: send `status` (a 101, or a 200 over HTTP/2) with
 * `headers`, then speak WebSocket.
 */
export interface UpgradeAccepted<
  A extends ExtensionAgreement = ExtensionAgreement,
> {
  /** Always true: the handshake was accepted. */
  ok: true;
  /**
   * 101 Switching Protocols; over HTTP/2, 200 (RFC 8441 §5: the CONNECT
   * succeeded, and the stream is the WebSocket's).
   */
  status: 101 | 200;
  /**
   * The response's headers: `Upgrade`, `Connection`,
   * `Sec-WebSocket-Accept` (none of them over HTTP/2), and
   * `Sec-WebSocket-Protocol` and `Sec-WebSocket-Extensions` when agreed.
   */
  headers: Headers;
  /** The client's `Sec-WebSocket-Key`; "" over HTTP/2, which has none. */
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

// "1.1", "2", "2.0" → major * 1000 + minor; malformed → -1.
function versionNumber(version: string): number {
  let i = 0;
  let major = 0;
  let minor = 0;
  const length = version.length;
  if (length === 0 || length > 8) return -1;
  for (; i < length && version.charCodeAt(i) !== 0x2e; i++) {
    const digit = version.charCodeAt(i) - 0x30;
    if (digit < 0 || digit > 9) return -1;
    major = major * 10 + digit;
  }
  if (i === 0) return -1;
  if (i < length) {
    if (++i === length) return -1;
    for (; i < length; i++) {
      const digit = version.charCodeAt(i) - 0x30;
      if (digit < 0 || digit > 9) return -1;
      minor = minor * 10 + digit;
    }
  }
  return major * 1000 + minor;
}

// Whether the request is a CONNECT over HTTP/2 or later: the handshake is
// then an extended CONNECT (RFC 8441) instead of an upgrade.
function isExtendedConnect(request: UpgradeRequest): boolean {
  return request.method === "CONNECT" && request.httpVersion !== undefined &&
    versionNumber(request.httpVersion) >= 2000;
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
// Returns the key ("" for an extended CONNECT).
function check(request: UpgradeRequest): string {
  if (isExtendedConnect(request)) {
    checkConnect(request);
    return "";
  }
  // §4.2.1 item 1: "An HTTP/1.1 or higher GET request". Any other method
  // is 405, which MUST name the allowed ones (RFC 9110 §15.5.6).
  if (request.method !== "GET") {
    refuse("method_not_allowed", 405, "the method must be GET");
  }
  if (
    request.httpVersion !== undefined &&
    versionNumber(request.httpVersion) < 1001
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
  checkVersion(request, 426);
  return key;
}

function checkVersion(request: UpgradeRequest, status: number): void {
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
    refuse("unsupported_version", status, "Sec-WebSocket-Version must be 13");
  }
}

// RFC 8441: the handshake over HTTP/2 is a CONNECT whose `:protocol` is
// websocket. There is no key (§5: the Sec-WebSocket-Key processing "has
// been superseded by the :protocol pseudo-header field"), and no Upgrade or
// Connection (HTTP/2 forbids them; its own stack refuses a request with
// them).
function checkConnect(request: UpgradeRequest): void {
  // A CONNECT without :protocol asks for a tunnel to another host (RFC 9113
  // §8.5): this is no proxy.
  const protocol = request.protocol;
  if (protocol === undefined) {
    refuse(
      "invalid_connect",
      400,
      "a CONNECT without :protocol is not a WebSocket handshake",
    );
  }
  // §5: ":protocol ... MUST have a value of websocket". RFC 9220 §3 (the
  // same rule over HTTP/3): an unknown or unsupported one "SHOULD" get 501.
  if (!equalsIgnoreCase(protocol, "websocket")) {
    refuse(
      "unsupported_protocol",
      501,
      `:protocol must be websocket, got ${protocol.slice(0, 64)}`,
    );
  }
  // §4: "the :scheme and :path pseudo-header fields ... MUST also be
  // included"; :authority is "required on every HTTP/2 transaction" (§5).
  const url = request.url === undefined ? null : parseUrl(request.url);
  if (url === null || (url.protocol !== "http:" && url.protocol !== "https:")) {
    refuse(
      "invalid_connect",
      400,
      "the :scheme (http or https), :authority and :path pseudo-headers are required",
    );
  }
  if (hostOf(request) === null) {
    refuse("missing_host", 400, "the :authority is missing or invalid");
  }
  // §5: Sec-WebSocket-Version is "used in the CONNECT request ... as
  // defined in [RFC6455]". A 426 must carry an Upgrade (RFC 9110 §15.5.22),
  // which HTTP/2 forbids: a 400 says the same, with the version wanted.
  checkVersion(request, 400);
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
      // A 101 accepts an upgrade; over HTTP/2, any 2xx opens the CONNECT's
      // tunnel (RFC 9110 §9.3.6), and the client would read the body as
      // frames.
      const status = verdict.status;
      if (
        status === 101 ||
        (isExtendedConnect(request) && status >= 200 && status <= 299)
      ) {
        throw new TypeError(
          `Cannot upgrade: the accept hook must refuse with a status that does not accept (got ${status})`,
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

  // §4.2.2 step 5: "a valid HTTP response indicating the following ...";
  // over HTTP/2, a 200 (RFC 8441 §5's example), without Upgrade, Connection
  // or Sec-WebSocket-Accept.
  const http2 = isExtendedConnect(request);
  const headers = http2 ? new Headers() : new Headers({
    upgrade: "websocket",
    connection: "Upgrade",
    "sec-websocket-accept": acceptKeySync(key),
  });
  if (protocol !== "") headers.set("sec-websocket-protocol", protocol);
  if (extensions !== "") headers.set("sec-websocket-extensions", extensions);
  return {
    ok: true,
    status: http2 ? 200 : 101,
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
