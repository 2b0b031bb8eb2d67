// A small timing harness shared by the benchmarks: rounds of back-to-back,
// time-bounded slices, one per variant; the median of each variant's rates
// and of their per-round ratios; and a table printer. Only performance.now(); no runtime-specific APIs.

/** One thing to time. */
export interface Variant {
  /** Column name. */
  name: string;
  /** Runs one batch of work; the batch is timed as a whole. */
  run: () => void | Promise<void>;
  /**
   * Runs untimed after every batch: restore inputs that the batch consumed
   * or mutated, and check what it produced.
   */
  after?: () => void;
}

/** How long to measure. */
export interface TimingOptions {
  /** Warm-up per variant, in ms, not counted. */
  warmupMs: number;
  /** Number of rounds; the median counts. */
  rounds: number;
  /** Measured time per variant per round, in ms. */
  roundMs: number;
}

/** --quick's timing, or the full one. */
export function timingFor(quick: boolean): TimingOptions {
  return quick
    ? { warmupMs: 40, rounds: 3, roundMs: 30 }
    : { warmupMs: 150, rounds: 9, roundMs: 50 };
}

/** What the timing options mean, for a benchmark's header. */
export function describeTiming(options: TimingOptions): string {
  return `Timing: ${options.warmupMs} ms warm-up, then the median of ${options.rounds} rounds of ${options.roundMs} ms per variant (ratios: median of per-round ratios)`;
}

/** The rate of one variant, per round and overall. */
export interface Rate {
  /** Batches per second in each round. */
  rounds: number[];
  /** Median batches per second. */
  perSecond: number;
  /** (max - min) / 2 / median over the rounds: a noise indicator. */
  spread: number;
}

/** The median of `values`. */
export function median(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? sorted[middle]
    : (sorted[middle - 1] + sorted[middle]) / 2;
}

// Runs one variant's batches until they have taken `ms`; returns batches
// per second. A variant runs alone for its whole slice, so the garbage it
// makes is mostly collected on its own time, not another variant's.
async function slice(variant: Variant, ms: number): Promise<number> {
  let elapsed = 0;
  let batches = 0;
  while (elapsed < ms) {
    const start = performance.now();
    const pending = variant.run();
    if (pending !== undefined) await pending;
    elapsed += performance.now() - start;
    batches++;
    variant.after?.();
  }
  return (batches / elapsed) * 1000;
}

/**
 * Measures every variant: a warm-up, then `rounds` rounds in which each
 * variant runs for `roundMs`. Returns batches per second for each.
 */
export async function measure(
  variants: Variant[],
  options: TimingOptions,
): Promise<Rate[]> {
  for (const variant of variants) await slice(variant, options.warmupMs);
  const samples: number[][] = variants.map(() => []);
  for (let r = 0; r < options.rounds; r++) {
    // Each round starts with a different variant, so none is always the one
    // that inherits the previous one's garbage or cache state.
    for (let i = 0; i < variants.length; i++) {
      const index = (i + r) % variants.length;
      samples[index].push(await slice(variants[index], options.roundMs));
    }
  }
  return samples.map((rounds) => {
    const middle = median(rounds);
    return {
      rounds,
      perSecond: middle,
      spread: (Math.max(...rounds) - Math.min(...rounds)) / 2 / middle,
    };
  });
}

/**
 * How much faster `a` is than `b`: the median of their per-round ratios. The
 * slices of one round run back to back, so a disturbance that lasts longer
 * than a round (another process) weighs on both sides of a ratio alike.
 */
export function speedup(a: Rate, b: Rate): number {
  return median(a.rounds.map((rate, i) => rate / b.rounds[i]));
}

/** 12345678 → "12.3M". */
export function si(value: number): string {
  const units: [number, string][] = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [scale, unit] of units) {
    if (value >= scale) return `${digits(value / scale)}${unit}`;
  }
  return digits(value);
}

function digits(value: number): string {
  return value >= 100
    ? value.toFixed(0)
    : value >= 10
    ? value.toFixed(1)
    : value.toFixed(2);
}

/** A payload size in bytes: 16 → "16 B", 65536 → "64 KiB". */
export function bytes(size: number): string {
  if (size >= 1 << 20 && size % (1 << 20) === 0) return `${size >> 20} MiB`;
  if (size >= 1 << 10 && size % (1 << 10) === 0) return `${size >> 10} KiB`;
  return `${size} B`;
}

/** A ratio, "1.23x". */
export function ratio(value: number): string {
  return `${value.toFixed(2)}x`;
}

/** Prints rows as a table: the first column left-aligned, the rest right. */
export function table(header: string[], rows: string[][]): void {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => row[column].length))
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, column) =>
        column === 0
          ? cell.padEnd(widths[column])
          : cell.padStart(widths[column])
      )
      .join(" | ");
  console.log(line(header));
  console.log(widths.map((width) => "-".repeat(width)).join("-|-"));
  for (const row of rows) console.log(line(row));
}

/** A latency in ms: "850 µs", "1.23 ms", or "n/a". */
export function latency(ms: number): string {
  if (!Number.isFinite(ms)) return "n/a";
  return ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`;
}

/** What a load generator's run reports about whether it worked. */
export interface GeneratorResult {
  perSecond: number;
  errors: number;
  firstError: string;
  error?: string;
}

/** Why a run failed (`nothing` if nothing was counted), or null. */
export function failed(
  result: GeneratorResult,
  nothing: string,
): string | null {
  if (result.error) return result.error;
  if (result.errors > 0) return `${result.errors} errors: ${result.firstError}`;
  if (!(result.perSecond > 0)) return nothing;
  return null;
}

/** A run's rate, "1.23M/s", or "FAILED". */
export function rate(result: GeneratorResult): string {
  return failed(result, "") === null ? `${si(result.perSecond)}/s` : "FAILED";
}
