// The application's pings waiting for their pongs, as promises: the host
// side of the protocol's ping bookkeeping (`_protocol.ts` decides which
// pings a pong answers; this settles them).

import { type Deferred, deferred } from "./_deferred.ts";

/** Promises for pings sent, oldest first. */
export class PendingPings {
  // Made with the first ping: most connections never send one.
  #waiting: Deferred<void>[] | null = null;

  /** A ping went out: the promise settles when its pong comes. */
  add(): Promise<void> {
    const settle = deferred<void>();
    (this.#waiting ??= []).push(settle);
    return settle.promise;
  }

  /** The ping just added did not go out after all. */
  withdraw(): void {
    this.#waiting!.pop();
  }

  /** The oldest `count` pings have their pongs. */
  answered(count: number): void {
    for (const ping of this.#waiting?.splice(0, count) ?? []) ping.resolve();
  }

  /** Every ping still waiting fails with `reason`. */
  failed(reason: unknown): void {
    const waiting = this.#waiting;
    if (waiting === null || waiting.length === 0) return;
    this.#waiting = [];
    for (const ping of waiting) ping.reject(reason);
  }
}
