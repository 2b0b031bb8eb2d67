// Pings sent and not yet answered (RFC 6455 §5.5.2, §5.5.3): the one rule
// for which pings a pong settles, shared by every kind of endpoint (the
// codec's connection and the bridges to the runtimes' native sockets).

import { type Deferred, deferred } from "./_deferred.ts";

interface Sent {
  key: string;
  settle: Deferred<void>;
}

/** The pings an endpoint has sent, oldest first, each waiting for its pong. */
export class Pings {
  // Made with the first ping: most connections never send one.
  #sent: Sent[] | null = null;

  /** A ping with `payload` is going out; the promise settles with its pong. */
  add(payload: Uint8Array): Promise<void> {
    const settle = deferred<void>();
    (this.#sent ??= []).push({ key: payload.join(), settle });
    return settle.promise;
  }

  /**
   * A pong arrived. §5.5.3: "If an endpoint receives a Ping frame and has
   * not yet sent Pong frame(s) in response to previous Ping frame(s), the
   * endpoint MAY elect to send a Pong frame for only the most recently
   * processed Ping frame." So a pong answers its ping and every ping sent
   * before it; of pings with the same data, the latest. A pong that
   * answers none (unsolicited, §5.5.3) settles nothing.
   */
  pong(payload: Uint8Array): void {
    const sent = this.#sent;
    if (sent === null) return;
    const key = payload.join();
    const at = sent.findLastIndex((ping) => ping.key === key);
    if (at < 0) return;
    for (const ping of sent.splice(0, at + 1)) ping.settle.resolve();
  }

  /** Rejects every ping still waiting: the connection is closing. */
  rejectAll(reason: unknown): void {
    const sent = this.#sent;
    if (sent === null || sent.length === 0) return;
    this.#sent = [];
    for (const ping of sent) ping.settle.reject(reason);
  }
}
