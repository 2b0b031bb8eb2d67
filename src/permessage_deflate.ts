/**
 * Negotiating permessage-deflate (RFC 7692 §5, §7): pure functions over
 * `Sec-WebSocket-Extensions` values, for both roles. The compression itself
 * is in {@linkcode MessageDeflateStream} and {@linkcode MessageInflateStream}.
 *
 * @module
 */

import type { Role } from "./frame.ts";
import {
  type ExtensionAgreement,
  type ExtensionOffer,
  HandshakeError,
  parseExtensions,
} from "./handshake.ts";

/**
 * The extension's name (RFC 7692 §7).
 *
 * @example Finding the offer in a request
 * ```ts
 * import { PERMESSAGE_DEFLATE } from "./permessage_deflate.ts";
 * import { parseExtensions } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const offers = parseExtensions("x-foo, permessage-deflate; client_max_window_bits");
 * assert.equal(offers.findIndex((o) => o.name === PERMESSAGE_DEFLATE), 1);
 * ```
 */
export const PERMESSAGE_DEFLATE = "permessage-deflate";

/**
 * What one end wants of permessage-deflate. The four parameters of RFC 7692
 * §7.1 mean what they mean in the RFC, from either end: a client asks for
 * them in its offer, a server imposes them in its response.
 */
export interface PerMessageDeflateOptions {
  /**
   * The server starts each message with an empty compression context
   * (§7.1.1.1): less memory on the server, worse compression; and a
   * `Broadcast`'s message is compressed once for all such
   * connections (with context takeover it goes uncompressed).
   *
   * @default {false}
   */
  serverNoContextTakeover?: boolean;
  /**
   * The client starts each message with an empty compression context
   * (§7.1.1.2).
   *
   * @default {false}
   */
  clientNoContextTakeover?: boolean;
  /**
   * The largest LZ77 window the server compresses with, as a power of two
   * from 8 to 15 (§7.1.2.1). A client asks for it; a server limits itself.
   *
   * @default {15}
   */
  serverMaxWindowBits?: number;
  /**
   * The largest LZ77 window the client compresses with, 8 to 15 (§7.1.2.2).
   * A client offers it (without a value, the default: "I can limit my
   * window if you ask"); a server asks a client that offered it for this.
   *
   * @default {15}
   */
  clientMaxWindowBits?: number;
  /**
   * Messages sent in one frame of fewer bytes than this go out
   * uncompressed: compressing them costs more than it saves.
   *
   * @default {1024}
   */
  threshold?: number;
  /**
   * The zlib compression level, 0 (none) to 9 (best), or -1 for zlib's
   * default (6).
   *
   * @default {-1}
   */
  level?: number;
  /**
   * How much memory zlib's compressor uses, 1 to 9: less memory, worse
   * compression.
   *
   * @default {8}
   */
  memLevel?: number;
}

/**
 * What both ends agreed (RFC 7692 §7.1), seen from either end: which side
 * drops its context after each message, and each side's largest window.
 */
export interface PerMessageDeflateParams {
  /** The server compresses each message with an empty context. */
  serverNoContextTakeover: boolean;
  /** The client compresses each message with an empty context. */
  clientNoContextTakeover: boolean;
  /** The server's largest window, 8 to 15. */
  serverMaxWindowBits: number;
  /** The client's largest window, 8 to 15. */
  clientMaxWindowBits: number;
}

/** The settings of one end's compressor and decompressor. */
export interface DeflateSettings {
  /** Window bits of what we send. */
  deflateWindowBits: number;
  /** Start each message we send with an empty context. */
  deflateNoContextTakeover: boolean;
  /** Window bits of what the peer sends. */
  inflateWindowBits: number;
  /** The peer starts each message with an empty context. */
  inflateNoContextTakeover: boolean;
  /** Messages in one frame of fewer bytes go out uncompressed. */
  threshold: number;
  /** zlib's compression level. */
  level: number;
  /** zlib's memory level. */
  memLevel: number;
}

const NO_CONTEXT = [
  "server_no_context_takeover",
  "client_no_context_takeover",
] as const;

