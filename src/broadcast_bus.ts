/**
 * Broadcasts past one process: what a {@linkcode Broadcast} needs of a
 * messaging engine (Redis pub/sub, NATS, a message queue) so that a message
 * sent on one instance reaches the members on every other, and the envelope
 * it publishes.
 *
 * @module
 */

/**
 * A messaging engine, as a broadcast uses it: publish a message to a topic,
 * and hear every message published to it. Structural: wrap your own client
 * (the README shows one for Redis); nothing here imports one.
 */
export interface BroadcastBus {
  /**
   * Publishes one message to `topic`, for every instance subscribed to it.
   * A returned promise that rejects is reported to `onBusError`.
   */
  publish(topic: string, message: Uint8Array): unknown;
  /**
   * Calls `listener` with each message published to `topic`, from any
   * instance (this one's own may come back or not: they are recognized and
   * skipped). Returns, or resolves with, a function that stops it.
   */
  subscribe(
    topic: string,
    listener: (message: Uint8Array) => void,
  ): (() => unknown) | Promise<() => unknown>;
}

// An envelope: a kind byte (1 text, 2 binary: the opcodes), the sending
// instance's 16-byte id, then the message's bytes (a text's UTF-8).
const HEAD = 17;
const TEXT = 1;
const BINARY = 2;

/** A random id for one instance's broadcast. */
export function instanceId(): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(HEAD - 1));
}

/** The envelope of one message (a text's UTF-8, or bytes) from `origin`. */
export function seal(
  origin: Uint8Array,
  text: boolean,
  bytes: Uint8Array,
): Uint8Array {
  const envelope = new Uint8Array(HEAD + bytes.length);
  envelope[0] = text ? TEXT : BINARY;
  envelope.set(origin, 1);
  envelope.set(bytes, HEAD);
  return envelope;
}

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The message in an envelope, or null if `origin` sent it.
 *
 * @throws {TypeError} for what is not an envelope, or a text that is not
 * UTF-8.
 */
export function open(
  origin: Uint8Array,
  envelope: Uint8Array,
): string | Uint8Array | null {
  const kind = envelope[0];
  if (envelope.length < HEAD || (kind !== TEXT && kind !== BINARY)) {
    throw new TypeError("Cannot read a broadcast from the bus: not ours");
  }
  let own = true;
  for (let i = 0; i < origin.length && own; i++) {
    own = envelope[1 + i] === origin[i];
  }
  if (own) return null;
  const bytes = envelope.subarray(HEAD);
  if (kind === BINARY) return bytes.slice();
  try {
    return utf8.decode(bytes);
  } catch {
    throw new TypeError(
      "Cannot read a broadcast from the bus: its text is not UTF-8",
    );
  }
}
