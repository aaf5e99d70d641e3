import type { BackfillFrame, ChangesFrame, ResetReason, ScopeFrame } from '../../protocol/frames.ts'
import type { Change } from '../../protocol/records.ts'
import { Backoff } from './backoff.ts'
import type { Clock } from './clock.ts'
import type { LocalView } from './local-view.ts'
import type { StateWriter } from './storage/writer.ts'
import type { WriteBatch } from './storage/port.ts'

export type Via = 'socket' | 'rest'

/**
 * What the app's change handler receives. `changes`: the stream, each seq once and in order
 * (`from` is where the previous batch ended, `to` the cursor after this one). `backfill`: records
 * of collections a widened scope added, all older than the cursor; they are records to store,
 * not part of the seq order, and do not move the cursor.
 */
export interface ChangeBatch {
  kind: 'changes' | 'backfill'
  changes: Change[]
  from: number
  to: number
  via: Via
}

export type ChangeHandler = (batch: ChangeBatch) => void | Promise<void>

export interface ResetInfo {
  reason: ResetReason
  epoch: string | undefined
}

export type ResetHandler = (info: ResetInfo) => void | Promise<void>

type Item =
  | { kind: 'changes'; from: number; to: number; items: Change[]; via: Via }
  | { kind: 'backfill'; collections: string[]; items: Change[]; last: boolean; via: Via; scope?: string[] }
  | { kind: 'scope'; scope: string[]; removed: string[]; backfillFollows: boolean }
  | { kind: 'reset'; info: ResetInfo; done(): void }

export interface InboxDeps {
  writer: StateWriter
  clock: Clock
  random: () => number
  view?: LocalView
  onChanges?: ChangeHandler
  onReset?: ResetHandler
  /** The cursor is durable up to `cursor` (the device ack may follow). */
  persisted(cursor: number): void
  /** A batch was applied (for events). */
  applied(batch: ChangeBatch): void
  scopeApplied(scope: string[]): void
  /** The handler threw: it is called again with the same batch after a pause. */
  handlerFailed(err: unknown, batch: ChangeBatch | ResetInfo): void
}

/**
 * The receiving half: frames from either transport come in, each seq goes to the app's handler
 * once and in order, and the cursor is written only after the handler returned (with the local
 * view's records, in one write). Dedupe is by seq against the accepted position, so overlaps at
 * a switch between socket and REST, or a replayed frame, deliver nothing twice.
 */
export class Inbox {
  /** `to` of the last batch the handler applied. */
  cursor: number
  epoch: string | undefined
  /** Where the accepted stream ends (batches accepted but not yet applied included). */
  streamTo: number
  private readonly queue: Item[] = []
  private parts: ChangesFrame[] = []
  private pumping: Promise<void> | undefined
  private readonly retry: Backoff
  private pendingScope: string[] | undefined
  /** The client stopped: nothing new is accepted and nothing failed is retried. */
  private closed = false
  /** Ends a retry's wait at once (close). */
  private wakeRetry: (() => void) | undefined

  constructor(
    private readonly deps: InboxDeps,
    cursor: number,
    epoch: string | undefined,
  ) {
    this.cursor = cursor
    this.epoch = epoch
    this.streamTo = cursor
    this.retry = new Backoff({ baseMs: 500, maxMs: 30_000 }, deps.random)
  }

  /**
   * A `changes` frame or a pull page (from = the `since` asked, to = the answer's cursor).
   * 'gap': it starts after the accepted position, so something was lost: resubscribe or pull
   * from `streamTo`. 'ok' otherwise (items already accepted are dropped).
   */
  acceptChanges(frame: Pick<ChangesFrame, 'from' | 'to' | 'items' | 'more'>, via: Via): 'ok' | 'gap' {
    const chainEnd = this.parts.length ? this.parts[this.parts.length - 1]!.to : this.streamTo
    if (frame.from > chainEnd) {
      this.parts = []
      return 'gap'
    }
    if (frame.more) {
      // Parts of one split frame are applied together, as the whole push they carry.
      this.parts.push(frame as ChangesFrame)
      return 'ok'
    }
    const parts = [...this.parts, frame]
    this.parts = []
    const from = parts[0]!.from
    const to = Math.max(frame.to, this.streamTo)
    const items = parts.flatMap((p) => p.items).filter((c) => c.seq > this.streamTo)
    if (to <= this.streamTo) return 'ok'
    this.streamTo = to
    this.push({ kind: 'changes', from: Math.max(from, this.cursorOfQueueEnd()), to, items, via })
    return 'ok'
  }

  /** The socket ended: a split frame cut short is dropped (it comes again after the resume). */
  discardPartial(): void {
    this.parts = []
  }

  acceptScope(frame: ScopeFrame): void {
    const backfillFollows = frame.added.length > 0
    this.pendingScope = backfillFollows ? frame.scope : undefined
    this.push({ kind: 'scope', scope: frame.scope, removed: frame.removed, backfillFollows })
  }