/**
 * Checks the options, as a constructor taking them would: `null` when
 * compression is off, the options (`{}` for `true`) when it is on.
 *
 * @example Off, on, and a window too small
 * ```ts
 * import { checkPerMessageDeflateOptions } from "./permessage_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkPerMessageDeflateOptions(false), null);
 * assert.deepEqual(checkPerMessageDeflateOptions(true), {});
 * assert.throws(
 *   () => checkPerMessageDeflateOptions({ serverMaxWindowBits: 7 }),
 *   RangeError,
 * );
 * ```
 *
 * @throws {RangeError} for a window outside 8–15, a level outside -1–9, a
 * memory level outside 1–9 or a negative threshold.
 * @throws {TypeError} for an unknown option or one of the wrong type.
 */
export function checkPerMessageDeflateOptions(
  options: boolean | PerMessageDeflateOptions | undefined,
): PerMessageDeflateOptions | null {
  if (options === undefined || options === false) return null;
  if (options === true) return {};
  if (typeof options !== "object" || options === null) {
    throw new TypeError(
      "Cannot use perMessageDeflate: expected a boolean or an options object",
    );
  }
  const known = [
    "serverNoContextTakeover",
    "clientNoContextTakeover",
    "serverMaxWindowBits",
    "clientMaxWindowBits",
    "threshold",
    "level",
    "memLevel",
  ];
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) {
      throw new TypeError(
        `Cannot use perMessageDeflate: unknown option ${key}`,
      );
    }
  }
  const flag = (name: keyof PerMessageDeflateOptions) => {
    const value = options[name];
    if (value !== undefined && typeof value !== "boolean") {
      throw new TypeError(
        `Cannot use perMessageDeflate: ${name} must be a boolean`,
      );
    }
  };
  const range = (
    name: keyof PerMessageDeflateOptions,
    min: number,
    max: number,
  ) => {
    const value = options[name];
    if (
      value !== undefined &&
      (!Number.isInteger(value) || (value as number) < min ||
        (value as number) > max)
    ) {
      throw new RangeError(
        `Cannot use perMessageDeflate: ${name} must be a whole number from ${min} to ${max}, got ${
          String(value)
        }`,
      );
    }
  };
  flag("serverNoContextTakeover");
  flag("clientNoContextTakeover");
  range("serverMaxWindowBits", 8, 15);
  range("clientMaxWindowBits", 8, 15);
  range("threshold", 0, Number.MAX_SAFE_INTEGER);
  range("level", -1, 9);
  range("memLevel", 1, 9);
  return options;
}

/**
 * The client's offer (RFC 7692 §7.1): one `permessage-deflate` element
 * asking for the options given. `client_max_window_bits` is always
 * offered, with the option's value or none, so the server may limit the
 * client's window.
 *
 * @example The default offer, and one asking for a small server window
 * ```ts
 * import { offerPerMessageDeflate } from "./permessage_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(offerPerMessageDeflate(), "permessage-deflate; client_max_window_bits");
 * assert.equal(
 *   offerPerMessageDeflate({ serverMaxWindowBits: 10, clientNoContextTakeover: true }),
 *   "permessage-deflate; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits",
 * );
 * ```
 */
export function offerPerMessageDeflate(
  options: PerMessageDeflateOptions = {},
): string {
  checkPerMessageDeflateOptions(options);
  const params = [PERMESSAGE_DEFLATE];
  if (options.serverNoContextTakeover) params.push(NO_CONTEXT[0]);
  if (options.clientNoContextTakeover) params.push(NO_CONTEXT[1]);
  if (options.serverMaxWindowBits !== undefined) {
    params.push(`server_max_window_bits=${options.serverMaxWindowBits}`);
  }
  params.push(
    options.clientMaxWindowBits === undefined
      ? "client_max_window_bits"
      : `client_max_window_bits=${options.clientMaxWindowBits}`,
  );
  return params.join("; ");
}

interface Parsed {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  // `true`: offered without a value (only an offer may).
  clientMaxWindowBits: number | true | undefined;
}

