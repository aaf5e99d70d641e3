import type { ResetReason, SubFrame } from '../../protocol/frames.ts'
import type { ChangeSource, PageBounds } from './change-source.ts'
import type { CollectionFilter } from './collection-filter.ts'
import type { FeedListener, LiveBatch } from './feed.ts'
import type { FrameSink } from './frame-sink.ts'

/**
 * Where a socket's stream stands (SUBSCRIPTION.md has the states × events table).
 * - `idle`: no stream (before the first `sub`, after a reset or a failed `sub`).
 * - `subscribing`: a `sub` reads the user's scope; nothing is followed yet.
 * - `catching_up`: pages of the store go out (a `sub`'s backlog, or a gap's fill); live batches wait.
 * - `backfilling`: a widening's backfill goes out; live batches wait.
 * - `live`: live batches go out as they come.
 * - `ended`: the socket is gone; nothing is sent any more.
 */
export type SubscriptionMode = 'idle' | 'subscribing' | 'catching_up' | 'backfilling' | 'live' | 'ended'

/** A `sub` frame's request. */
export type SubRequest = Omit<SubFrame, 't'>

/**
 * One socket's subscription to its user's change stream: one cursor, every change sent once and
 * in order, the backlog before `synced` before live changes, a widening's backfill before live
 * changes resume. Every stream a `sub`, a gap or a widening starts runs under the generation it
 * started in; a `sub`, a reset or the end of the socket starts a new one, and whatever an older
 * generation still had in flight is dropped unsent.
 */
export class Subscription implements FeedListener {
  private state: SubscriptionMode = 'idle'
  /** The cursor: the `to` of the last `changes` frame sent (the `since` of the `sub` before any). */
  private at = 0
  private generation = 0
  /** The user's scope as last learnt (at auth, from a scope change, by a `sub`'s read). */
  private scope: readonly string[] | null
  /** The collections the `sub` asked for (undefined: all in scope). */
  private requested: readonly string[] | undefined
  /** The stream's collections: `scope` narrowed by `requested`. */
  private filter: CollectionFilter
  /** Scope changes so far: one that lands while a `sub` reads the scope is newer than that read. */
  private scopeChanges = 0
  /** Collections widenings added whose backfill has not started. */
  private toBackfill: readonly string[] = NONE
  /** Collections whose backfill is going out; queued again if the stream ends before it is done. */
  private inFlight: readonly string[] = NONE
  /** Live batches that came while the store was read or a backfill sent: sent after, in order. */
  private held: LiveBatch[] | undefined
  private unfollow: (() => void) | undefined

  /** `scope`: the user's scope when the socket authenticated. */
  constructor(
    private readonly user: string,
    private readonly source: ChangeSource,
    private readonly sink: FrameSink,
    private readonly bounds: PageBounds,
    scope: readonly string[] | null,
  ) {
    this.scope = scope
    this.filter = source.filterFor(scope)
  }

  get mode(): SubscriptionMode {
    return this.state
  }

  /**
   * A `sub`: replaces any stream, reads the backlog from `since`, sends `synced`, backfills what
   * widenings added meanwhile, then goes live. Rejects when it fails before `synced` (the caller
   * answers the `sub` with the error); a later failure closes the socket for a retry.
   */
  async subscribe(req: SubRequest): Promise<void> {
    if (this.state === 'ended') return
    const gen = this.stop('subscribing')
    // From here scope changes are told relative to what this `sub` asks for.
    this.requested = req.collections
    this.filter = this.source.filterFor(this.scope, req.collections)
    try {
      const changesBefore = this.scopeChanges
      const stored = await this.source.scopeOf(this.user)
      if (this.stale(gen)) return
      // A scope change announced while the scope was read is at least as new as what was read.
      if (this.scopeChanges === changesBefore) this.scope = stored
      this.filter = this.source.filterFor(this.scope, req.collections)
      this.at = req.since
      this.state = 'catching_up'
      // Follow before the first read: whatever commits meanwhile is held, then merged. The read
      // waits until the live stream is in effect, so no change falls between the two.
      this.unfollow = this.source.follow(this.user, this)
      await this.source.ready()
      if (this.stale(gen)) return
      if (!(await this.catchUp(gen, req))) return
    } catch (err) {
      if (!this.stale(gen)) this.stop('idle')
      throw err
    }
    this.sink.send({ t: 'synced', ref: req.ref, cursor: this.at })
    this.continue(gen)
  }