  acceptBackfill(frame: Pick<BackfillFrame, 'collections' | 'items' | 'more'>, via: Via, scopeWhenDone?: string[]): void {
    const last = !frame.more
    const scope = last ? (scopeWhenDone ?? this.pendingScope) : undefined
    if (last) this.pendingScope = undefined
    this.push({ kind: 'backfill', collections: frame.collections, items: frame.items, last, via, ...(scope ? { scope } : {}) })
  }

  /** A reset: resolves once the app dropped its synced state and the cursor is back at 0. */
  acceptReset(info: ResetInfo): Promise<void> {
    this.parts = []
    return new Promise((done) => this.push({ kind: 'reset', info, done }))
  }

  /** Takes the hub's epoch when the device holds nothing yet (a fresh device's first sub). */
  adoptEpoch(epoch: string): void {
    if (this.streamTo === 0 && this.cursor === 0 && this.queue.length === 0) this.epoch = epoch
  }

  /**
   * The client stopped: frames that still arrive are not accepted, what is queued is still
   * applied, but an item whose apply fails is dropped instead of retried (the cursor was not
   * moved past it, so it comes again when a client starts on the same storage).
   */
  close(): void {
    this.closed = true
    this.wakeRetry?.()
  }

  /** Resolves once every accepted batch is applied and its write issued. */
  async idle(): Promise<void> {
    while (this.pumping) await this.pumping
  }

  get pending(): number {
    return this.queue.length
  }

  private cursorOfQueueEnd(): number {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const it = this.queue[i]!
      if (it.kind === 'changes') return it.to
      if (it.kind === 'reset') return 0
    }
    return this.cursor
  }

  private push(item: Item): void {
    if (this.closed) return
    this.queue.push(item)
    if (!this.pumping) this.pumping = this.pump().finally(() => (this.pumping = undefined))
  }

  private async pump(): Promise<void> {
    while (this.queue.length > 0) {
      const item = this.queue[0]!
      try {
        await this.apply(item)
        this.queue.shift()
        this.retry.reset()
      } catch (err) {
        const what = item.kind === 'reset' ? item.info : item.kind === 'scope' ? undefined : this.batchOf(item)
        if (what) this.deps.handlerFailed(err, what)
        if (!this.closed) await this.waitToRetry()
        if (this.closed) return void this.queue.splice(0)
      }
    }
  }

  private waitToRetry(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = this.deps.clock.setTimeout(() => done(), this.retry.next())
      const done = () => {
        this.deps.clock.clearTimeout(timer)
        this.wakeRetry = undefined
        resolve()
      }
      this.wakeRetry = done
    })
  }

  private batchOf(item: Extract<Item, { kind: 'changes' | 'backfill' }>): ChangeBatch {
    return item.kind === 'changes'
      ? { kind: 'changes', changes: item.items, from: item.from, to: item.to, via: item.via }
      : { kind: 'backfill', changes: item.items, from: this.cursor, to: this.cursor, via: item.via }
  }

  private async apply(item: Item): Promise<void> {
    const { view, writer } = this.deps
    switch (item.kind) {
      case 'changes': {
        const batch = this.batchOf(item)
        if (item.items.length > 0) await this.deps.onChanges?.(batch)
        const write: WriteBatch = { meta: { cursor: item.to, ...(this.epoch !== undefined ? { epoch: this.epoch } : {}) } }
        if (view && item.items.length > 0) write.putRecords = view.apply(item.items)
        this.cursor = item.to
        const cursor = item.to
        writer.write(write).then(
          () => this.deps.persisted(cursor),
          () => {},
        )
        if (item.items.length > 0) this.deps.applied(batch)
        return
      }
      case 'backfill': {
        const batch = this.batchOf(item)
        if (item.items.length > 0) await this.deps.onChanges?.(batch)
        const write: WriteBatch = {}
        if (view && item.items.length > 0) write.putRecords = view.apply(item.items)
        if (item.scope) write.meta = { scope: item.scope }
        if (write.putRecords || write.meta) await writer.write(write)
        if (item.scope) this.deps.scopeApplied(item.scope)
        if (item.items.length > 0) this.deps.applied(batch)
        return
      }
      case 'scope': {
        if (view && item.removed.length > 0) view.clear(item.removed)
        const write: WriteBatch = {}
        if (item.removed.length > 0 && view) write.clearRecords = item.removed
        // A widening's scope is kept once its backfill is done (the last backfill frame).
        if (!item.backfillFollows) write.meta = { scope: item.scope }
        if (write.clearRecords || write.meta) await writer.write(write)
        if (!item.backfillFollows) this.deps.scopeApplied(item.scope)
        return
      }
      case 'reset': {
        await this.deps.onReset?.(item.info)
        view?.clear()
        this.cursor = 0
        this.streamTo = 0
        this.epoch = item.info.epoch
        await writer.write({ meta: { cursor: 0, epoch: item.info.epoch ?? null }, ...(view ? { clearRecords: true as const } : {}) })
        item.done()
        return
      }
    }
  }
}
