// The pieces of HTTP/1.1 the opening handshake needs (RFC 9110, RFC 9112):
// token lists, and bounded parsers of a message head for the raw-socket
// paths. No regular expressions: every loop moves forward one character at
// a time, so all of it is linear in the input, and every count is capped.

/** The most elements a header list (tokens, extension offers and params) may hold. */
export const MAX_LIST_ITEMS = 256;

/** The largest message head, request or status line and headers, in bytes. */
export const DEFAULT_MAX_HEAD_SIZE = 16384;

/** The most header lines a message head may have. */
export const DEFAULT_MAX_HEADERS = 100;

const SP = 0x20;
const HTAB = 0x09;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;

// tchar (RFC 9110 §5.6.2): "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
// "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
const TCHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;

/** Whether the character code is a tchar. */
export function isTokenChar(code: number): boolean {
  return code < 128 && TCHAR[code] === 1;
}

/** Whether `value` is a token (RFC 9110 §5.6.2): one or more tchars. */
export function isToken(value: string): boolean {
  if (value.length === 0) return false;
  for (let i = 0; i < value.length; i++) {
    if (!isTokenChar(value.charCodeAt(i))) return false;
  }
  return true;
}

/** Whether the character code is optional whitespace (SP or HTAB). */
export function isOws(code: number): boolean {
  return code === SP || code === HTAB;
}

/**
 * Splits a comma-separated list (RFC 9110 §5.6.1), trimming whitespace
 * around each element and skipping empty elements ("a recipient MUST parse
 * and ignore a reasonable number of empty list elements"). Elements are not
 * checked, and quoted strings are not understood: only the handshake's
 * token lists come through here. Returns `null` past `MAX_LIST_ITEMS`.
 */
export function splitList(value: string): string[] | null {
  const items: string[] = [];
  const length = value.length;
  let i = 0;
  while (i < length) {
    while (i < length && isOws(value.charCodeAt(i))) i++;
    const start = i;
    let end = i;
    while (i < length && value.charCodeAt(i) !== 0x2c) {
      if (!isOws(value.charCodeAt(i))) end = i + 1;
      i++;
    }
    i++; // the comma
    if (end > start) {
      if (items.length === MAX_LIST_ITEMS) return null;
      items.push(value.slice(start, end));
    }
  }
  return items;
}

/** Whether two strings are equal, ASCII case-insensitively. */
export function equalsIgnoreCase(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x >= 0x41 && x <= 0x5a) x += 0x20;
    if (y >= 0x41 && y <= 0x5a) y += 0x20;
    if (x !== y) return false;
  }
  return true;
}

/** Limits on a message head, checked before anything is allocated for it. */
export interface HeadLimits {
  /**
   * The largest head, from the first byte to the blank line that ends it,
   * in bytes. A larger one fails with 431.
   *
   * @default {16384} (16 KiB)
   */
  maxHeadSize?: number;
  /**
   * The most header lines. More fail with 431.
   *
   * @default {100}
   */
  maxHeaders?: number;
}

/** A parsed request line and headers. */
export interface RequestHead {
  kind: "complete";
  /** The method, case-sensitive as sent ("GET"). */
  method: string;
  /** The request target as sent ("/chat?room=1"), one character per byte. */
  target: string;
  /** The HTTP version, as "major.minor" ("1.1"). */
  version: string;
  /** The header fields, values one character per byte (Latin-1). */
  headers: Headers;
  /** Where the body (for an upgrade: the first frame) starts in the input. */
  bodyOffset: number;
}

/** A parsed status line and headers. */
export interface ResponseHead {
  kind: "complete";
  /** The HTTP version, as "major.minor" ("1.1"). */
  version: string;
  /** The three-digit status code. */
  status: number;
  /** The reason phrase, possibly empty. */
  statusText: string;
  /** The header fields, values one character per byte (Latin-1). */
  headers: Headers;
  /** Where the body (for an upgrade: the first frame) starts in the input. */
  bodyOffset: number;
}

/** The head has not ended yet: wait for more bytes. */
export interface HeadIncomplete {
  kind: "incomplete";
}

/** Stable identifiers for each way a message head can be refused. */
export type HeadErrorCode =
  | "head_too_large"
  | "too_many_headers"
  | "malformed_head";

/** The head cannot be parsed; `status` is the response to refuse it with. */
export interface HeadError {
  kind: "error";
  /** 431 for a head over the limits, 400 for a malformed one. */
  status: 400 | 431;
  /** The stable identifier of the failure. */
  code: HeadErrorCode;
  /** A short explanation, safe to send to the peer. */
  reason: string;
}

