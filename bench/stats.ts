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

/** Width of the windows a step's timeline is cut into, ms. */
export const WINDOW_MS = 100

/** A window of a step's measured time and the slowest push→ack scheduled in it. */
export interface SlowWindow {
  /** Seconds from the start of the measured window. */
  atSec: number
  maxAckMs: number
}

/**
 * The slowest push→ack per window of the measured time, indexed by window. Pushes are placed by
 * their scheduled time; windows whose pushes all belong to other threads (or none was acked) stay 0.
 */
export function ackMaxByWindow(scheduledAt: Float64Array, ackedAt: Float64Array, measureFrom: number, measureUntil: number, windowMs = WINDOW_MS): Float64Array {
  const out = new Float64Array(Math.max(0, Math.ceil((measureUntil - measureFrom) / windowMs)))
  for (let i = 0; i < scheduledAt.length; i++) {
    const s = scheduledAt[i]!
    if (s < measureFrom || s >= measureUntil || ackedAt[i] === 0) continue
    const w = Math.floor((s - measureFrom) / windowMs)
    out[w] = Math.max(out[w]!, ackedAt[i]! - s)
  }
  return out
}

/**
 * The `count` windows with the slowest acks, slowest first, from every thread's timeline. A
 * stall shows as one or two windows far above the rest; saturation as many windows alike.
 */
export function slowestWindows(parts: Float64Array[], count: number, windowMs = WINDOW_MS): SlowWindow[] {
  const merged = new Float64Array(Math.max(0, ...parts.map((p) => p.length)))
  for (const p of parts) for (let i = 0; i < p.length; i++) merged[i] = Math.max(merged[i]!, p[i]!)
  return [...merged]
    .map((maxAckMs, i) => ({ atSec: (i * windowMs) / 1000, maxAckMs }))
    .filter((w) => w.maxAckMs > 0)
    .sort((a, b) => b.maxAckMs - a.maxAckMs)
    .slice(0, count)
}
