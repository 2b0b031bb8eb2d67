// The conformance suite's peer: a WebSocket endpoint written from RFC 6455
// alone, sharing no code with src/, that talks to ours over real loopback
// sockets. It builds frames byte by byte, writes them in chops of any size,
// and reads back what our endpoint sends, checking every frame against the
// RFC as it goes.
//
// One case list drives both of our endpoints:
//
// - role "server": our node:http upgrade path (src/adapters/node.ts) with
//   an echo handler configured like examples/echo.ts; the peer is a client
//   on a node:net socket, masking what it sends.
// - role "client": our WebSocketStream (src/client.ts), whose application
//   echoes every message; the peer is a node:net server answering the
//   handshake by hand, sending unmasked frames.
//
// and each role over both transports:
//
// - "tcp": a TCP connection of its own, after an HTTP/1.1 upgrade, as
//   above.
// - "h2": a stream of a cleartext HTTP/2 connection, after an extended
//   CONNECT (RFC 8441): our node:http2 adapter (src/adapters/node_http2.ts)
//   against a peer on a node:http2 client session, or our WebSocketStream
//   with httpVersion "2" against a peer that is a node:http2 server. Only
//   the byte pipe changes: the peer builds and checks every frame itself,
//   as over TCP. RFC 8441 §5 maps the ends of a TCP connection onto the
//   stream: END_STREAM for TCP's FIN, RST_STREAM (CANCEL) for a reset.
//
// Either way the peer sends the case's frames and expects the echoed
// messages and pongs, then the Close frame our endpoint sends (its code),
// then the end of the TCP connection ("eof"; over HTTP/2, END_STREAM, and
// then a stream closed with no RST_STREAM: a reset is logged as "reset N"
// and fails the case), and compares the whole log at once.

import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { createServer as createHttpServer } from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { constants, inflateRawSync } from "node:zlib";
import { type NodeUpgradeOptions, upgrade } from "../../src/adapters/node.ts";
import { upgradeStream } from "../../src/adapters/node_http2.ts";
import { WebSocketStream } from "../../src/client.ts";
import type {
  WebSocketCloseInfo,
  WebSocketConnection,
} from "../../src/connection.ts";
import { WebSocketError } from "../../src/errors.ts";
import type { PerMessageDeflateOptions } from "../../src/permessage_deflate.ts";

/** Which of our endpoints a case drives. */
export type Role = "server" | "client";
export const ROLES: readonly Role[] = ["server", "client"];

/**
 * What the WebSocket runs over: "tcp", a TCP connection of its own after
 * an HTTP/1.1 upgrade (RFC 6455 §4); "h2", a stream of a cleartext HTTP/2
 * connection after an extended CONNECT (RFC 8441).
 */
export type Transport = "tcp" | "h2";
export const TRANSPORTS: readonly Transport[] = ["tcp", "h2"];

// §1.3: the GUID every accept key is derived with.
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** §4.2.2 step 5: base64(SHA-1(key + GUID)). */
export function acceptFor(key: string): string {
  return createHash("sha1").update(key + GUID).digest("base64");
}

// ---------------------------------------------------------------------------
// Frames, built by hand (§5.2)

export const OP = {
  cont: 0x0,
  text: 0x1,
  binary: 0x2,
  close: 0x8,
  ping: 0x9,
  pong: 0xa,
} as const;

/** A frame as the peer sends it; anything the RFC forbids may be set. */
export interface WireFrame {
  opcode: number;
  payload?: Uint8Array | string;
  /** @default true */
  fin?: boolean;
  /** RSV1..3 as a 3-bit number (4 = RSV1). @default 0 */
  rsv?: number;
  /** Masked or not; default: as the RFC asks of the peer's role. */
  masked?: boolean;
  /** A length field that lies about the payload (only the header is sent). */
  declaredLength?: number;
  /** Payload offsets at which to split the frame between TCP writes. */
  parts?: number[];
  /** Send only this many bytes of the payload, and never the rest. */
  cut?: number;
}

const utf8 = new TextEncoder();

export function bytesOf(payload: Uint8Array | string | undefined): Uint8Array {
  if (payload === undefined) return new Uint8Array(0);
  return typeof payload === "string" ? utf8.encode(payload) : payload;
}

/** Deterministic bytes (a linear congruential sequence from `seed`). */
export function pattern(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

// Table 3-7 of the Unicode Standard, well-formed UTF-8 byte sequences: the
// range the second byte must fall in after each lead byte.
function secondRange(lead: number): [number, number] {
  if (lead === 0xe0) return [0xa0, 0xbf];
  if (lead === 0xed) return [0x80, 0x9f];
  if (lead === 0xf0) return [0x90, 0xbf];
  if (lead === 0xf4) return [0x80, 0x8f];
  return [0x80, 0xbf];
}

/**
 * The index of the byte at which `bytes` stops being a prefix of valid
 * UTF-8; `bytes.length` if it is a valid prefix cut short; -1 if valid.
 */
export function firstBad(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i];
    const need = lead < 0x80
      ? 0
      : lead >= 0xc2 && lead <= 0xdf
      ? 1
      : lead >= 0xe0 && lead <= 0xef
      ? 2
      : lead >= 0xf0 && lead <= 0xf4
      ? 3
      : -1;
    if (need < 0) return i;
    for (let k = 1; k <= need; k++) {
      if (i + k >= bytes.length) return bytes.length;
      const [low, high] = k === 1 ? secondRange(lead) : [0x80, 0xbf];
      const b = bytes[i + k];
      if (b < low || b > high) return i + k;
    }
    i += need + 1;
  }
  return -1;
}