/** What {@linkcode parseRequestHead} found. */
export type RequestHeadResult = RequestHead | HeadIncomplete | HeadError;
/** What {@linkcode parseResponseHead} found. */
export type ResponseHeadResult = ResponseHead | HeadIncomplete | HeadError;

const INCOMPLETE: HeadIncomplete = { kind: "incomplete" };

function headError(
  status: 400 | 431,
  code: HeadErrorCode,
  reason: string,
): HeadError {
  return { kind: "error", status, code, reason };
}

const malformed = (what: string) =>
  headError(400, "malformed_head", `Cannot parse HTTP head: ${what}`);

function limitsOf(limits: HeadLimits): [number, number] {
  const size = limits.maxHeadSize ?? DEFAULT_MAX_HEAD_SIZE;
  const count = limits.maxHeaders ?? DEFAULT_MAX_HEADERS;
  if (!Number.isSafeInteger(size) || size < 4) {
    throw new RangeError(
      `Cannot use maxHeadSize: expected a whole number of bytes from 4 to 2^53 - 1, got ${size}`,
    );
  }
  if (!Number.isSafeInteger(count) || count < 0) {
    throw new RangeError(
      `Cannot use maxHeaders: expected a whole number from 0 to 2^53 - 1, got ${count}`,
    );
  }
  return [size, count];
}

/**
 * Finds the end of a head: the index just past its "\r\n\r\n", searching
 * `bytes[from, to)`, or -1.
 */
function findHeadEnd(bytes: Uint8Array, from: number, to: number): number {
  for (let i = from + 3; i < to; i++) {
    if (
      bytes[i] === LF && bytes[i - 1] === CR && bytes[i - 2] === LF &&
      bytes[i - 3] === CR
    ) return i + 1;
  }
  return -1;
}

/** Bytes to a string, one character per byte. */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  let out = "";
  // fromCharCode.apply takes a bounded number of arguments.
  for (let i = start; i < end; i += 4096) {
    out += String.fromCharCode.apply(
      null,
      bytes.subarray(i, Math.min(end, i + 4096)) as unknown as number[],
    );
  }
  return out;
}

/** A string of characters up to U+00FF to bytes, one byte per character. */
export function encodeLatin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) {
      throw new TypeError(
        `Cannot encode HTTP head: character U+${
          code.toString(16).toUpperCase().padStart(4, "0")
        } is not Latin-1`,
      );
    }
    out[i] = code;
  }
  return out;
}

// Reads "HTTP/" DIGIT "." DIGIT at `at`; returns "major.minor" or null.
function readVersion(bytes: Uint8Array, at: number, end: number) {
  if (
    end - at !== 8 || bytes[at] !== 0x48 || bytes[at + 1] !== 0x54 ||
    bytes[at + 2] !== 0x54 || bytes[at + 3] !== 0x50 ||
    bytes[at + 4] !== 0x2f || !isDigit(bytes[at + 5]) ||
    bytes[at + 6] !== 0x2e || !isDigit(bytes[at + 7])
  ) return null;
  return `${bytes[at + 5] - 0x30}.${bytes[at + 7] - 0x30}`;
}

function isDigit(byte: number): boolean {
  return byte >= 0x30 && byte <= 0x39;
}

// The index of the CRLF ending the line that starts at `at`, or -1 if a
// bare CR or LF comes first (RFC 9112 §2.2: a bare CR MUST be rejected; we
// accept no bare LF either). `end` is the end of the head, so a CRLF exists.
function lineEnd(bytes: Uint8Array, at: number): number {
  for (let i = at;; i++) {
    const byte = bytes[i];
    if (byte === CR) return bytes[i + 1] === LF ? i : -1;
    if (byte === LF) return -1;
  }
}

