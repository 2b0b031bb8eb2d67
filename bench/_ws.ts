// The `ws` package's own parser (Receiver), framer (Sender) and server, loaded by
// file path so that every runtime gets the real ws: under Bun, `import "ws"`
// resolves to Bun's built-in shim instead. Also reports whether ws masks
// with the native `bufferutil` addon, as it does in production.

import { createRequire } from "node:module";
import process from "node:process";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const modulePath = (path: string) =>
  fileURLToPath(new URL(`../node_modules/${path}`, import.meta.url));

/** The slice of ws's `Receiver` (a `Writable`) the benchmark uses. */
export interface WsReceiver {
  _write(
    chunk: Uint8Array,
    encoding: string | null,
    callback: (error?: Error | null) => void,
  ): void;
  on(
    event: "message",
    listener: (data: Uint8Array, isBinary: boolean) => void,
  ): unknown;
}

/** Options of ws's `Receiver` constructor. */
export interface WsReceiverOptions {
  isServer: boolean;
  /** 0 means unlimited. */
  maxPayload: number;
  binaryType?: "nodebuffer" | "arraybuffer" | "fragments";
  allowSynchronousEvents?: boolean;
  skipUTF8Validation?: boolean;
}

/** Options of ws's static `Sender.frame()`. */
export interface WsFrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  /** Whether `data` must be left alone: masked data is then copied. */
  readOnly: boolean;
  maskBuffer?: Uint8Array;
  generateMask?: (mask: Uint8Array) => void;
}

/** ws's `Sender` class, of which only the static framer is used. */
export interface WsSender {
  frame(data: Uint8Array, options: WsFrameOptions): Uint8Array[];
}

/** bufferutil's API (native, or its JS fallback). */
export interface BufferUtil {
  mask(
    source: Uint8Array,
    mask: Uint8Array,
    output: Uint8Array,
    offset: number,
    length: number,
  ): void;
  unmask(buffer: Uint8Array, mask: Uint8Array): void;
}

/** ws's Receiver class. */
/** A connection of ws's `WebSocketServer`, as the peer servers use it. */
export interface WsSocket {
  readyState: number;
  on(
    event: "message",
    listener: (data: Uint8Array, isBinary: boolean) => void,
  ): void;
  on(event: "error", listener: (error: Error) => void): void;
  send(data: Uint8Array, options: { binary: boolean }): void;
}

/** ws's `WebSocketServer`, as the peer servers use it. */
export interface WsServer {
  clients: Set<WsSocket>;
  on(event: "connection", listener: (ws: WsSocket) => void): void;
  on(event: "listening", listener: () => void): void;
  address(): { port: number };
}

export const WebSocketServer = require(
  modulePath("ws/lib/websocket-server.js"),
) as new (options: Record<string, unknown>) => WsServer;

export const Receiver = require(modulePath("ws/lib/receiver.js")) as new (
  options: WsReceiverOptions,
) => WsReceiver;

/** ws's Sender class. */
export const Sender = require(modulePath("ws/lib/sender.js")) as WsSender;

const wsVersion =
  (require(modulePath("ws/package.json")) as { version: string }).version;

// ws/lib/buffer-util.js prefers node:http's websocketMask when a runtime has
// one, then `require("bufferutil")` (native if its prebuilt addon loads, else
// bufferutil's JS fallback), unless WS_NO_BUFFER_UTIL is set; with neither,
// it keeps its own JS loops, named _mask and _unmask.
const wsBufferUtil = require(modulePath("ws/lib/buffer-util.js")) as {
  mask: { name: string };
};
const http = require("node:http") as { websocketMask?: unknown };

let addon: BufferUtil | null = null;
let addonError = "";
try {
  // The same module instance ws's `require("bufferutil")` gets.
  const loaded = require(modulePath("bufferutil/index.js")) as BufferUtil;
  const fallback = require(
    modulePath("bufferutil/fallback.js"),
  ) as BufferUtil;
  if (loaded !== fallback) addon = loaded;
  else addonError = "the native addon did not load; bufferutil fell back to JS";
} catch (error) {
  addonError = String(error);
}

/** bufferutil's native addon, or null if it did not load. */
export const bufferutil: BufferUtil | null = addon;

const wsWraps = wsBufferUtil.mask.name !== "_mask";
const viaHttp = typeof http.websocketMask === "function";

/** Whether ws masks and unmasks with native code. */
export const wsNativeMask: boolean = viaHttp || (wsWraps && addon !== null);

/** One line saying what ws masks with, for the benchmark's header. */
export function describeWs(): string {
  const how = viaHttp
    ? "node:http websocketMask (native)"
    : wsWraps && addon !== null
    ? "native bufferutil (for payloads >= 32 B unmask, >= 48 B mask)"
    : wsWraps
    ? "bufferutil's JS fallback (NOT native)"
    : "its own JS loops (bufferutil NOT in use)";
  const env = process.env.WS_NO_BUFFER_UTIL ? "; WS_NO_BUFFER_UTIL is set" : "";
  const why = addon === null ? ` (${addonError})` : "";
  return `ws ${wsVersion}: masks with ${how}${why}${env}`;
}
