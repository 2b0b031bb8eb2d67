// What the load generators share: a WebSocket client connection over raw
// node:net (the opening handshake, then the socket), masked frames built
// once, and reading a server frame's header. No WebSocket library.

import { Buffer } from "node:buffer";
import { randomFillSync } from "node:crypto";
import net from "node:net";
import process from "node:process";

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";

// Where sockets opened with `onRead` read into: one buffer for all, since
// each read is handed on and parsed before the next.
const READ_BUFFER = Buffer.alloc(256 * 1024);

/**
 * Opens a WebSocket connection: resolves with the socket once the server's
 * 101 has arrived, and whatever bytes came after it. With `onRead`, the
 * socket reads into a buffer shared by all such sockets, not a new one per
 * read, and hands every read after the handshake to `onRead`, valid only
 * during the call (a generator reading gigabytes per second then spends
 * less of its core on its own garbage); without it, attach a "data"
 * listener.
 */
export function openRaw(
  host: string,
  port: number,
  path = "/",
  onRead?: (bytes: Uint8Array) => void,
): Promise<{ socket: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let response = Buffer.alloc(0);
    let handle = (chunk: Uint8Array) => {
      response = Buffer.concat([response, chunk]);
      const end = response.indexOf("\r\n\r\n");
      if (end < 0) {
        if (response.length > 8192) reject(new Error("no handshake response"));
        return;
      }
      if (onRead === undefined) socket.off("data", handle);
      else handle = onRead;
      socket.off("error", reject);
      const status = response.subarray(0, response.indexOf("\r\n")).toString();
      if (!/^HTTP\/1\.1 101 /.test(status)) {
        socket.destroy();
        reject(new Error(`handshake refused: ${status}`));
        return;
      }
      resolve({ socket, rest: response.subarray(end + 4) });
    };
    const socket = net.connect({
      host,
      port,
      onread: onRead === undefined ? undefined : {
        buffer: READ_BUFFER,
        callback: (size: number, buffer: Uint8Array) => {
          handle(buffer.subarray(0, size));
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    if (onRead === undefined) socket.on("data", handle);
    socket.on("error", reject);
    socket.once("connect", () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\n` +
          "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
          `Sec-WebSocket-Key: ${KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  });
}

/** The size of a masked binary frame's header for a payload of `size`. */
export function maskedHeaderSize(size: number): number {
  return 2 + (size < 126 ? 0 : size < 0x10000 ? 2 : 8) + 4;
}

/** The masking key every frame of `maskedFrame` uses. */
export const MASK_KEY: readonly number[] = [0x37, 0xfa, 0x21, 0x3d];

/** A final, masked binary frame of `size` random bytes. */
export function maskedFrame(size: number): Buffer {
  const header = maskedHeaderSize(size);
  const frame = Buffer.alloc(header + size);
  frame[0] = 0x82; // FIN, binary
  if (size < 126) frame[1] = 0x80 | size;
  else if (size < 0x10000) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(size, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(0, 2);
    frame.writeUInt32BE(size, 6);
  }
  frame.set(MASK_KEY, header - 4);
  const payload = frame.subarray(header);
  randomFillSync(payload);
  for (let i = 0; i < size; i++) payload[i] ^= MASK_KEY[i & 3];
  return frame;
}

/** A frame header's size, from its second byte. */
export function headerSize(b1: number): number {
  const length7 = b1 & 0x7f;
  return 2 + (length7 === 126 ? 2 : length7 === 127 ? 8 : 0) +
    (b1 & 0x80 ? 4 : 0);
}

/** The payload length in the header at `bytes[at]`. */
export function lengthAt(bytes: Uint8Array, at: number): number {
  const length7 = bytes[at + 1] & 0x7f;
  if (length7 < 126) return length7;
  if (length7 === 126) return (bytes[at + 2] << 8) | bytes[at + 3];
  const word = (i: number) =>
    ((bytes[i] << 24) | (bytes[i + 1] << 16) | (bytes[i + 2] << 8) |
      bytes[i + 3]) >>> 0;
  return word(at + 2) * 0x100000000 + word(at + 6);
}

/**
 * A load generator's run: its sockets, the errors it saw, and its one line
 * of output, then exit, whatever happens, within `deadlineMs`.
 */
export class GeneratorRun {
  readonly sockets: net.Socket[] = [];
  errors = 0;
  firstError = "";
  #finished = false;

  constructor(deadlineMs: number) {
    setTimeout(
      () => this.finish({ error: "the load generator timed out" }),
      deadlineMs,
    );
  }

  /** Counts an error; the first is reported. */
  fail(what: string): void {
    this.errors++;
    if (this.firstError === "") this.firstError = what;
  }

  /** Destroys every socket, prints `result` and the errors, and exits. */
  finish(result: Record<string, unknown>): void {
    if (this.#finished) return;
    this.#finished = true;
    for (const socket of this.sockets) socket.destroy();
    const line = {
      ...result,
      errors: this.errors,
      firstError: this.firstError,
    };
    process.stdout.write(`${JSON.stringify(line)}\n`, () => process.exit(0));
  }
}