export function hex(text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

export const text = (payload: Uint8Array | string, fin = true): WireFrame => ({
  opcode: OP.text,
  payload,
  fin,
});
export const binary = (
  payload: Uint8Array | string,
  fin = true,
): WireFrame => ({
  opcode: OP.binary,
  payload,
  fin,
});
export const cont = (payload: Uint8Array | string, fin = true): WireFrame => ({
  opcode: OP.cont,
  payload,
  fin,
});
export const ping = (payload: Uint8Array | string = ""): WireFrame => ({
  opcode: OP.ping,
  payload,
});
export const pong = (payload: Uint8Array | string = ""): WireFrame => ({
  opcode: OP.pong,
  payload,
});

/** A Close frame: no body, a code, or a code and reason (§5.5.1). */
export function close(
  code?: number,
  reason: Uint8Array | string = "",
): WireFrame {
  if (code === undefined) return { opcode: OP.close };
  const why = bytesOf(reason);
  const body = new Uint8Array(2 + why.length);
  body[0] = code >> 8;
  body[1] = code & 0xff;
  body.set(why, 2);
  return { opcode: OP.close, payload: body };
}

/**
 * A pause in what a case sends: until our endpoint has sent this many
 * frames back. Our endpoint may fail the connection on a bad frame before
 * its application has echoed the good message in front of it (the RFC
 * lets it); waiting makes the echo certain.
 */
export interface Wait {
  wait: number;
}

/** Waits for `count` entries in the log before sending on. */
export const wait = (count = 1): Wait => ({ wait: count });

/** What a case sends: a frame, raw bytes, frames in one write, or a pause. */
export type Sendable = WireFrame | Uint8Array | readonly WireFrame[] | Wait;

function isGroup(item: Sendable): item is readonly WireFrame[] {
  return Array.isArray(item);
}

/** The bytes of a frame: header, masking key, (masked) payload. */
export function encode(frame: WireFrame, mask: boolean): Uint8Array {
  const payload = bytesOf(frame.payload);
  const masked = frame.masked ?? mask;
  const length = frame.declaredLength ?? payload.length;
  const sent = frame.declaredLength === undefined ? payload.length : 0;
  const extra = length < 126 ? 0 : length < 0x10000 ? 2 : 8;
  const out = new Uint8Array(2 + extra + (masked ? 4 : 0) + sent);
  out[0] = ((frame.fin ?? true) ? 0x80 : 0) | ((frame.rsv ?? 0) << 4) |
    frame.opcode;
  out[1] = (masked ? 0x80 : 0) |
    (extra === 0 ? length : extra === 2 ? 126 : 127);
  if (extra === 2) {
    out[2] = length >> 8;
    out[3] = length & 0xff;
  } else if (extra === 8) {
    const high = Math.floor(length / 0x100000000);
    const view = new DataView(out.buffer);
    view.setUint32(2, high);
    view.setUint32(6, length >>> 0);
  }
  let at = 2 + extra;
  if (masked) {
    const key = randomBytes(4);
    out.set(key, at);
    at += 4;
    for (let i = 0; i < sent; i++) out[at + i] = payload[i] ^ key[i & 3];
  } else {
    out.set(payload.subarray(0, sent), at);
  }
  return out;
}

// ---------------------------------------------------------------------------
// What our endpoint sends, as a log of short strings

const LONG = 48;

function digest(bytes: Uint8Array): string {
  return `${bytes.length} bytes sha1 ${
    createHash("sha1").update(bytes).digest("hex").slice(0, 16)
  }`;
}

/** The log entry of a text message our endpoint sends. */
export function T(payload: Uint8Array | string): string {
  const bytes = bytesOf(payload);
  if (bytes.length > LONG) return `text ${digest(bytes)}`;
  return `text ${JSON.stringify(new TextDecoder().decode(bytes))}`;
}

/** The log entry of a binary message our endpoint sends. */
export function B(payload: Uint8Array | string): string {
  const bytes = bytesOf(payload);
  if (bytes.length > LONG) return `binary ${digest(bytes)}`;
  return `binary ${Buffer.from(bytes).toString("hex")}`;
}

/** The log entry of a pong our endpoint sends. */
export function P(payload: Uint8Array | string = ""): string {
  return `pong ${Buffer.from(bytesOf(payload)).toString("hex")}`;
}

/**
 * An entry that may be missing from the log: a pong our endpoint may leave
 * out (§5.5.3: "If an endpoint receives a Ping frame and has not yet sent
 * Pong frame(s) in response to previous Ping frame(s), the endpoint MAY
 * elect to send a Pong frame for only the most recently processed Ping
 * frame").
 */
export function maybe(entry: string): string {
  return `(maybe) ${entry}`;
}

/** The pongs for pings sent in a row: the last one certain, the rest not. */
export function pongs(...payloads: (Uint8Array | string)[]): string[] {
  return payloads.map((p, i) => i === payloads.length - 1 ? P(p) : maybe(P(p)));
}

// Lines the log up with the expected entries, skipping optional ones that
// are absent; returns the expected entries as they turned out.
function align(log: readonly string[], expected: readonly string[]): string[] {
  const out: string[] = [];
  let at = 0;
  for (const entry of expected) {
    if (!entry.startsWith("(maybe) ")) {
      out.push(entry);
      at++;
      continue;
    }
    const bare = entry.slice("(maybe) ".length);
    if (log[at] === bare) {
      out.push(bare);
      at++;
    }
  }
  return out;
}

// Whether the log holds exactly the expected entries, all of them.
function complete(
  log: readonly string[],
  expected: readonly string[],
): boolean {
  const aligned = align(log, expected);
  return aligned.length === log.length &&
    aligned.every((entry, i) => entry === log[i]) &&
    expected.filter((e) => !e.startsWith("(maybe) ")).length <= log.length;
}

function closeEntry(code: number | null): string {
  return code === null ? "close (no code)" : `close ${code}`;
}

/**
 * Reads frames from our endpoint, checking each against the RFC; anything
 * wrong goes into the log as a "violation", so it fails the comparison.
 */
export class Reader {
  readonly log: string[] = [];
  #buffer = new Uint8Array(1 << 16);
  #start = 0;
  #end = 0;
  #message:
    | { opcode: number; parts: Uint8Array[]; compressed: boolean }
    | null = null;
  #closed = false;
  readonly #expectMasked: boolean;
  /** permessage-deflate agreed, with no context takeover on our side. */
  deflate = false;
  /** How many messages our endpoint sent compressed. */
  compressed = 0;

  constructor(expectMasked: boolean) {
    this.#expectMasked = expectMasked;
  }

  push(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buffer.length) {
      const live = this.#end - this.#start;
      let size = this.#buffer.length;
      while (size < live + chunk.length) size *= 2;
      const next = size === this.#buffer.length
        ? this.#buffer
        : new Uint8Array(size);
      next.set(this.#buffer.subarray(this.#start, this.#end), 0);
      this.#buffer = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buffer.set(chunk, this.#end);
    this.#end += chunk.length;
    while (this.#frame());
  }

  #violation(what: string): void {
    this.log.push(`violation: ${what}`);
  }

  // Parses one frame if the buffer holds it whole.
  #frame(): boolean {
    const b = this.#buffer;
    const start = this.#start;
    const available = this.#end - start;
    if (available < 2) return false;
    const b0 = b[start];
    const b1 = b[start + 1];
    let length = b1 & 0x7f;
    let at = start + 2;
    if (length === 126) {
      if (available < 4) return false;
      length = (b[at] << 8) | b[at + 1];
      if (length < 126) this.#violation("length not minimally encoded");
      at += 2;
    } else if (length === 127) {
      if (available < 10) return false;
      const view = new DataView(b.buffer, b.byteOffset + at, 8);
      const high = view.getUint32(0);
      if (high & 0x80000000) this.#violation("64-bit length MSB set");
      length = high * 0x100000000 + view.getUint32(4);
      if (length < 0x10000) this.#violation("length not minimally encoded");
      at += 8;
    }
    const masked = (b1 & 0x80) !== 0;
    const keyAt = at;
    if (masked) at += 4;
    if (this.#end - at < length) return false;
    const payload = b.slice(at, at + length);
    if (masked) {
      for (let i = 0; i < length; i++) payload[i] ^= b[keyAt + (i & 3)];
    }
    this.#start = at + length;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    this.#check(b0, masked, payload);
    return true;
  }

  #check(b0: number, masked: boolean, payload: Uint8Array): void {
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (this.#closed) this.#violation("a frame after the Close frame");
    // §5.1: a client masks every frame, a server none.
    if (masked !== this.#expectMasked) {
      this.#violation(masked ? "masked frame" : "unmasked frame");
    }
    // RFC 7692 §6: RSV1 marks the first frame of a compressed message.
    const rsv1 = this.deflate && opcode !== OP.cont && opcode < 0x8;
    if (b0 & (rsv1 ? 0x30 : 0x70)) {
      this.#violation("RSV bits set with no extension");
    }
    if (opcode >= 0x8) {
      if (!fin) this.#violation("fragmented control frame");
      if (payload.length > 125) this.#violation("control frame over 125 B");
    }
    switch (opcode) {
      case OP.cont:
        if (this.#message === null) {
          this.#violation("continuation with no message");
          return;
        }
        this.#message.parts.push(payload);
        if (fin) this.#finishMessage();
        return;
      case OP.text:
      case OP.binary:
        if (this.#message !== null) {
          this.#violation("new message inside a fragmented one");
        }
        this.#message = {
          opcode,
          parts: [payload],
          compressed: (b0 & 0x40) !== 0,
        };
        if (fin) this.#finishMessage();
        return;
      case OP.ping:
        this.log.push(`ping ${Buffer.from(payload).toString("hex")}`);
        return;
      case OP.pong:
        this.log.push(P(payload));
        return;
      case OP.close:
        this.#closed = true;
        this.#closeFrame(payload);
        return;
      default:
        this.#violation(`reserved opcode ${opcode}`);
    }
  }

  #finishMessage(): void {
    const { opcode, parts, compressed } = this.#message!;
    this.#message = null;
    let whole = Buffer.concat(parts);
    if (compressed) {
      // RFC 7692 §7.2.2: append 00 00 ff ff and inflate. Our endpoint was
      // asked for no context takeover, so each message stands alone.
      this.compressed++;
      try {
        whole = inflateRawSync(
          Buffer.concat([whole, Buffer.from([0x00, 0x00, 0xff, 0xff])]),
          { finishFlush: constants.Z_SYNC_FLUSH },
        );
      } catch {
        this.#violation("a compressed message that does not inflate");
        return;
      }
    }
    if (opcode === OP.binary) {
      this.log.push(B(whole));
      return;
    }
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(whole);
    } catch {
      this.#violation("text message not UTF-8");
      return;
    }
    this.log.push(T(whole));
  }

  #closeFrame(body: Uint8Array): void {
    if (body.length === 0) {
      this.log.push(closeEntry(null));
      return;
    }
    if (body.length === 1) this.#violation("close body of one byte");
    const code = (body[0] << 8) | body[1];
    // §7.4.1: 1005, 1006 and 1015 MUST NOT be sent, nor 1004 or codes
    // below 1000; 1016–2999 are reserved for the protocol.
    const sendable = (code >= 1000 && code <= 1003) ||
      (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
    if (!sendable) this.#violation(`close code ${code} may not be sent`);
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(body.subarray(2));
    } catch {
      this.#violation("close reason not UTF-8");
    }
    this.log.push(closeEntry(code));
  }
}