// Parses the header lines in bytes[at, end) (end is the final CRLF's CR)
// into `headers`; returns an error or null.
function readHeaders(
  bytes: Uint8Array,
  at: number,
  end: number,
  maxHeaders: number,
  headers: Headers,
): HeadError | null {
  let count = 0;
  while (at < end) {
    const eol = lineEnd(bytes, at);
    if (eol < 0) return malformed("a bare CR or LF in a header line");
    if (++count > maxHeaders) {
      return headError(
        431,
        "too_many_headers",
        `Cannot parse HTTP head: more than ${maxHeaders} header lines`,
      );
    }
    // RFC 9112 §5.2: obsolete line folding, which a server MUST reject
    // (or replace with spaces) outside message/http.
    if (isOws(bytes[at])) return malformed("obsolete line folding");
    let colon = at;
    while (colon < eol && isTokenChar(bytes[colon])) colon++;
    // RFC 9112 §5.1: "No whitespace is allowed between the field name and
    // colon. ... A server MUST reject, with a response status code of 400
    // (Bad Request), any received request message that contains whitespace
    // between a header field name and colon."
    if (colon === at || colon === eol || bytes[colon] !== COLON) {
      return malformed("a header line is not name: value");
    }
    let start = colon + 1;
    let stop = eol;
    while (start < stop && isOws(bytes[start])) start++;
    while (stop > start && isOws(bytes[stop - 1])) stop--;
    for (let i = start; i < stop; i++) {
      const byte = bytes[i];
      // field-vchar = VCHAR / obs-text, with SP and HTAB between.
      if ((byte < 0x20 && byte !== HTAB) || byte === 0x7f) {
        return malformed("a control character in a header value");
      }
    }
    headers.append(latin1(bytes, at, colon), latin1(bytes, start, stop));
    at = eol + 2;
  }
  return null;
}

// Finds the head in `bytes`: its end (just past the blank line), or a result.
function locate(
  bytes: Uint8Array,
  maxHeadSize: number,
): number | HeadIncomplete | HeadError {
  const end = findHeadEnd(bytes, 0, Math.min(bytes.length, maxHeadSize));
  if (end >= 0) return end;
  if (bytes.length >= maxHeadSize) {
    return headError(
      431,
      "head_too_large",
      `Cannot parse HTTP head: larger than ${maxHeadSize} bytes`,
    );
  }
  return INCOMPLETE;
}

/**
 * Parses an HTTP/1.1 request head (RFC 9112 §3, §5) from the start of
 * `bytes`: the request line, header lines, and the blank line that ends
 * them. Until that blank line has arrived the result is `incomplete`; a
 * head over the limits is refused with 431, a malformed one with 400.
 * Nothing throws for any input; the time taken is linear in
 * `maxHeadSize`, whatever the input.
 *
 * Strict where being lax invites request smuggling: lines end in CRLF, a
 * bare CR or LF is refused, as are obsolete line folding, whitespace
 * before a header's colon, control characters in values and empty lines
 * before the request line.
 *
 * @example Parsing an upgrade request, and the frame bytes after it
 * ```ts
 * import { parseRequestHead } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([
 *   ...new TextEncoder().encode(
 *     "GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\r\n",
 *   ),
 *   0x81, // the first frame
 * ]);
 * const head = parseRequestHead(bytes);
 * assert.equal(head.kind, "complete");
 * if (head.kind === "complete") {
 *   assert.equal(head.method, "GET");
 *   assert.equal(head.target, "/chat");
 *   assert.equal(head.version, "1.1");
 *   assert.equal(head.headers.get("upgrade"), "websocket");
 *   assert.equal(bytes[head.bodyOffset], 0x81);
 * }
 * assert.equal(parseRequestHead(bytes.subarray(0, 20)).kind, "incomplete");
 * ```
 */
export function parseRequestHead(
  bytes: Uint8Array,
  limits: HeadLimits = {},
): RequestHeadResult {
  const [maxHeadSize, maxHeaders] = limitsOf(limits);
  const end = locate(bytes, maxHeadSize);
  if (typeof end !== "number") return end;
  // request-line = method SP request-target SP HTTP-version
  const eol = lineEnd(bytes, 0);
  if (eol < 0) return malformed("a bare CR or LF in the request line");
  let i = 0;
  while (i < eol && isTokenChar(bytes[i])) i++;
  if (i === 0 || bytes[i] !== SP) return malformed("invalid method");
  const method = latin1(bytes, 0, i);
  const targetStart = ++i;
  // Any visible byte, and bytes from 0x80 up as some clients send raw UTF-8.
  while (i < eol && bytes[i] > SP && bytes[i] !== 0x7f) i++;
  if (i === targetStart || bytes[i] !== SP) {
    return malformed("invalid request target");
  }
  const target = latin1(bytes, targetStart, i);
  const version = readVersion(bytes, i + 1, eol);
  if (version === null) return malformed("invalid HTTP version");
  const headers = new Headers();
  const error = readHeaders(bytes, eol + 2, end - 2, maxHeaders, headers);
  if (error !== null) return error;
  return {
    kind: "complete",
    method,
    target,
    version,
    headers,
    bodyOffset: end,
  };
}

