import type { Clock } from '../time/clock.ts'
import type { PullOutcome, SyncEngine } from './engine.ts'
import type { Feeds } from './feed.ts'

export interface PullRequest {
  since: number
  limit: number
  collections?: string[]
  epoch?: string
  /** Seconds to wait for a commit when the page is empty (long-poll); 0: answer at once. */
  wait: number
}

const isEmpty = (page: PullOutcome) => 'items' in page && page.items.length === 0

/** REST pulls (`GET /v1/sync/pull`): one page of the stream, or, asked to wait, the first page a commit fills. */
export class Puller {
  constructor(private readonly deps: { engine: SyncEngine; feeds: Feeds; clock: Clock }) {}

  async pull(userId: string, q: PullRequest, signal?: AbortSignal): Promise<PullOutcome> {
    const read = () => this.deps.engine.pull(userId, q)
    const page = await read()
    if (q.wait <= 0 || !isEmpty(page)) return page
    return this.longPoll(userId, { since: q.since, waitMs: q.wait * 1000 }, read, signal)
  }

  /**
   * Waits for a commit past `since`, then reads again. The waiter attaches to the user's feed
   * before re-reading, so a commit between the first read and the attach is not missed.
   */
  private async longPoll(userId: string, { since, waitMs }: { since: number; waitMs: number }, read: () => Promise<PullOutcome>, signal?: AbortSignal): Promise<PullOutcome> {
    let wake!: () => void
    const woken = new Promise<void>((resolve) => (wake = resolve))
    const detach = this.deps.feeds.attach(userId, { onBatch: (b) => b.to > since && wake() })
    const timer = this.deps.clock.after(waitMs, wake)
    signal?.addEventListener('abort', wake, { once: true })
    try {
      await this.deps.feeds.ready()
      const again = await read()
      if (!isEmpty(again)) return again
      await woken
      return await read()
    } finally {
      timer.cancel()
      detach()
    }
  }
}