// ---------------------------------------------------------------------------
// A peer connection

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The byte pipe under a connection: a TCP socket (after an HTTP/1.1
 * upgrade), or an HTTP/2 stream (after an extended CONNECT, RFC 8441).
 * Both are node:stream Duplexes; only their ends differ (see Peer).
 */
export type Pipe = net.Socket | http2.Http2Stream;

/** The peer's end of one connection to our endpoint. */
export class Peer {
  /** What the peer writes to and reads from. */
  readonly pipe: Pipe;
  readonly transport: Transport;
  readonly reader: Reader;
  readonly #mask: boolean;
  /**
   * Sec-WebSocket-Extensions from our endpoint: as a server, its
   * response; as a client, its offer.
   */
  extensions: string | null = null;
  /**
   * A peer that hangs: it neither answers a Close nor ends its side when
   * ours ends, so that our endpoint's closeTimeout must drop the
   * connection. @default false
   */
  hangs = false;
  /**
   * Settles once the pipe has closed, with an HTTP/2 stream's RST_STREAM
   * code (0, NO_ERROR, for a stream both sides ended), or undefined over
   * TCP.
   */
  readonly closed: Promise<number | undefined>;
  #ended = false;
  #closeSent = false;
  #closeAnswered = false;
  #notify = () => {};