// The parameters of one element, or why they are invalid (§7.1: unknown
// names, values that are not what the parameter takes; a parameter named
// twice is the caller's to check, as parseExtensions marks it).
function parseParams(
  params: Record<string, string | true>,
  offer: boolean,
): Parsed | string {
  const parsed: Parsed = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  for (const name in params) {
    const value = params[name];
    switch (name) {
      case "server_no_context_takeover":
      case "client_no_context_takeover":
        // §7.1.1: "This extension parameter has no value."
        if (value !== true) return `${name} takes no value`;
        if (name === NO_CONTEXT[0]) parsed.serverNoContextTakeover = true;
        else parsed.clientNoContextTakeover = true;
        break;
      case "server_max_window_bits":
      case "client_max_window_bits": {
        // §7.1.2.2: in an offer, client_max_window_bits "may have no value".
        if (value === true && offer && name === "client_max_window_bits") {
          parsed.clientMaxWindowBits = true;
          break;
        }
        const bits = windowBits(value);
        if (bits === undefined) {
          return `${name} must be a decimal integer from 8 to 15 without leading zeroes`;
        }
        if (name === "server_max_window_bits") {
          parsed.serverMaxWindowBits = bits;
        } else parsed.clientMaxWindowBits = bits;
        break;
      }
      default:
        return `unknown parameter ${name}`;
    }
  }
  return parsed;
}

// §7.1.2.1: "a decimal integer value without leading zeroes between 8 to
// 15, inclusive".
function windowBits(value: string | true): number | undefined {
  if (value === true || !/^(?:[89]|1[0-5])$/.test(value)) return undefined;
  return Number(value);
}

/**
 * The server's side (RFC 7692 §7): takes the client's offers in order and
 * accepts the first `permessage-deflate` one it can, answering with the
 * parameters both will use. An offer is declined if it has an unknown
 * parameter or a bad value (§7: "A server MUST decline an extension
 * negotiation offer for this extension if ... The negotiation offer
 * contains an extension parameter not defined for use in an offer ...
 * with an invalid value"); then the next is tried. Returns `undefined` if
 * none is acceptable.
 *
 * A server's `serverMaxWindowBits` lowers the window the client allowed;
 * its `clientMaxWindowBits` asks the client for a smaller window only if
 * the client offered `client_max_window_bits` (§7.1.2.2: otherwise the
 * response "MUST NOT include" it).
 *
 * @example Chromium's offer, answered by a server that limits its window
 * ```ts
 * import { parseExtensions } from "./handshake.ts";
 * import { negotiatePerMessageDeflate } from "./permessage_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * const offers = parseExtensions("permessage-deflate; client_max_window_bits");
 * const agreed = negotiatePerMessageDeflate(offers, { serverMaxWindowBits: 12 });
 * assert.equal(agreed?.response, "permessage-deflate; server_max_window_bits=12");
 * assert.equal(agreed?.params.serverMaxWindowBits, 12);
 * assert.equal(agreed?.params.clientMaxWindowBits, 15);
 * ```
 */
