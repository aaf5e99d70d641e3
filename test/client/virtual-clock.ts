import type { Clock } from '../../src/client/clock.ts'

/**
 * A clock that moves only when the test says: timers run in time order as it advances, with the
 * microtasks they start run to the end before the next timer. No test waits on the wall clock.
 */
export class VirtualClock implements Clock {
  private time = 1_700_000_000_000
  private seq = 0
  private readonly tasks = new Map<number, { at: number; fn: () => void }>()

  now(): number {
    return this.time
  }

  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq
    this.tasks.set(id, { at: this.time + Math.max(0, ms), fn })
    return id
  }

  clearTimeout(handle: unknown): void {
    this.tasks.delete(handle as number)
  }

  /** Runs every timer due within `ms`, in order, letting promises settle after each. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms
    await settle()
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined
      for (const entry of this.tasks) if (entry[1].at <= end && (!next || entry[1].at < next[1].at || (entry[1].at === next[1].at && entry[0] < next[0]))) next = entry
      if (!next) break
      this.tasks.delete(next[0])
      this.time = Math.max(this.time, next[1].at)
      next[1].fn()
      await settle()
    }
    this.time = end
  }

  get pending(): number {
    return this.tasks.size
  }
}

/** Lets every pending promise chain run (a macrotask turn, twice: chains that start chains). */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r))
}

/** A seeded PRNG (mulberry32): the same seed gives the same jitter. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