  constructor(
    pipe: Pipe,
    role: Role,
    rest: Uint8Array,
    transport: Transport = "tcp",
  ) {
    this.pipe = pipe;
    this.transport = transport;
    // Our server is sent masked frames, our client unmasked ones, and
    // each sends the other kind back.
    this.#mask = role === "server";
    this.reader = new Reader(role === "client");
    if (transport === "tcp") (pipe as net.Socket).setNoDelay(true);
    if (rest.length > 0) this.reader.push(rest);
    pipe.on("data", (chunk: Buffer) => {
      this.reader.push(chunk);
      if (this.closeSeen && !this.#closeAnswered && !this.hangs) {
        this.#closeAnswered = true;
        // §5.5.1: a Close is answered with a Close (unless one was sent),
        // echoing its code; §7.1.1: the server then closes the TCP
        // connection first, so as the server the peer ends it (over
        // HTTP/2, END_STREAM stands for TCP's FIN: RFC 8441 §5).
        if (!this.#closeSent) this.#answerClose();
        if (role === "client") pipe.end();
      }
      this.#notify();
    });
    // "eof": our endpoint closed the connection in order, a TCP FIN, or
    // over HTTP/2 END_STREAM (RFC 8441 §5: "Orderly TCP-level closures are
    // represented as END_STREAM flags").
    pipe.on("end", () => {
      this.#ended = true;
      this.reader.log.push("eof");
      // A node:net socket ends its side when the other does (allowHalfOpen
      // is off); an HTTP/2 stream is half-open until told, so the peer
      // ends it likewise.
      if (transport === "h2" && !pipe.writableEnded && !this.hangs) pipe.end();
      this.#notify();
    });
    pipe.on("error", () => {});
    this.closed = new Promise((resolve) => {
      pipe.on("close", () => {
        resolve(
          transport === "h2" ? (pipe as http2.Http2Stream).rstCode : undefined,
        );
      });
    });
    pipe.on("close", () => {
      if (!this.#ended) {
        this.#ended = true;
        // Over HTTP/2 a stream that closes before END_STREAM was reset (RFC
        // 8441 §5: "RST exceptions are represented with the RST_STREAM
        // frame ... with the CANCEL error code"), which is not an orderly
        // end, so it has an entry of its own. (Over TCP the peer does not
        // tell a reset from a FIN.)
        const code = transport === "h2"
          ? (pipe as http2.Http2Stream).rstCode
          : undefined;
        this.reader.log.push(code === undefined ? "eof" : `reset ${code}`);
      }
      this.#notify();
    });
  }

  #answerClose(): void {
    const entry = this.log.find((e) => e.startsWith("close"))!;
    const code = Number(entry.slice("close ".length));
    this.#closeSent = true;
    const frame = Number.isInteger(code) && code !== 1005
      ? close(code)
      : close();
    if (!this.pipe.destroyed && !this.pipe.writableEnded) {
      this.pipe.write(this.encode(frame), () => {});
    }
  }

  get log(): string[] {
    return this.reader.log;
  }

