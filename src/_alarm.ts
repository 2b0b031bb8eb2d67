// The timers of the connections: each wakes its protocol (`_protocol.ts`) at
// its next deadline, whichever it is (heartbeat, idle, close, failure). All
// share one runtime timer, armed for the earliest deadline: a server that
// holds 100,000 connections keeps one timer and a heap of deadlines, not
// 100,000 timers, and a heartbeat makes no timer garbage.

/** The clock deadlines are measured on, in milliseconds. */
export function now(): number {
  return performance.now();
}

/** What an alarm wakes. */
export interface AlarmTarget {
  /** A deadline set on the alarm has come; `now` is the time. */
  tick(now: number): void;
}

/** One connection's deadline, in the heap that all alarms share. */
export class Alarm {
  // The alarms with a deadline, earliest first (a binary heap).
  static readonly #heap: Alarm[] = [];
  // The runtime's timer, and when it goes off (Infinity: not armed).
  static #timer: ReturnType<typeof setTimeout> | undefined;
  static #timerAt = Infinity;
  // Between the timer going off and the ticks: see #fired().
  static #waking = false;

  readonly #target: AlarmTarget;
  #at = Infinity;
  // Where it is in the heap; -1: not in it.
  #index = -1;

  constructor(target: AlarmTarget) {
    this.#target = target;
  }

  /** Wake the target at `at` (on `now()`'s clock) instead; Infinity: never. */
  set(at: number): void {
    if (at === this.#at) return;
    const earlier = at < this.#at;
    this.#at = at;
    if (at === Infinity) Alarm.#remove(this);
    else if (this.#index < 0) Alarm.#insert(this);
    else if (earlier) Alarm.#up(this.#index);
    else Alarm.#down(this.#index);
    Alarm.#arm();
  }

  // Arms the runtime's timer for the earliest deadline. A timer armed for
  // an earlier time is left: it goes off early, and is armed again then.
  static #arm(): void {
    const first = Alarm.#heap[0];
    const at = first === undefined ? Infinity : first.#at;
    if (Alarm.#waking) {
      if (at !== Infinity) return;
      Alarm.#waking = false;
    }
    if (at >= Alarm.#timerAt && at !== Infinity) return;
    clearTimeout(Alarm.#timer);
    Alarm.#timer = undefined;
    Alarm.#timerAt = at;
    if (at !== Infinity) {
      Alarm.#timer = setTimeout(
        Alarm.#fired,
        Math.max(0, Math.ceil(at - now())),
      );
    }
  }

  // A deadline's verdict (no pong, no activity, no Close) waits for the
  // input already waiting to be read: after the event loop stalled past a
  // deadline, timers run before that input is read, and the answer may be
  // in it. Two more turns of the loop: Node and Deno read the input before
  // one zero-delay timer; Bun, after a stall, not always.
  static #fired(): void {
    Alarm.#timerAt = Infinity;
    Alarm.#waking = true;
    Alarm.#timer = setTimeout(() => {
      Alarm.#timer = setTimeout(Alarm.#wake, 0);
    }, 0);
  }

  static #wake(): void {
    Alarm.#timer = undefined;
    Alarm.#waking = false;
    const time = now();
    const heap = Alarm.#heap;
    const due: Alarm[] = [];
    while (heap.length > 0 && heap[0].#at <= time) {
      const alarm = heap[0];
      Alarm.#remove(alarm);
      due.push(alarm);
    }
    for (const alarm of due) {
      // Moved, or cleared, by an earlier tick.
      if (alarm.#index >= 0 || alarm.#at > time) continue;
      try {
        alarm.#target.tick(time);
      } catch (error) {
        // One connection's failure is not every other's: reported as
        // thrown, after the others have had their turn.
        queueMicrotask(() => {
          throw error;
        });
      }
      // A target that did not move its deadline is woken again.
      if (alarm.#index < 0 && alarm.#at !== Infinity) Alarm.#insert(alarm);
    }
    Alarm.#arm();
  }

  static #insert(alarm: Alarm): void {
    const heap = Alarm.#heap;
    alarm.#index = heap.length;
    heap.push(alarm);
    Alarm.#up(alarm.#index);
  }

  static #remove(alarm: Alarm): void {
    const at = alarm.#index;
    if (at < 0) return;
    alarm.#index = -1;
    const heap = Alarm.#heap;
    const last = heap.pop()!;
    if (last === alarm) return;
    heap[at] = last;
    last.#index = at;
    Alarm.#up(at);
    Alarm.#down(last.#index);
  }

  static #up(index: number): void {
    const heap = Alarm.#heap;
    const alarm = heap[index];
    while (index > 0) {
      const parentIndex = (index - 1) >> 1;
      const parent = heap[parentIndex];
      if (parent.#at <= alarm.#at) break;
      heap[index] = parent;
      parent.#index = index;
      index = parentIndex;
    }
    heap[index] = alarm;
    alarm.#index = index;
  }

  static #down(index: number): void {
    const heap = Alarm.#heap;
    const alarm = heap[index];
    const half = heap.length >> 1;
    while (index < half) {
      let child = 2 * index + 1;
      const right = child + 1;
      if (right < heap.length && heap[right].#at < heap[child].#at) {
        child = right;
      }
      if (heap[child].#at >= alarm.#at) break;
      heap[index] = heap[child];
      heap[index].#index = index;
      index = child;
    }
    heap[index] = alarm;
    alarm.#index = index;
  }
}
