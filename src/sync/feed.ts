import type { Change } from '../../protocol/records.ts'
import type { Bus, ChangeBatch } from '../bus/port.ts'
import type { SyncStore } from '../store/sync-store.ts'
import { rowToChange } from './changes.ts'
import type { RecordCodec } from './record-codec.ts'

const BUS_READY_WAIT_MS = 1000
/** Users whose heads one position-check statement reads. */
const CHECK_CHUNK = 1000

/**
 * A batch as delivered to listeners: in order, with its changes (every change with
 * from < seq ≤ to). Every listener of the user gets the same object, so whoever turns it into
 * frames can do that once for all of them.
 */
export interface LiveBatch {
  user: string
  from: number
  to: number
  changes: Change[]
}

export interface FeedListener {
  onBatch(batch: LiveBatch): void
}

export interface FeedOptions {
  bus: Bus
  store: SyncStore
  /** Opens the secret fields of the changes a gap fill reads. */
  codec: RecordCodec
  /** How long an out-of-order batch waits for the ones before it before the store fills the gap. */
  gapWaitMs?: number
  fillPageSize?: number
  onGapFill?: (cause: 'gap' | 'poke' | 'check') => void
}

/**
 * One per user with listeners on this node. Batches from the bus may arrive late, twice, out
 * of order or not at all (Redis is a hint); the feed hands listeners a gapless, in-order stream
 * and fills every hole from the store.
 */
class UserFeed {
  head: number | undefined
  readonly listeners = new Set<FeedListener>()
  private waiting: ChangeBatch[] = []
  private timer: NodeJS.Timeout | undefined
  private filling = false
  unsubscribe: () => void = () => {}

  constructor(
    readonly user: string,
    private readonly opts: Required<Pick<FeedOptions, 'gapWaitMs' | 'fillPageSize'>> & FeedOptions,
  ) {}

  accept(batch: ChangeBatch): void {
    if (this.head === undefined) this.head = batch.from
    if (batch.to <= this.head) return
    if (batch.from > this.head || !batch.changes) {
      this.waiting.push(batch)
      this.scheduleFill(batch.changes ? this.opts.gapWaitMs : 0)
      return
    }
    this.emit(batch.from < this.head ? trim(batch, this.head) : batch)
    this.deliverWaiting()
  }

  /** True when the store holds changes this feed has not delivered (its head is below `storeHead`). */
  isBehind(storeHead: number | undefined): boolean {
    return this.head !== undefined && storeHead !== undefined && this.head < storeHead
  }

  /** Reads everything after head from the store (position check, poke, gap); later batches then trim. */
  async fill(cause: 'gap' | 'poke' | 'check'): Promise<void> {
    if (this.filling || this.head === undefined) return
    this.filling = true
    try {
      this.opts.onGapFill?.(cause)
      for (;;) {
        const page = await this.opts.store.pull(this.user, { since: this.head, limit: this.opts.fillPageSize })
        if (!page || page.head <= this.head) break
        const more = page.cut && page.rows.length > 0 && page.rows.at(-1)!.seq < page.head
        const to = more ? page.rows.at(-1)!.seq : page.head
        // A live batch may have moved the head while the store was read: never emit a change twice.
        if (to > this.head) {
          const head = this.head
          this.emit({ user: this.user, from: head, to, changes: page.rows.filter((r) => r.seq > head).map((r) => rowToChange(r, this.opts.codec)) })
        }
        if (!more) break
      }
    } finally {
      this.filling = false
    }
    this.deliverWaiting()
    if (this.waiting.length > 0) this.scheduleFill(this.opts.gapWaitMs)
  }

  private deliverWaiting(): void {
    this.waiting.sort((a, b) => a.from - b.from)
    while (this.waiting.length > 0 && this.head !== undefined) {
      const next = this.waiting[0]!
      if (next.to <= this.head) this.waiting.shift()
      else if (next.from <= this.head && next.changes) this.emit(trim(this.waiting.shift()!, this.head))
      else break
    }
    if (this.waiting.length === 0 && this.timer) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
  }

