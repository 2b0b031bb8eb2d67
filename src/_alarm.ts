// The one timer of a connection: it wakes the protocol (`_protocol.ts`) at
// its next deadline, whichever it is (heartbeat, idle, close, failure).

/** The clock deadlines are measured on, in milliseconds. */
export function now(): number {
  return performance.now();
}

/** A timer for a deadline that moves. */
export class Alarm {
  readonly #target: { tick(now: number): void };
  #timer: ReturnType<typeof setTimeout> | undefined;
  #at = Infinity;
  // Between the timer firing and the tick: see #fired().
  #waking = false;

  /** `target.tick(now)` runs when a deadline set by `set(at)` has come. */
  constructor(target: { tick(now: number): void }) {
    this.#target = target;
  }

  /** Wake at `at` (on `now()`'s clock) instead; Infinity: never. */
  set(at: number): void {
    this.#at = at;
    if (this.#waking) {
      if (at !== Infinity) return;
      this.#waking = false;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (at !== Infinity) this.#arm();
  }

  #arm(): void {
    this.#timer = setTimeout(
      () => this.#fired(),
      Math.max(0, Math.ceil(this.#at - now())),
    );
  }

  // A deadline's verdict (no pong, no activity, no Close) waits for the
  // input already waiting to be read: after the event loop stalled past a
  // deadline, timers run before that input is read, and the answer may be
  // in it. Two more turns of the loop: Node and Deno read the input before
  // one zero-delay timer; Bun, after a stall, not always.
  #fired(): void {
    this.#waking = true;
    this.#timer = setTimeout(() => {
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#waking = false;
        this.#target.tick(now());
        // The deadline was not yet reached (timers round), or has moved:
        // wait for it.
        if (this.#timer === undefined && this.#at !== Infinity) this.#arm();
      }, 0);
    }, 0);
  }
}