  get closeSeen(): boolean {
    return this.reader.log.some((entry) => entry.startsWith("close"));
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Frame bytes as this peer's role sends them (masked to a server). */
  encode(frame: WireFrame): Uint8Array {
    if (frame.opcode === OP.close) this.#closeSent = true;
    return encode(frame, this.#mask);
  }

  /**
   * Writes bytes, in chops of `chop` bytes with a turn of the event loop
   * between (a TCP write each, or over HTTP/2 a DATA frame each).
   */
  async write(bytes: Uint8Array, chop = 0): Promise<void> {
    if (this.pipe.destroyed || this.pipe.writableEnded) return;
    if (chop <= 0 || chop >= bytes.length) {
      await new Promise<void>((resolve) =>
        this.pipe.write(bytes, () => resolve())
      );
      return;
    }
    for (let at = 0; at < bytes.length; at += chop) {
      if (this.pipe.destroyed || this.pipe.writableEnded) return;
      await new Promise<void>((resolve) =>
        this.pipe.write(bytes.subarray(at, at + chop), () => resolve())
      );
      // Two turns: the write's callback, then our endpoint's read.
      await tick();
      await tick();
    }
  }

  /** Sends frames, each in its own write(s). */
  async send(frames: readonly Sendable[], chop = 0): Promise<void> {
    for (const frame of frames) {
      if ("wait" in frame) {
        const count = frame.wait;
        await this.until(() => this.log.length >= count || this.ended, 5000);
        continue;
      }
      if (isGroup(frame)) {
        // Frames that go out together, in one write.
        const parts = frame.map((f) => this.encode(f));
        await this.write(new Uint8Array(Buffer.concat(parts)), chop);
        continue;
      }
      if (frame instanceof Uint8Array) {
        await this.write(frame, chop);
        continue;
      }
      let bytes = this.encode(frame);
      if (frame.cut !== undefined) {
        const header = bytes.length - bytesOf(frame.payload).length;
        bytes = bytes.subarray(0, header + frame.cut);
      }
      if (frame.parts === undefined) {
        await this.write(bytes, chop);
        continue;
      }
      // A frame in several TCP writes at the given payload offsets.
      const header = bytes.length - bytesOf(frame.payload).length;
      let from = 0;
      const cuts = [...frame.parts.map((p) => header + p), bytes.length];
      for (const cut of cuts) {
        await this.write(bytes.subarray(from, cut), chop);
        await tick();
        await tick();
        from = cut;
      }
    }
  }

  /** Waits until `done()` holds or `ms` pass; says which. */
  async until(done: () => boolean, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!done()) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 50));
        this.#notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return true;
  }

  /**
   * Resets the connection: a TCP RST, or over HTTP/2 a RST_STREAM with
   * CANCEL (RFC 8441 §5).
   */
  reset(): void {
    if (this.transport === "tcp") (this.pipe as net.Socket).resetAndDestroy();
    else this.destroy();
  }

  /** Drops the connection: a TCP socket destroyed, an HTTP/2 stream reset. */
  destroy(): void {
    if (this.transport === "tcp") this.pipe.destroy();
    else if (!this.pipe.destroyed) {
      (this.pipe as http2.Http2Stream).close(http2.constants.NGHTTP2_CANCEL);
    }
  }
}

// ---------------------------------------------------------------------------
// Our endpoints

/** The limits of examples/echo.ts: large enough for every case. */
export const ECHO_LIMIT = 64 * 1024 * 1024;

export interface EndpointOptions {
  maxFrameSize?: number;
  maxMessageSize?: number;
  fragmentSize?: number;
  streaming?: boolean;
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  /**
   * The Sec-WebSocket-Extensions the peer sends: as a client, its offer;
   * as a server, its response (which our client must accept or fail on).
   */
  extensions?: string;
}

// Our endpoint's options, without the peer's.
function endpointOptions(options: EndpointOptions) {
  const { extensions: _, ...rest } = options;
  return rest;
}

/** One connection between the peer and our endpoint. */
export interface Session {
  peer: Peer;
  /** Our endpoint's connection (its `closed` is checked). */
  ours: WebSocketConnection<boolean>;
  transport: Transport;
  /**
   * Over HTTP/2, the extended CONNECT's headers as the server side got
   * them in its 'stream' event (our server's, or the peer's as the
   * server); null over TCP. Proof that the case ran over HTTP/2.
   */
  connect: http2.IncomingHttpHeaders | null;
  /** Closes listeners, sockets and sessions; idempotent. */
  dispose(): Promise<void>;
}

function settle<T>(promise: Promise<T>): Promise<
  { ok: true; value: T } | { ok: false; error: unknown }
> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error) => ({ ok: false as const, error }),
  );
}

// Echo in the application: what comes in goes out; in streaming mode, a
// message is read whole first.
async function echo(ws: WebSocketConnection<boolean>): Promise<void> {
  const { readable, writable } = await ws.opened;
  const writer = writable.getWriter();
  for await (const message of readable) {
    if (typeof message === "string" || message instanceof Uint8Array) {
      await writer.write(message);
    } else {
      await writer.write(
        message.type === "text" ? await message.text() : await message.bytes(),
      );
    }
  }
}

/** Reads an HTTP head off a socket; returns it and the bytes after it. */
export function readHead(
  socket: net.Socket,
): Promise<{ head: string; rest: Uint8Array }> {
  return new Promise((resolve, reject) => {
    let buffered = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk]);
      const end = buffered.indexOf("\r\n\r\n");
      if (end < 0) return;
      cleanup();
      socket.pause();
      resolve({
        head: buffered.subarray(0, end).toString("latin1"),
        rest: new Uint8Array(buffered.subarray(end + 4)),
      });
    };
    const onEnd = () => {
      cleanup();
      reject(new Error(`the connection ended before a head: ${buffered}`));
    };
    const cleanup = () => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("close", onEnd);
    };
    socket.on("data", onData);
    socket.on("end", onEnd);
    socket.on("close", onEnd);
  });
}

/** The value of a header in a raw head, or null. */
export function headerOf(head: string, name: string): string | null {
  for (const line of head.split("\r\n").slice(1)) {
    const colon = line.indexOf(":");
    if (line.slice(0, colon).trim().toLowerCase() === name.toLowerCase()) {
      return line.slice(colon + 1).trim();
    }
  }
  return null;
}

