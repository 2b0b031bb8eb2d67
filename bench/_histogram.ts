// Latencies in a log-linear histogram, as the load generators record them:
// exact to 1/16 µs below 64 µs, then 512 sub-buckets per power of two
// (0.2% resolution), in fixed memory however many are added.

const LINEAR = 1024;
const SUB_BITS = 9;

function bucketOf(ms: number): number {
  const x = Math.min(0x7fffffff, Math.max(0, Math.round(ms * 16000)));
  if (x < LINEAR) return x;
  const exponent = 31 - Math.clz32(x);
  const sub = (x >>> (exponent - SUB_BITS)) & ((1 << SUB_BITS) - 1);
  return LINEAR + (exponent - 10) * (1 << SUB_BITS) + sub;
}

function valueOf(bucket: number): number {
  if (bucket < LINEAR) return bucket / 16000;
  const exponent = ((bucket - LINEAR) >> SUB_BITS) + 10;
  const sub = (bucket - LINEAR) & ((1 << SUB_BITS) - 1);
  const x = ((1 << SUB_BITS) + sub) * 2 ** (exponent - SUB_BITS);
  return x / 16000;
}

export class Histogram {
  readonly #counts = new Float64Array(LINEAR + 32 * (1 << SUB_BITS));
  count = 0;

  /** Records one latency, in ms. */
  add(ms: number): void {
    this.#counts[bucketOf(ms)]++;
    this.count++;
  }

  /** The latency below which a fraction `p` of those recorded fall, in ms. */
  percentile(p: number): number {
    const rank = Math.ceil(this.count * p);
    let seen = 0;
    for (let i = 0; i < this.#counts.length; i++) {
      seen += this.#counts[i];
      if (seen >= rank && this.#counts[i] > 0) return valueOf(i);
    }
    return NaN;
  }
}
