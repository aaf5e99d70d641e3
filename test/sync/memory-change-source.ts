import { HubError } from '../../protocol/errors.ts'
import type { Change } from '../../protocol/records.ts'
import type { BackfillPage, ChangeSource, PageBounds } from '../../src/sync/change-source.ts'
import { CollectionFilters, type CollectionFilter } from '../../src/sync/collection-filter.ts'
import { CollectionRegistry } from '../../src/sync/collections.ts'
import { resetReason, type PullOutcome } from '../../src/sync/engine.ts'
import type { FeedListener, LiveBatch } from '../../src/sync/feed.ts'

/** One user's stream as the fake keeps it: the latest version of each record (a compacted log). */
interface Stream {
  head: number
  epoch: string
  scope: string[] | null
  records: Map<string, Change>
  listeners: Set<FeedListener>
}

/** A read the fake has been asked for and not answered yet. */
export interface PendingRead {
  what: string
  /** Answers it from the stream as it is now. */
  release(): void
  /** Fails it, as an unreachable store would. */
  fail(): void
}

/**
 * An in-memory ChangeSource for the subscription's tests: the user's stream, the reads of it,
 * and live batches the test hands to followers when it likes (late, twice, never). With
 * `manual` reads, every read waits until the test releases or fails it, so a test decides the
 * order in which the store answers; otherwise reads answer at once. It passes the same
 * contract suite as the engine (test/sync/change-source-contract.ts).
 */
export class MemoryChangeSource implements ChangeSource {
  private readonly filters = new CollectionFilters(new CollectionRegistry())
  readonly pending: PendingRead[] = []
  readonly seeded: Array<{ user: string; head: number }> = []
  private readonly streams = new Map<string, Stream>()
  private epochs = 0

  constructor(private readonly opts: { manual?: boolean } = {}) {}

  // ---- what a test does to the stream ----------------------------------------------------------

  addUser(user: string): void {
    this.streams.set(user, { head: 0, epoch: this.nextEpoch(), scope: null, records: new Map(), listeners: new Set() })
  }

  /** Commits new versions of records in one batch; returns the batch (not delivered: see `deliver`). */
  commit(user: string, puts: Array<{ collection: string; id: string }>): LiveBatch {
    const s = this.stream(user)
    const from = s.head
    const changes = puts.map((p): Change => {
      const seq = ++s.head
      const prior = s.records.get(`${p.collection}/${p.id}`)
      const change = { seq, rev: seq, collection: p.collection, id: p.id, data: { v: seq }, created_at: prior?.created_at ?? seq, updated_at: seq }
      s.records.delete(`${p.collection}/${p.id}`) // keeps the map in seq order
      s.records.set(`${p.collection}/${p.id}`, change)
      return change
    })
    return { user, from, to: s.head, changes }
  }

  /** Hands a batch to the user's followers (the same object to each, as the node's feed does). */
  deliver(batch: LiveBatch): void {
    for (const listener of [...this.stream(batch.user).listeners]) listener.onBatch(batch)
  }

  setScope(user: string, scope: string[] | null): void {
    this.stream(user).scope = scope
  }

  /** The user's history is replaced by the same records under a new epoch (an overwrite import). */
  newEpoch(user: string): string {
    return (this.stream(user).epoch = this.nextEpoch())
  }

  /** The user's scope as stored now (what a REST `GET /v1/sync/scope` would answer). */
  scopeNow(user: string): string[] | null {
    return this.stream(user).scope
  }

  /** What a feed's position check hands its followers: every record's latest change after `from`. */
  fillBatch(user: string, from: number): LiveBatch {
    const s = this.stream(user)
    return { user, from, to: s.head, changes: [...s.records.values()].filter((c) => c.seq > from) }
  }

  head(user: string): number {
    return this.stream(user).head
  }

  epoch(user: string): string {
    return this.stream(user).epoch
  }

  /** The latest version of every record, in seq order. */
  records(user: string): Change[] {
    return [...this.stream(user).records.values()]
  }

  followers(user: string): number {
    return this.stream(user).listeners.size
  }

  // ---- the port ---------------------------------------------------------------------------------

  scopeOf(user: string): Promise<string[] | null> {
    return this.read(`scope of ${user}`, () => {
      const s = this.streams.get(user)
      if (!s) throw new HubError('unauthorized', 'unknown user')
      return s.scope
    })
  }

  filterFor(scope: readonly string[] | null, requested?: readonly string[]): CollectionFilter {
    return this.filters.of(scope, requested)
  }

  readPage(user: string, since: number, filter: CollectionFilter, bounds: PageBounds & { epoch?: string }): Promise<PullOutcome> {
    return this.read(`page of ${user} after ${since}`, () => {
      const s = this.stream(user)
      const reset = resetReason({ since, epoch: bounds.epoch }, { head: s.head, minValidSeq: 0, epoch: s.epoch })
      if (reset) return { reset, epoch: s.epoch }
      const rows = this.after(s, since, (c) => filter.covers(c.collection), bounds.limit)
      const last = rows.at(-1)
      const more = rows.length === bounds.limit && last !== undefined && last.seq < s.head
      return { items: rows, cursor: more ? last!.seq : s.head, more, epoch: s.epoch }
    })
  }

  readBackfill(user: string, collections: readonly string[], since: number, upTo: number, bounds: PageBounds): Promise<BackfillPage> {
    return this.read(`backfill of ${user} (${collections.join(',')}) after ${since}`, () => {
      const page = this.after(this.stream(user), since, (c) => collections.includes(c.collection), bounds.limit)
      const rows = page.filter((c) => c.seq <= upTo)
      const more = page.length === bounds.limit && rows.length === page.length && rows.length > 0
      return { items: rows, more, next: rows.at(-1)?.seq ?? since }
    })
  }

  follow(user: string, listener: FeedListener): () => void {
    const listeners = this.stream(user).listeners
    listeners.add(listener)
    return () => void listeners.delete(listener)
  }

  ready(): Promise<void> {
    return this.read('ready', () => undefined)
  }

  seed(user: string, head: number): void {
    this.seeded.push({ user, head })
  }

  // ---- inside -----------------------------------------------------------------------------------

  private stream(user: string): Stream {
    const s = this.streams.get(user)
    if (!s) throw new Error(`no user ${user} in the fake`)
    return s
  }

  private nextEpoch(): string {
    return `epoch-${++this.epochs}`
  }

  private after(s: Stream, since: number, keep: (c: Change) => boolean, limit: number): Change[] {
    const rows: Change[] = []
    for (const c of s.records.values()) {
      if (c.seq > since && keep(c)) rows.push(c)
      if (rows.length === limit) break
    }
    return rows
  }

  private read<T>(what: string, answer: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const release = () => {
        try {
          resolve(answer())
        } catch (err) {
          reject(err)
        }
      }
      if (!this.opts.manual) return release()
      const read: PendingRead = {
        what,
        release: () => (this.pending.splice(this.pending.indexOf(read), 1), release()),
        fail: () => (this.pending.splice(this.pending.indexOf(read), 1), reject(new Error(`the store failed: ${what}`))),
      }
      this.pending.push(read)
    })
  }
}