/**
 * Parses an HTTP/1.1 response head (RFC 9112 §4, §5) from the start of
 * `bytes`, as {@linkcode parseRequestHead} does a request head. The reason
 * phrase may be empty, and the space before it missing.
 *
 * @example Parsing a 101 and the first frame after it
 * ```ts
 * import { parseResponseHead } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([
 *   ...new TextEncoder().encode(
 *     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
 *   ),
 *   0x81, 0x00, // the first frame
 * ]);
 * const head = parseResponseHead(bytes);
 * assert.equal(head.kind, "complete");
 * if (head.kind === "complete") {
 *   assert.equal(head.status, 101);
 *   assert.equal(head.statusText, "Switching Protocols");
 *   assert.equal(bytes.length - head.bodyOffset, 2);
 * }
 * ```
 */
export function parseResponseHead(
  bytes: Uint8Array,
  limits: HeadLimits = {},
): ResponseHeadResult {
  const [maxHeadSize, maxHeaders] = limitsOf(limits);
  const end = locate(bytes, maxHeadSize);
  if (typeof end !== "number") return end;
  // status-line = HTTP-version SP status-code SP [ reason-phrase ]
  const eol = lineEnd(bytes, 0);
  if (eol < 0) return malformed("a bare CR or LF in the status line");
  const version = readVersion(bytes, 0, Math.min(8, eol));
  if (
    version === null || bytes[8] !== SP || !isDigit(bytes[9]) ||
    !isDigit(bytes[10]) || !isDigit(bytes[11]) ||
    (12 < eol && bytes[12] !== SP)
  ) return malformed("invalid status line");
  const status = (bytes[9] - 0x30) * 100 + (bytes[10] - 0x30) * 10 +
    (bytes[11] - 0x30);
  for (let i = 13; i < eol; i++) {
    const byte = bytes[i];
    if ((byte < 0x20 && byte !== HTAB) || byte === 0x7f) {
      return malformed("a control character in the reason phrase");
    }
  }
  const statusText = eol > 13 ? latin1(bytes, 13, eol) : "";
  const headers = new Headers();
  const error = readHeaders(bytes, eol + 2, end - 2, maxHeaders, headers);
  if (error !== null) return error;
  return {
    kind: "complete",
    version,
    status,
    statusText,
    headers,
    bodyOffset: end,
  };
}

/** A head parser, {@linkcode parseRequestHead} or {@linkcode parseResponseHead}. */
export type HeadParser<H> = (
  bytes: Uint8Array,
  limits?: HeadLimits,
) => H | HeadIncomplete | HeadError;

/** What a {@linkcode HeadReader} hands back once the head is complete. */
export type HeadWithRest<H> = H & {
  /** The bytes that came after the head: the start of the WebSocket stream. */
  rest: Uint8Array;
};

/**
 * Gathers a message head from chunks as they arrive, then parses it once.
 * The search for the blank line resumes where the last chunk left off, so
 * the work is linear in the bytes pushed however they are split; at most
 * `maxHeadSize` bytes are buffered. A head that arrives in one chunk is not
 * copied, and the bytes after the head are a view of the last chunk.
 *
 * @example Reading a response head that arrives in pieces
 * ```ts
 * import { HeadReader, parseResponseHead } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * const reader = new HeadReader(parseResponseHead);
 * const encoder = new TextEncoder();
 * assert.equal(reader.push(encoder.encode("HTTP/1.1 101 \r\nUpgrade: web")).kind, "incomplete");
 * const head = reader.push(new Uint8Array([...encoder.encode("socket\r\n\r\n"), 0x81, 0x00]));
 * assert.equal(head.kind, "complete");
 * if (head.kind === "complete") {
 *   assert.equal(head.status, 101);
 *   assert.deepEqual(head.rest, new Uint8Array([0x81, 0x00]));
 * }
 * ```
 */
export class HeadReader<H> {
  readonly #parse: HeadParser<H>;
  readonly #limits: HeadLimits;
  readonly #maxHeadSize: number;
  #buffer: Uint8Array = new Uint8Array(0);
  #length = 0;
  #done = false;

