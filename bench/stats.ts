/**
 * Exact percentiles over every sample of a step. A step holds at most a few hundred thousand
 * samples, so sorting them is cheaper and simpler than a histogram and has no bucket error.
 */
export interface Summary {
  count: number
  min: number
  mean: number
  p50: number
  p90: number
  p99: number
  p999: number
  max: number
}

/** A growable Float64Array: no per-sample allocation on the hot path. */
export class Samples {
  private buf: Float64Array
  private n = 0

  constructor(initialCapacity = 1024) {
    this.buf = new Float64Array(Math.max(16, initialCapacity))
  }

  add(value: number): void {
    if (this.n === this.buf.length) {
      const next = new Float64Array(this.buf.length * 2)
      next.set(this.buf)
      this.buf = next
    }
    this.buf[this.n++] = value
  }

  get count(): number {
    return this.n
  }

  /** A copy of the samples (to send to another thread). */
  values(): Float64Array {
    return this.buf.slice(0, this.n)
  }

  summarize(): Summary {
    return summarize(this.buf.subarray(0, this.n))
  }
}

/** Nearest-rank percentile of an ascending array (q in 0..1). */
export function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil(q * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/** Summary of several sample sets together (one per generator thread). */
export function summarizeAll(parts: Float64Array[]): Summary {
  const all = new Float64Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) (all.set(p, at), (at += p.length))
  return summarize(all)
}

export function summarize(values: Float64Array): Summary {
  const sorted = Float64Array.from(values).sort()
  let sum = 0
  for (let i = 0; i < sorted.length; i++) sum += sorted[i]!
  return {
    count: sorted.length,
    min: sorted.length ? sorted[0]! : NaN,
    mean: sorted.length ? sum / sorted.length : NaN,
    p50: percentile(sorted, 0.5),
    p90: percentile(sorted, 0.9),
    p99: percentile(sorted, 0.99),
    p999: percentile(sorted, 0.999),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
  }
}