  /** A live batch of the user (FeedListener): sent, held, or the sign of a gap to fill. */
  onBatch(batch: LiveBatch): void {
    if (this.state === 'catching_up' || this.state === 'backfilling') return void (this.held ??= []).push(batch)
    if (this.state !== 'live' || batch.to <= this.at) return
    if (batch.from > this.at) {
      // A hole between what this socket has and this batch: read it from the store.
      ;(this.held ??= []).push(batch)
      return this.fillGap(this.generation)
    }
    const from = this.at
    this.at = batch.to
    // Only a whole batch is the object every socket of the user shares (one encode for all).
    this.sink.sendLive(batch.from === from ? batch : trim(batch, from), this.filter)
  }

  /**
   * The user's scope changed: the stream is re-filtered at once and the client told. A widening
   * is followed by the added collections' records up to the cursor (`backfill`), before live
   * changes resume, so a backfilled record is never older than one already sent.
   */
  scopeChanged(scope: string[]): void {
    if (this.state === 'ended') return
    this.scopeChanges++
    this.scope = scope
    const next = this.source.filterFor(scope, this.requested)
    const { added, removed } = this.filter.changesTo(next)
    this.filter = next
    this.sink.send({ t: 'scope', scope, added, removed })
    if (removed.length > 0) this.toBackfill = this.toBackfill.filter((c) => !removed.includes(c))
    // Idle there is no stream to fill in: a later `sub` reads the scope afresh.
    if (added.length === 0 || this.state === 'idle') return
    this.toBackfill = union(this.toBackfill, added)
    // Any other state reaches `continue`, which sends the backfill before going live.
    if (this.state === 'live') this.continue(this.generation)
  }

  /**
   * The user's history was replaced: whatever the socket holds belongs to the old one. The
   * stream ends (nothing of it is sent any more) and the client is told to start again from 0.
   */
  reset(reason: ResetReason, epoch?: string): void {
    if (this.state === 'ended') return
    this.stop('idle')
    this.toBackfill = NONE // the client starts from 0: it gets every collection in full
    this.sink.send({ t: 'reset', reason, ...(epoch !== undefined ? { epoch } : {}) })
  }

  /** The socket is gone. */
  end(): void {
    if (this.state === 'ended') return
    this.stop('ended')
    this.toBackfill = NONE
  }

  // ---- streams of one generation -----------------------------------------------------------

  /** Ends the current stream (its reads turn stale) and enters `mode`; returns the new generation. */
  private stop(mode: 'idle' | 'subscribing' | 'ended'): number {
    this.unfollow?.()
    this.unfollow = undefined
    this.held = undefined
    this.state = mode
    // A backfill cut short is sent again, in full, by the next stream.
    if (this.inFlight.length > 0) this.toBackfill = union(this.toBackfill, this.inFlight)
    this.inFlight = NONE
    return ++this.generation
  }

  private stale(gen: number): boolean {
    return gen !== this.generation
  }

  /**
   * From the head of the stream on: the backfills widenings asked for, then live, starting with
   * the batches held meanwhile. Runs in the background; a failure closes the socket for a retry.
   */
  private continue(gen: number): void {
    if (this.toBackfill.length === 0) return this.goLive()
    this.state = 'backfilling'
    void this.backfillAll(gen).then(
      (done) => done && this.goLive(),
      () => this.stale(gen) || this.sink.closeForRetry(),
    )
  }

  private goLive(): void {
    this.state = 'live'
    // A held batch that reveals a gap starts a fill, and the rest are held again behind it.
    const held = this.held
    this.held = undefined
    for (const batch of held ?? []) this.onBatch(batch)
  }