  /** Creates a reader that parses the head with `parse`. */
  constructor(parse: HeadParser<H>, limits: HeadLimits = {}) {
    this.#parse = parse;
    this.#limits = limits;
    [this.#maxHeadSize] = limitsOf(limits);
  }

  /**
   * Takes the next chunk. Returns `incomplete` until the head has ended,
   * then the parsed head (or the error) once; pushing after that is a
   * mistake and throws a `TypeError`.
   */
  push(chunk: Uint8Array): HeadWithRest<H> | HeadIncomplete | HeadError {
    if (this.#done) {
      throw new TypeError("Cannot push to HeadReader: the head has been read");
    }
    const max = this.#maxHeadSize;
    const old = this.#length;
    if (old === 0) {
      const result = this.#parse(chunk, this.#limits);
      if ((result as HeadIncomplete).kind === "incomplete") {
        this.#append(chunk);
        return result as HeadIncomplete;
      }
      return this.#finish(result, chunk, 0);
    }
    // Only the first `max` bytes can hold the end of the head.
    const take = Math.min(chunk.length, max - old);
    this.#append(chunk.subarray(0, take));
    if (findHeadEnd(this.#buffer, Math.max(0, old - 3), this.#length) < 0) {
      if (this.#length < max) return INCOMPLETE;
    }
    return this.#finish(
      this.#parse(this.#buffer.subarray(0, this.#length), this.#limits),
      chunk,
      old,
    );
  }

  // The head ends inside `chunk` (it was not in the `old` bytes before it),
  // so what follows it is a view of `chunk`.
  #finish(
    result: H | HeadIncomplete | HeadError,
    chunk: Uint8Array,
    old: number,
  ): HeadWithRest<H> | HeadError {
    this.#done = true;
    this.#buffer = new Uint8Array(0);
    this.#length = 0;
    const head = result as { kind: string; bodyOffset: number };
    if (head.kind === "error") return result as HeadError;
    return {
      ...(result as H),
      rest: chunk.subarray(head.bodyOffset - old),
    };
  }

  #append(bytes: Uint8Array): void {
    const length = this.#length + bytes.length;
    if (length > this.#buffer.length) {
      const grown = new Uint8Array(
        Math.min(this.#maxHeadSize, Math.max(length, this.#buffer.length * 2)),
      );
      grown.set(this.#buffer.subarray(0, this.#length));
      this.#buffer = grown;
    }
    this.#buffer.set(bytes, this.#length);
    this.#length = length;
  }
}

/**
 * Formats a response head: status line, headers and the blank line, as
 * bytes (header values are Latin-1, one byte per character).
 *
 * @example The head of a 101
 * ```ts
 * import { formatResponseHead } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * const head = formatResponseHead(101, "Switching Protocols", new Headers({ Upgrade: "websocket" }));
 * assert.equal(
 *   new TextDecoder().decode(head),
 *   "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n",
 * );
 * ```
 */
export function formatResponseHead(
  status: number,
  statusText: string,
  headers: Headers,
): Uint8Array {
  if (!Number.isInteger(status) || status < 100 || status > 999) {
    throw new RangeError(
      `Cannot format HTTP head: status must be from 100 to 999, got ${status}`,
    );
  }
  for (let i = 0; i < statusText.length; i++) {
    const code = statusText.charCodeAt(i);
    if ((code < 0x20 && code !== HTAB) || code === 0x7f) {
      throw new TypeError(
        "Cannot format HTTP head: the reason phrase has a control character",
      );
    }
  }
  return encodeLatin1(
    `HTTP/1.1 ${status} ${statusText}\r\n${formatHeaders(headers)}\r\n`,
  );
}

/**
 * Formats a request head: request line, headers and the blank line, as
 * bytes (header values are Latin-1, one byte per character).
 *
 * @example The head of an upgrade request
 * ```ts
 * import { formatRequestHead } from "./_http.ts";
 * import assert from "node:assert/strict";
 *
 * const head = formatRequestHead("GET", "/chat", new Headers({ Host: "example.com" }));
 * assert.equal(
 *   new TextDecoder().decode(head),
 *   "GET /chat HTTP/1.1\r\nhost: example.com\r\n\r\n",
 * );
 * ```
 */
export function formatRequestHead(
  method: string,
  target: string,
  headers: Headers,
): Uint8Array {
  if (!isToken(method)) {
    throw new TypeError(`Cannot format HTTP head: invalid method ${method}`);
  }
  for (let i = 0; i < target.length; i++) {
    const code = target.charCodeAt(i);
    if (code <= SP || code === 0x7f) {
      throw new TypeError(
        "Cannot format HTTP head: the request target has a space or control character",
      );
    }
  }
  if (target.length === 0) {
    throw new TypeError("Cannot format HTTP head: empty request target");
  }
  return encodeLatin1(
    `${method} ${target} HTTP/1.1\r\n${formatHeaders(headers)}\r\n`,
  );
}

// Headers guarantees names are tokens and values have no CR, LF or NUL.
function formatHeaders(headers: Headers): string {
  let out = "";
  for (const [name, value] of headers) out += `${name}: ${value}\r\n`;
  return out;
}

/** Whether the comma-separated `value` lists `token`, ASCII case-insensitively. */
export function listHas(value: string | null, token: string): boolean {
  if (value === null) return false;
  const items = splitList(value);
  if (items === null) return false;
  for (const item of items) if (equalsIgnoreCase(item, token)) return true;
  return false;
}
