/**
 * The `Sec-WebSocket-Extensions` header's grammar (RFC 6455 §9.1), which
 * both sides of the handshake parse.
 *
 * @module
 */

import { isOws, isTokenChar, MAX_LIST_ITEMS } from "./_http.ts";
import { HandshakeError } from "./handshake_error.ts";

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