  private fillGap(gen: number): void {
    this.state = 'catching_up'
    void this.catchUp(gen).then(
      (done) => done && this.continue(gen),
      () => this.stale(gen) || this.sink.closeForRetry(),
    )
  }

  /**
   * Reads the store from the cursor to the head and sends it, paced by the reader; true once at
   * the head. The next page is read while one goes out: store and socket work side by side.
   * A cursor the store cannot serve ends the stream with `reset` (answering the `sub`, if any).
   */
  private async catchUp(gen: number, sub?: SubRequest): Promise<boolean> {
    this.state = 'catching_up'
    const current = () => !this.stale(gen)
    const read = (since: number, epoch?: string) => {
      const page = this.source.readPage(this.user, since, this.filter, { ...this.bounds, epoch })
      page.catch(() => {}) // a prefetch the loop left behind (socket gone, stream replaced) fails quietly
      return page
    }
    let next = read(this.at, sub?.epoch)
    for (;;) {
      const page = await next
      if (this.stale(gen)) return false
      if ('reset' in page) {
        this.stop('idle')
        this.toBackfill = NONE
        this.sink.send({ t: 'reset', ...(sub ? { ref: sub.ref } : {}), reason: page.reset, epoch: page.epoch })
        return false
      }
      if (page.more) next = read(page.cursor)
      if (page.items.length > 0 || page.cursor > this.at) {
        // Filtered as it goes: a narrowing since the read leaves out what it removed.
        const build = () => ({ t: 'changes' as const, from: this.at, to: page.cursor, items: page.items.filter((c) => this.filter.covers(c.collection)) })
        if (!(await this.sink.sendPaced(build, current))) return false
      }
      this.at = page.cursor
      if (!page.more) break
    }
    this.source.seed(this.user, this.at)
    return true
  }

  /**
   * Sends the backfill of every queued collection the filter still covers; a widening that
   * lands meanwhile is queued and sent here too, before live changes resume. A narrowing takes
   * its collections out of a backfill at once (a later widening queues them anew); a backfill's
   * last frame (no `more`) ends it for the collections it still names.
   */
  private async backfillAll(gen: number): Promise<boolean> {
    const current = () => !this.stale(gen)
    while (this.toBackfill.length > 0) {
      this.inFlight = this.toBackfill
      this.toBackfill = NONE
      // The cursor stands still while live batches are held: everything up to it is what the client has.
      const upTo = this.at
      for (let since = 0; ; ) {
        this.inFlight = this.inFlight.filter((c) => this.filter.covers(c))
        if (this.inFlight.length === 0) break
        const page = await this.source.readBackfill(this.user, this.inFlight, since, upTo, this.bounds)
        if (this.stale(gen)) return false
        const build = () => {
          const collections = (this.inFlight = this.inFlight.filter((c) => this.filter.covers(c)))
          const items = page.items.filter((c) => collections.includes(c.collection))
          return { t: 'backfill' as const, collections, items, ...(page.more ? { more: true as const } : {}) }
        }
        // A narrowing of everything left ends the backfill; nothing more of it goes.
        const sent = await this.sink.sendPaced(build, () => current() && this.inFlight.some((c) => this.filter.covers(c)))
        if (this.stale(gen)) return false
        if (!sent) this.inFlight = NONE
        if (!sent || !page.more) break
        since = page.next
      }
      // Sent whole: a widening that queued them again meanwhile is answered by this backfill too.
      this.toBackfill = this.toBackfill.filter((c) => !this.inFlight.includes(c))
      this.inFlight = NONE
    }
    return true
  }
}

/** No collections (shared: a socket that never widens allocates no list). */
const NONE: readonly string[] = Object.freeze([])

/** `a` and what of `b` it lacks. */
const union = (a: readonly string[], b: readonly string[]): readonly string[] => [...a, ...b.filter((c) => !a.includes(c))]

/** The part of a batch after `cursor`. */
function trim(batch: LiveBatch, cursor: number): LiveBatch {
  return { user: batch.user, from: cursor, to: batch.to, changes: batch.changes.filter((c) => c.seq > cursor) }
}
