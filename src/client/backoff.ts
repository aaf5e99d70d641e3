/** Exponential backoff with full jitter (a random delay in [0, min(cap, base·2^attempt))). */
export interface BackoffOptions {
  /** The first attempt's ceiling (ms). */
  baseMs: number
  /** The largest ceiling (ms). */
  maxMs: number
}

export class Backoff {
  private attempt = 0
  constructor(
    private readonly opts: BackoffOptions,
    private readonly random: () => number,
  ) {}

  /** The delay before the next attempt; each call doubles the ceiling up to the cap. */
  next(): number {
    const ceiling = Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** Math.min(this.attempt, 30))
    this.attempt++
    return Math.floor(this.random() * ceiling)
  }

  /** The ceiling the next call would draw under (ms). */
  get ceiling(): number {
    return Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** Math.min(this.attempt, 30))
  }

  reset(): void {
    this.attempt = 0
  }

  get attempts(): number {
    return this.attempt
  }
}