/** Our node:http server with the echo handler, and a raw client peer. */
async function serverSession(options: EndpointOptions): Promise<Session> {
  let ours!: WebSocketConnection<boolean>;
  const server = createHttpServer();
  const upgraded = new Promise<void>((resolve) => {
    server.on("upgrade", (request, socket, head) => {
      const upgradeOptions: NodeUpgradeOptions<boolean> = {
        origins: "*",
        maxFrameSize: ECHO_LIMIT,
        maxMessageSize: ECHO_LIMIT,
        fragmentSize: ECHO_LIMIT,
        ...endpointOptions(options),
      };
      ours = upgrade(request, socket as never, head, upgradeOptions);
      echo(ours).catch(() => {});
      resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect({ host: "127.0.0.1", port });
  const heading = readHead(socket);
  heading.catch(() => {});
  const key = randomBytes(16).toString("base64");
  socket.write(
    `GET /echo HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\n` +
      `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\n` +
      `Sec-WebSocket-Version: 13\r\n` +
      (options.extensions === undefined
        ? ""
        : `Sec-WebSocket-Extensions: ${options.extensions}\r\n`) +
      "\r\n",
  );
  const dispose = async () => {
    socket.destroy();
    server.closeAllConnections?.();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  try {
    const { head } = await heading;
    assert.match(head, /^HTTP\/1\.1 101 /);
    assert.equal(headerOf(head, "sec-websocket-accept"), acceptFor(key));
    await upgraded;
  } catch (error) {
    await dispose();
    throw error;
  }
  const { head, rest } = await heading;
  const peer = new Peer(socket, "server", rest);
  peer.extensions = headerOf(head, "sec-websocket-extensions");
  peer.reader.deflate = peer.extensions !== null;
  socket.resume();
  return { peer, ours, transport: "tcp", connect: null, dispose };
}

/** Our WebSocketStream, echoing, against a raw node:net server peer. */
async function clientSession(options: EndpointOptions): Promise<Session> {
  const server = net.createServer();
  const accepted = new Promise<Peer>((resolve, reject) => {
    server.once("connection", (socket) => {
      readHead(socket).then(({ head, rest }) => {
        const key = headerOf(head, "sec-websocket-key") ?? "";
        const extensions = options.extensions;
        socket.write(
          "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
            `Connection: Upgrade\r\nSec-WebSocket-Accept: ${
              acceptFor(key)
            }\r\n` +
            (extensions === undefined
              ? ""
              : `Sec-WebSocket-Extensions: ${extensions}\r\n`) +
            "\r\n",
        );
        const peer = new Peer(socket, "client", rest);
        peer.extensions = headerOf(head, "sec-websocket-extensions");
        peer.reader.deflate = extensions !== undefined;
        socket.resume();
        resolve(peer);
      }, reject);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  const ours = new WebSocketStream<boolean>(`ws://127.0.0.1:${port}/`, {
    maxFrameSize: ECHO_LIMIT,
    maxMessageSize: ECHO_LIMIT,
    fragmentSize: ECHO_LIMIT,
    ...endpointOptions(options),
  });
  const peer = await accepted;
  try {
    await ours.opened;
  } catch (cause) {
    // The client failed the handshake: it must close the TCP connection.
    const closed = await peer.until(() => peer.ended, 5000);
    peer.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw new OpenFailed(cause, closed);
  }
  echo(ours).catch(() => {});
  return {
    peer,
    ours,
    transport: "tcp",
    connect: null,
    dispose: async () => {
      peer.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

// RFC 8441 §3: our server, and the peer as a server, offer the extended
// CONNECT.
const H2_SETTINGS = { enableConnectProtocol: true };

/** A cleartext HTTP/2 server, and a way to close it with its sessions. */
async function h2Server(): Promise<{
  server: http2.Http2Server;
  port: number;
  close(): Promise<void>;
}> {
  const server = http2.createServer({ settings: H2_SETTINGS });
  const sessions = new Set<http2.Http2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.on("error", () => {});
    session.on("close", () => sessions.delete(session));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    server,
    port,
    close: async () => {
      for (const session of sessions) session.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The first value of a header, or null. */
function headerValue(value: string | string[] | undefined): string | null {
  return value === undefined ? null : Array.isArray(value) ? value[0] : value;
}

/** Resolves once `stream` has its response, rejects if it closes first. */
export function responseOf(
  stream: http2.ClientHttp2Stream,
): Promise<http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader> {
  return new Promise((resolve, reject) => {
    stream.once("response", resolve);
    stream.once("close", () =>
      reject(
        new Error(`the stream closed before a response (${stream.rstCode})`),
      ));
  });
}

/** Resolves with the SETTINGS a client session got from its server. */
export function remoteSettingsOf(
  session: http2.ClientHttp2Session,
): Promise<http2.Settings> {
  return new Promise((resolve, reject) => {
    session.once("remoteSettings", resolve);
    session.once("close", () => reject(new Error("the session closed")));
  });
}

/**
 * Our node:http2 server (src/adapters/node_http2.ts) with the echo
 * handler, and a client peer that sends the extended CONNECT on a
 * node:http2 session of its own.
 */
async function serverSessionH2(options: EndpointOptions): Promise<Session> {
  let ours!: WebSocketConnection<boolean>;
  let request!: http2.IncomingHttpHeaders;
  const { server, port, close } = await h2Server();
  const upgraded = new Promise<void>((resolve) => {
    server.on("stream", (stream: http2.ServerHttp2Stream, headers) => {
      request = headers;
      ours = upgradeStream(stream, headers, {
        origins: "*",
        maxFrameSize: ECHO_LIMIT,
        maxMessageSize: ECHO_LIMIT,
        fragmentSize: ECHO_LIMIT,
        ...endpointOptions(options),
      });
      echo(ours).catch(() => {});
      resolve();
    });
  });
  const client = http2.connect(`http://127.0.0.1:${port}`);
  client.on("error", () => {});
  const dispose = async () => {
    client.destroy();
    await close();
  };
  try {
    // RFC 8441 §3: a client sends an extended CONNECT only once the
    // server's SETTINGS_ENABLE_CONNECT_PROTOCOL has arrived.
    const settings = await remoteSettingsOf(client);
    assert.equal(settings.enableConnectProtocol, true);
    // §4, §5: the request carries no Sec-WebSocket-Key, Upgrade or
    // Connection.
    const stream = client.request({
      ":method": "CONNECT",
      ":protocol": "websocket",
      ":scheme": "http",
      ":path": "/echo",
      ":authority": `127.0.0.1:${port}`,
      "sec-websocket-version": "13",
      ...(options.extensions === undefined
        ? {}
        : { "sec-websocket-extensions": options.extensions }),
    }, { endStream: false });
    // Listening at once: all our endpoint sends is logged, whatever the
    // order in which a runtime reports the response and the data.
    const peer = new Peer(stream, "server", new Uint8Array(0), "h2");
    const response = await responseOf(stream);
    // §5's example answers 200 (any 2xx opens a CONNECT's tunnel, RFC
    // 9110 §9.3.6); ours does.
    assert.equal(response[":status"], 200);
    await upgraded;
    peer.extensions = headerValue(response["sec-websocket-extensions"]);
    peer.reader.deflate = peer.extensions !== null;
    return { peer, ours, transport: "h2", connect: request, dispose };
  } catch (error) {
    await dispose();
    throw error;
  }
}

/**
 * Our WebSocketStream with httpVersion "2", echoing, against a peer that
 * is a node:http2 server answering the extended CONNECT with 200.
 */
async function clientSessionH2(options: EndpointOptions): Promise<Session> {
  const { server, port, close } = await h2Server();
  let request!: http2.IncomingHttpHeaders;
  const accepted = new Promise<Peer>((resolve) => {
    server.once("stream", (stream: http2.ServerHttp2Stream, headers) => {
      request = headers;
      const extensions = options.extensions;
      stream.respond({
        ":status": 200,
        ...(extensions === undefined
          ? {}
          : { "sec-websocket-extensions": extensions }),
      });
      const peer = new Peer(stream, "client", new Uint8Array(0), "h2");
      peer.extensions = headerValue(headers["sec-websocket-extensions"]);
      peer.reader.deflate = extensions !== undefined;
      resolve(peer);
    });
  });
  const ours = new WebSocketStream<boolean>(`ws://127.0.0.1:${port}/`, {
    httpVersion: "2",
    maxFrameSize: ECHO_LIMIT,
    maxMessageSize: ECHO_LIMIT,
    fragmentSize: ECHO_LIMIT,
    ...endpointOptions(options),
  });
  // A client that fails before it sends a request ends the wait too.
  const peer = await Promise.race([
    accepted,
    ours.opened.then(() => accepted),
  ]).catch(async (error) => {
    await close();
    throw error;
  });
  try {
    await ours.opened;
  } catch (cause) {
    // The client failed the handshake: it must close the stream (over
    // HTTP/2, the connection is the stream: RFC 8441 §5).
    const closed = await peer.until(() => peer.ended, 5000);
    peer.destroy();
    await close();
    throw new OpenFailed(cause, closed);
  }
  echo(ours).catch(() => {});
  return {
    peer,
    ours,
    transport: "h2",
    connect: request,
    dispose: async () => {
      peer.destroy();
      await close();
    },
  };
}

/** Our client refused the handshake (`opened` rejected with `cause`). */
export class OpenFailed extends Error {
  /**
   * Whether it closed the connection afterwards: the TCP connection, or
   * over HTTP/2 its stream.
   */
  readonly closedConnection: boolean;
  constructor(cause: unknown, closedConnection: boolean) {
    super(`opened rejected: ${cause}`, { cause });
    this.closedConnection = closedConnection;
  }
}

/**
 * Opens a connection between the peer and our endpoint in `role`, over
 * `transport`.
 */
export function connect(
  role: Role,
  options: EndpointOptions = {},
  transport: Transport = "tcp",
): Promise<Session> {
  if (transport === "h2") {
    return role === "server"
      ? serverSessionH2(options)
      : clientSessionH2(options);
  }
  return role === "server" ? serverSession(options) : clientSession(options);
}

/**
 * Asserts that a session runs over `transport`: over HTTP/2, that the
 * server side got an extended CONNECT for a WebSocket on a stream, and the
 * peer talks over that stream, not a socket.
 */
export function assertTransport(session: Session, transport: Transport): void {
  assert.equal(session.transport, transport);
  assert.equal(session.peer.transport, transport);
  if (transport === "tcp") {
    assert.equal(session.connect, null);
    assert.ok(session.peer.pipe instanceof net.Socket, "not a TCP socket");
    return;
  }
  assert.equal(session.connect?.[":method"], "CONNECT");
  assert.equal(session.connect?.[":protocol"], "websocket");
  assert.ok(!(session.peer.pipe instanceof net.Socket), "a TCP socket");
  assert.equal(typeof (session.peer.pipe as http2.Http2Stream).id, "number");
}

// ---------------------------------------------------------------------------
// The case driver

/** One conformance case: what the peer sends, what must come back. */
export interface Case {
  /** "<section or Autobahn id> <what>" */
  name: string;
  /** Frames (or raw bytes) the peer sends, in order. */
  send: readonly Sendable[];
  /**
   * Send in writes of this many bytes (TCP writes, or HTTP/2 DATA
   * frames). @default 0 (one write a frame)
   */
  chop?: number;
  /** What our endpoint sends back before its Close frame. @default [] */
  expect?: readonly string[];
  /**
   * The code of the Close frame our endpoint sends (null: one with no
   * body). Omitted: the case is clean, so once `expect` has arrived the
   * peer closes with 1000 and our endpoint must answer 1000.
   */
  close?: number | null;
  /**
   * Whether our endpoint fails the connection (`closed` rejects with a
   * WebSocketError of the close code) rather than closing cleanly.
   * @default whether `close` is set and the peer sent no Close frame
   */
  fails?: boolean;
  /** Which of our endpoints the case applies to. @default both */
  roles?: readonly Role[];
  /** What the case runs over. @default both */
  transports?: readonly Transport[];
  /** Options for our endpoint. */
  options?: EndpointOptions;
  /** Milliseconds the case may take to finish. @default 5000 */
  timeout?: number;
}

/**
 * Over HTTP/2, that both sides ended the stream and neither reset it (an
 * HTTP/2 stream closed in order, as a TCP connection closed with FINs);
 * waits at most `ms` for it to close. Over TCP, nothing.
 */
export async function assertClosedInOrder(
  peer: Peer,
  ms = 5000,
): Promise<void> {
  if (peer.transport === "tcp") return;
  const code = await within(peer.closed, ms);
  assert.equal(
    code,
    http2.constants.NGHTTP2_NO_ERROR,
    "the stream's RST_STREAM code (0: none, ended in order)",
  );
}

/** What `promise` settles to, or "(timed out)" after `ms`. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | string> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<string>((resolve) => {
        timer = setTimeout(resolve, ms, "(timed out)");
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function isClose(frame: Sendable): boolean {
  if (isGroup(frame)) return frame.some(isClose);
  return !(frame instanceof Uint8Array) &&
    (frame as WireFrame).opcode === OP.close;
}

/**
 * Runs one case against our endpoint in `role` over `transport`, and
 * asserts the outcome.
 */
export async function runCase(
  role: Role,
  c: Case,
  transport: Transport = "tcp",
): Promise<void> {
  const session = await connect(role, c.options, transport);
  const { peer, ours } = session;
  const closed = settle<WebSocketCloseInfo>(ours.closed);
  const timeout = c.timeout ?? 5000;
  try {
    assertTransport(session, transport);
    const expect = c.expect ?? [];
    const peerCloses = c.send.some(isClose);
    const clean = c.close === undefined;
    await peer.send(c.send, c.chop);
    if (clean && !peerCloses) {
      // The echoes first, then the peer's Close.
      await peer.until(() => complete(peer.log, expect) || peer.ended, timeout);
      await peer.send([close(1000)]);
    }
    const finished = await peer.until(() => peer.ended, timeout);
    const closeCode = clean ? 1000 : c.close!;
    const log = finished ? peer.log : [...peer.log, "(timed out)"];
    assert.deepEqual(
      log,
      align(log, [...expect, closeEntry(closeCode), "eof"]),
      `${role}: what our endpoint sent`,
    );
    await assertClosedInOrder(peer, timeout);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const outcome = await Promise.race([
      closed,
      new Promise<null>((resolve) => {
        timer = setTimeout(resolve, timeout, null);
      }),
    ]);
    clearTimeout(timer);
    assert.ok(outcome !== null, `${role}: closed never settled`);
    const fails = c.fails ?? (!clean && !peerCloses);
    if (fails) {
      assert.ok(!outcome.ok, `${role}: closed resolved, expected a failure`);
      assert.ok(
        outcome.error instanceof WebSocketError,
        `${role}: closed rejected with ${outcome.error}`,
      );
      assert.equal(outcome.error.closeCode, closeCode, `${role}: closeCode`);
    } else {
      assert.ok(
        outcome.ok,
        `${role}: closed rejected: ${!outcome.ok && outcome.error}`,
      );
    }
  } finally {
    await session.dispose();
  }
}

/** node:test's `test`, as the case files use it. */
export type Test = (name: string, fn: () => Promise<void>) => unknown;

/** A test's name: "[server, h2] §5.2 ...". */
export function testName(
  role: Role,
  transport: Transport,
  name: string,
): string {
  return `[${role}, ${transport}] ${name}`;
}

/**
 * Registers one test per case, role and transport with `test`
 * (node:test's).
 */
export function register(test: Test, cases: readonly Case[]): void {
  for (const c of cases) {
    forEachEndpoint(
      test,
      c.name,
      (role, transport) => runCase(role, c, transport),
      c.roles,
      c.transports,
    );
  }
}

/**
 * Registers `fn` as one test per role and transport, named by
 * {@linkcode testName} (`name` may depend on them).
 */
export function forEachEndpoint(
  test: Test,
  name: string | ((role: Role, transport: Transport) => string),
  fn: (role: Role, transport: Transport) => Promise<void>,
  roles: readonly Role[] = ROLES,
  transports: readonly Transport[] = TRANSPORTS,
): void {
  for (const transport of transports) {
    for (const role of roles) {
      const title = typeof name === "string" ? name : name(role, transport);
      test(testName(role, transport, title), () => fn(role, transport));
    }
  }
}
