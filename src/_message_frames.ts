// The pieces both message encoders share: a message's type, opcode and
// bytes, and the data frames they go out in.

import { encodeUtf8 } from "./_utf8.ts";
import type { Frame } from "./frame.ts";
import type { MessageType } from "./message.ts";
import { Opcode } from "./opcode.ts";

/**
 * A whole text message as bytes already checked to be UTF-8. A decoder
 * piped directly into a connection's writable (an echo, a relay) hands its
 * unfragmented texts on in this form, so they are neither decoded into a
 * string nor encoded back. The application never sees one.
 */
export class Utf8Text {
  readonly bytes: Uint8Array;
  constructor(bytes: Uint8Array) {
    this.bytes = bytes;
  }
}

/** The bytes of a message's data: strings as UTF-8. */
export function messageBytes(data: string | Uint8Array): Uint8Array {
  return typeof data === "string" ? encodeUtf8(data) : data;
}

/** A data frame with no reserved bits. */
export function dataFrame(
  opcode: Opcode,
  payload: Uint8Array,
  fin: boolean,
): Frame {
  return { fin, rsv1: false, rsv2: false, rsv3: false, opcode, payload };
}

/** The opcode of a message's first frame. */
export function messageOpcode(type: MessageType): Opcode {
  return type === "text" ? Opcode.Text : Opcode.Binary;
}

/** The type of a message, or a TypeError if it is not one. */
export function typeOf(message: unknown): MessageType {
  if (typeof message === "string") return "text";
  if (message instanceof Uint8Array) return "binary";
  throw new TypeError(
    `Cannot send message: expected a string or a Uint8Array, got ${
      message === null ? "null" : typeof message
    }`,
  );
}