export function negotiatePerMessageDeflate(
  offers: readonly ExtensionOffer[],
  options: PerMessageDeflateOptions = {},
): PerMessageDeflateAgreement | undefined {
  checkPerMessageDeflateOptions(options);
  for (const offer of offers) {
    // §7: a server "MUST decline" an offer that "contains multiple
    // extension parameters with the same name".
    if (offer.name !== PERMESSAGE_DEFLATE || offer.repeated) continue;
    const parsed = parseParams(offer.params, true);
    if (typeof parsed === "string") continue;
    // §7.1.2.1: the server answers with "the same or smaller value as the
    // offer", or with its own limit when none was asked for.
    const mine = options.serverMaxWindowBits;
    const asked = parsed.serverMaxWindowBits;
    const serverBits = asked === undefined ? mine : Math.min(asked, mine ?? 15);
    // §7.1.2.2: a value in the offer is a hint for the server, which need
    // not answer it; the server asks only for what it wants.
    const offered = parsed.clientMaxWindowBits;
    let clientBits: number | undefined;
    if (offered !== undefined && options.clientMaxWindowBits !== undefined) {
      clientBits = offered === true
        ? options.clientMaxWindowBits
        : Math.min(offered, options.clientMaxWindowBits);
    } else if (typeof offered === "number") clientBits = offered;
    const params: PerMessageDeflateParams = {
      serverNoContextTakeover: parsed.serverNoContextTakeover ||
        options.serverNoContextTakeover === true,
      clientNoContextTakeover: parsed.clientNoContextTakeover ||
        options.clientNoContextTakeover === true,
      serverMaxWindowBits: serverBits ?? 15,
      clientMaxWindowBits: clientBits ?? 15,
    };
    const response = [PERMESSAGE_DEFLATE];
    if (params.serverNoContextTakeover) response.push(NO_CONTEXT[0]);
    if (params.clientNoContextTakeover) response.push(NO_CONTEXT[1]);
    if (serverBits !== undefined) {
      response.push(`server_max_window_bits=${serverBits}`);
    }
    if (clientBits !== undefined) {
      response.push(`client_max_window_bits=${clientBits}`);
    }
    return { response: response.join("; "), params };
  }
  return undefined;
}

/** What {@linkcode negotiatePerMessageDeflate} agreed. */
export interface PerMessageDeflateAgreement extends ExtensionAgreement {
  /** The response element, for `Sec-WebSocket-Extensions`. */
  response: string;
  /** The parameters both ends will use. */
  params: PerMessageDeflateParams;
}

/**
 * An `extensions` hook for {@linkcode acceptUpgrade} that accepts
 * permessage-deflate with these options, and no other extension.
 *
 * @example A server that compresses with a 4 KiB window
 * ```ts
 * import { perMessageDeflateExtension } from "./permessage_deflate.ts";
 * import { acceptUpgrade } from "./handshake.ts";
 * import assert from "node:assert/strict";
 *
 * const result = await acceptUpgrade({
 *   method: "GET",
 *   headers: new Headers({
 *     host: "example.com",
 *     upgrade: "websocket",
 *     connection: "Upgrade",
 *     "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
 *     "sec-websocket-version": "13",
 *     "sec-websocket-extensions": "permessage-deflate; client_max_window_bits",
 *   }),
 * }, { extensions: perMessageDeflateExtension({ serverMaxWindowBits: 12 }) });
 * assert.ok(result.ok);
 * assert.equal(result.extensions, "permessage-deflate; server_max_window_bits=12");
 * ```
 */
export function perMessageDeflateExtension(
  options: PerMessageDeflateOptions = {},
): (offers: ExtensionOffer[]) => PerMessageDeflateAgreement | undefined {
  checkPerMessageDeflateOptions(options);
  return (offers) => negotiatePerMessageDeflate(offers, options);
}

/**
 * The client's side (RFC 7692 §7): checks the server's response element
 * against what {@linkcode offerPerMessageDeflate} offered with the same
 * options, and returns what both will use.
 *
 * @throws {HandshakeError} (`invalid_extensions`) when the client "MUST
 * _Fail the WebSocket Connection_": an unknown parameter, a bad value, a
 * `client_max_window_bits` not offered or larger than offered, a
 * `server_max_window_bits` missing or larger than asked for, a
 * `server_no_context_takeover` asked for but missing.
 *
 * @example A response that limits both windows
 * ```ts
 * import { parseExtensions } from "./handshake.ts";
 * import { acceptPerMessageDeflateResponse } from "./permessage_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * const [response] = parseExtensions(
 *   "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
 * );
 * assert.deepEqual(acceptPerMessageDeflateResponse(response), {
 *   serverNoContextTakeover: false,
 *   clientNoContextTakeover: false,
 *   serverMaxWindowBits: 10,
 *   clientMaxWindowBits: 9,
 * });
 * ```
 */
