// What every host of a protocol (`_protocol.ts`) does alike: the promises
// of the application's pings, and the connection's one timer. The codec's
// connection (`_session.ts`) and the bridges to the runtimes' native
// sockets (`adapters/_native.ts`) extend it.

import { type Deferred, deferred } from "./_deferred.ts";
import { Alarm, type AlarmTarget } from "./_alarm.ts";
import type { Protocol, ProtocolHost } from "./_protocol.ts";

/** The protocol, the pings waiting for pongs, and the timer of one connection. */
export abstract class ProtocolHostBase
  implements
    AlarmTarget,
    Pick<ProtocolHost, "pingsAnswered" | "pingsFailed" | "setDeadline"> {
  // Made once the connection is open.
  #core: Protocol | null = null;
  // The application's pings, oldest first (made with the first: most
  // connections never send one), and the timer (made with the first
  // deadline: none without heartbeat or idle timeout until it closes).
  #pings: Deferred<void>[] | null = null;
  #alarm: Alarm | null = null;

  /**
   * Sends the application's ping; resolves with its pong.
   *
   * @throws {RangeError} if the payload is more than 125 bytes.
   * @throws {TypeError} if the connection is closing.
   */
  protected applicationPing(
    data: Uint8Array | string | undefined,
  ): Promise<void> {
    // Waiting before the ping goes: sending may end the connection, and
    // fail it, at once.
    const pong = deferred<void>();
    const pings = this.#pings ??= [];
    pings.push(pong);
    try {
      this.core!.ping(data);
    } catch (error) {
      pings.pop();
      throw error;
    }
    return pong.promise;
  }

  /** The connection's protocol (not enumerable: bridges are handed out). */
  protected get core(): Protocol | null {
    return this.#core;
  }

  protected set core(core: Protocol) {
    this.#core = core;
  }

  pingsAnswered(count: number): void {
    for (const ping of this.#pings?.splice(0, count) ?? []) ping.resolve();
  }

  pingsFailed(reason: unknown): void {
    const pings = this.#pings;
    if (pings === null || pings.length === 0) return;
    this.#pings = [];
    for (const ping of pings) ping.reject(reason);
  }

  setDeadline(at: number): void {
    if (this.#alarm === null && at === Infinity) return;
    (this.#alarm ??= new Alarm(this)).set(at);
  }

  /** The alarm went off. */
  tick(now: number): void {
    this.core!.tick(now);
  }
}