  private scheduleFill(delay: number): void {
    if (this.timer) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      const poke = this.waiting.some((b) => !b.changes)
      void this.fill(poke ? 'poke' : 'gap').catch(() => this.scheduleFill(this.opts.gapWaitMs * 4))
    }, delay)
    this.timer.unref?.()
  }

  private emit(batch: ChangeBatch & { changes?: Change[] }): void {
    this.head = batch.to
    const live: LiveBatch = { user: batch.user, from: batch.from, to: batch.to, changes: batch.changes ?? [] }
    for (const listener of this.listeners) listener.onBatch(live)
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer)
    this.unsubscribe()
  }
}

/** Drops the changes a listener already has (seq ≤ head). */
function trim(batch: ChangeBatch, head: number): ChangeBatch {
  if (batch.from >= head) return batch
  return { ...batch, from: head, changes: batch.changes?.filter((c) => c.seq > head) }
}

/** The node's feeds: one bus subscription per user with listeners here. */
export class Feeds {
  private readonly feeds = new Map<string, UserFeed>()
  private readonly opts: Required<Pick<FeedOptions, 'gapWaitMs' | 'fillPageSize'>> & FeedOptions

  constructor(opts: FeedOptions) {
    this.opts = { gapWaitMs: 50, fillPageSize: 1000, ...opts }
    opts.bus.onResync(() => void this.checkAll('check'))
  }

  /**
   * Resolves once every subscription made so far is live on the bus (read the store after
   * this), or after a second when the bus is down: the database still serves the backlog, and
   * the bus's reconnect makes every feed check the database for what it missed.
   */
  ready(): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    return Promise.race([
      this.opts.bus.ready().finally(() => clearTimeout(timer)),
      new Promise<void>((resolve) => (timer = setTimeout(resolve, BUS_READY_WAIT_MS))),
    ])
  }

  /** Starts delivering the user's batches to `listener`; returns the detach function. */
  attach(user: string, listener: FeedListener): () => void {
    let feed = this.feeds.get(user)
    if (!feed) {
      feed = new UserFeed(user, this.opts)
      const f = feed
      feed.unsubscribe = this.opts.bus.subscribe(user, (batch) => f.accept(batch))
      this.feeds.set(user, feed)
    }
    feed.listeners.add(listener)
    const f = feed
    return () => {
      f.listeners.delete(listener)
      if (f.listeners.size === 0 && this.feeds.get(user) === f) {
        f.close()
        this.feeds.delete(user)
      }
    }
  }

  /** Lets a feed that has not seen a batch yet learn where the stream stands. */
  seed(user: string, head: number): void {
    const feed = this.feeds.get(user)
    if (feed && feed.head === undefined) feed.head = head
  }

  /**
   * Position check: compares every feed with the store and fills what is missing. The heads are
   * read for many users per statement, and only a feed behind its stream reads changes: the check
   * costs a few queries per node, not one per user, and does not crowd out the commits. A commit
   * still on its way to this feed (answered and published a moment after it is stored) looks
   * like a gap, so a feed gets the same wait as an out-of-order batch before the store is read.
   */
  async checkAll(cause: 'check' = 'check'): Promise<void> {
    const feeds = [...this.feeds.values()].filter((f) => f.head !== undefined)
    for (let i = 0; i < feeds.length; i += CHECK_CHUNK) {
      const chunk = feeds.slice(i, i + CHECK_CHUNK)
      let heads: Map<string, number>
      try {
        heads = await this.opts.store.heads(chunk.map((f) => f.user))
      } catch {
        return // the store is unreachable: the next check tries again
      }
      const behind = chunk.filter((f) => f.isBehind(heads.get(f.user)))
      if (behind.length === 0) continue
      await new Promise((resolve) => setTimeout(resolve, this.opts.gapWaitMs))
      const missing = behind.filter((f) => f.isBehind(heads.get(f.user)))
      await Promise.all(missing.map((f) => f.fill(cause).catch(() => {})))
    }
  }

  get users(): number {
    return this.feeds.size
  }

  close(): void {
    for (const feed of this.feeds.values()) feed.close()
    this.feeds.clear()
  }
}