export function acceptPerMessageDeflateResponse(
  response: ExtensionOffer,
  options: PerMessageDeflateOptions = {},
  status = 101,
): PerMessageDeflateParams {
  checkPerMessageDeflateOptions(options);
  const fail = (what: string): never => {
    throw new HandshakeError(
      `Cannot open WebSocket: the server's permessage-deflate response is invalid: ${what}`,
      { code: "invalid_extensions", status },
    );
  };
  if (response.name !== PERMESSAGE_DEFLATE) {
    fail(`it names ${response.name}`);
  }
  // §7: a client "MUST _Fail the WebSocket Connection_" on a response
  // with "multiple extension parameters with the same name".
  if (response.repeated) fail("a parameter is named twice");
  const parsed = parseParams(response.params, false);
  if (typeof parsed === "string") return fail(parsed);
  // §7.1.1.1: a server accepts an offer with server_no_context_takeover "by
  // including the "server_no_context_takeover" extension parameter".
  if (options.serverNoContextTakeover && !parsed.serverNoContextTakeover) {
    fail("server_no_context_takeover was asked for and is missing");
  }
  // §7.1.2.1: "with the same or smaller value as the offer".
  const asked = options.serverMaxWindowBits;
  const serverBits = parsed.serverMaxWindowBits;
  if (asked !== undefined && (serverBits === undefined || serverBits > asked)) {
    fail(`server_max_window_bits must be at most ${asked}`);
  }
  // §7.1.2.2: "If a received extension negotiation offer doesn't have the
  // "client_max_window_bits" extension parameter, the corresponding
  // extension negotiation response to the offer MUST NOT include the
  // "client_max_window_bits" extension parameter." Our offer always has
  // it, with the option's value if set: a larger value is no limit.
  const offered = options.clientMaxWindowBits ?? 15;
  const clientBits = parsed.clientMaxWindowBits as number | undefined;
  if (clientBits !== undefined && clientBits > offered) {
    fail(`client_max_window_bits must be at most ${offered}`);
  }
  return {
    serverNoContextTakeover: parsed.serverNoContextTakeover,
    clientNoContextTakeover: parsed.clientNoContextTakeover ||
      options.clientNoContextTakeover === true,
    serverMaxWindowBits: serverBits ?? 15,
    clientMaxWindowBits: Math.min(clientBits ?? 15, offered),
  };
}

/**
 * The settings one end's compressor and decompressor use, from the
 * agreed `Sec-WebSocket-Extensions` value (as the server sent it), or
 * `null` if it does not include permessage-deflate. The value must have
 * been checked already: by {@linkcode negotiatePerMessageDeflate} on the
 * server, {@linkcode acceptPerMessageDeflateResponse} on the client.
 *
 * @example Each end compresses with the window the other may use
 * ```ts
 * import { deflateSettings } from "./permessage_deflate.ts";
 * import assert from "node:assert/strict";
 *
 * const agreed = "permessage-deflate; server_max_window_bits=10";
 * assert.equal(deflateSettings(agreed, "server")?.deflateWindowBits, 10);
 * assert.equal(deflateSettings(agreed, "client")?.inflateWindowBits, 10);
 * assert.equal(deflateSettings("", "client"), null);
 * ```
 */
export function deflateSettings(
  extensions: string,
  role: Role,
  options: PerMessageDeflateOptions = {},
): DeflateSettings | null {
  if (!extensions.includes(PERMESSAGE_DEFLATE)) return null;
  const element = parseExtensions(extensions).find((e) =>
    e.name === PERMESSAGE_DEFLATE
  );
  if (element === undefined) return null;
  const params = acceptPerMessageDeflateResponse(
    element,
    role === "client" ? options : {},
  );
  const server = role === "server";
  return {
    deflateWindowBits: server
      ? Math.min(params.serverMaxWindowBits, options.serverMaxWindowBits ?? 15)
      : params.clientMaxWindowBits,
    deflateNoContextTakeover: server
      ? params.serverNoContextTakeover
      : params.clientNoContextTakeover,
    inflateWindowBits: server
      ? params.clientMaxWindowBits
      : params.serverMaxWindowBits,
    inflateNoContextTakeover: server
      ? params.clientNoContextTakeover
      : params.serverNoContextTakeover,
    threshold: options.threshold ?? 1024,
    level: options.level ?? -1,
    memLevel: options.memLevel ?? 8,
  };
}
