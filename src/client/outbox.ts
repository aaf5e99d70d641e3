import { encodeMsgpack } from '../../protocol/codec.ts'
import { HubError } from '../../protocol/errors.ts'
import { DEFAULT_LIMITS } from '../../protocol/limits.ts'
import { Op, type Result } from '../../protocol/ops.ts'
import { describeIssue } from '../../protocol/validate.ts'
import { BUILT_IN_COLLECTION_SPECS } from '../../protocol/collections.ts'
import type { Clock } from './clock.ts'
import type { OutboxEntry } from './storage/port.ts'
import type { StateWriter } from './storage/writer.ts'

/** An op as the app hands it over: everything but the mid, which the outbox assigns. */
export type OpInput = Op extends infer O ? (O extends Op ? Omit<O, 'mid'> : never) : never

/** Room kept in a push frame for everything but the ops (t, ref, the array header). */
const FRAME_OVERHEAD = 64

/** What became of one op: its Result, or the hub's refusal. */
export interface Settled {
  mid: number
  op: Op
  result: Result
}

type Waiter = { resolve(result: Result): void; reject(err: HubError): void }

/**
 * The outbox owns the mids. An op gets the next mid when it is enqueued, is written to storage
 * with it, and only then becomes sendable; it leaves the outbox when the hub answered it. Ops go
 * out in mid order, one batch at a time (whichever transport carries it), and a batch whose
 * carrier died is sent again as it was. An op the protocol's own schema refuses never gets a mid,
 * so no mid is ever skipped by mistake.
 */
export class Outbox {
  private readonly entries: OutboxEntry[] = []
  private readonly sizes = new Map<number, number>()
  private readonly durable = new Set<number>()
  private readonly waiters = new Map<number, Waiter>()
  private inFlight: OutboxEntry[] | undefined
  private maxOps: number
  private maxBytes: number
  /** Called when something became sendable. */
  onSendable: () => void = () => {}

  constructor(
    private readonly writer: StateWriter,
    private nextMid: number,
    loaded: OutboxEntry[],
    private readonly clock: Clock,
    limits: { maxOpsPerPush?: number; maxFrameBytes?: number } = {},
  ) {
    this.maxOps = limits.maxOpsPerPush ?? DEFAULT_LIMITS.maxOpsPerPush
    this.maxBytes = (limits.maxFrameBytes ?? DEFAULT_LIMITS.maxFrameBytes) - FRAME_OVERHEAD
    for (const e of loaded) {
      this.entries.push(e)
      this.sizes.set(e.mid, encodeMsgpack(e.op).length)
      this.durable.add(e.mid)
    }
  }

  get size(): number {
    return this.entries.length
  }

  get busy(): boolean {
    return this.inFlight !== undefined
  }

  /** The unacknowledged ops, in mid order. */
  list(): readonly OutboxEntry[] {
    return this.entries
  }

  /**
   * Validates `input`, gives it the next mid and persists it. Resolves with the hub's Result once
   * the op is committed; rejects at once (no mid used) when the op is malformed or too large for
   * a frame, and later only when the hub refused it. `appState` (the app's slots, whole) is
   * written in the same atomic write as the op, so a count of what was enqueued never disagrees
   * with the outbox after a crash.
   */
  enqueue(input: OpInput, appState?: Record<string, unknown>): { mid: number; result: Promise<Result> } {
    const candidate = { ...input, mid: this.nextMid }
    const parsed = Op.safeParse(candidate)
    if (!parsed.success) throw new HubError('invalid', `op: ${describeIssue(parsed.error)}`)
    const op = parsed.data
    const dataProblem = builtInDataProblem(op)
    if (dataProblem) throw new HubError('invalid', dataProblem)
    const bytes = encodeMsgpack(op).length
    if (bytes > this.maxBytes) throw new HubError('too_large', `op: ${bytes} bytes encoded, over the ${this.maxBytes}-byte room of one push frame`)
    const mid = this.nextMid++
    const entry: OutboxEntry = { mid, op, at: this.clock.now() }
    this.entries.push(entry)
    this.sizes.set(mid, bytes)
    const result = new Promise<Result>((resolve, reject) => this.waiters.set(mid, { resolve, reject }))
    // Persisted before it may be sent: a crash after the send cannot lose the op or its mid.
    this.writer.write({ meta: { nextMid: this.nextMid, ...(appState ? { app: appState } : {}) }, putOps: [entry] }).then(
      () => {
        this.durable.add(mid)
        this.onSendable()
      },
      () => {
        // The storage failed: the op stays unsendable in memory; the next write retries it.
        void this.retryPersist(entry)
      },
    )
    return { mid, result }
  }

  private async retryPersist(entry: OutboxEntry): Promise<void> {
    await new Promise((r) => this.clock.setTimeout(() => r(undefined), 1000))
    if (!this.entries.includes(entry)) return
    await this.writer.write({ meta: { nextMid: this.nextMid }, putOps: [entry] }).then(
      () => {
        this.durable.add(entry.mid)
        this.onSendable()
      },
      () => this.retryPersist(entry),
    )
  }

  /** The next batch to send (the oldest ops, as many as one push frame holds), and marks it in flight. */
  take(): OutboxEntry[] | undefined {
    if (this.inFlight) return undefined
    const batch: OutboxEntry[] = []
    let bytes = 0
    for (const e of this.entries) {
      if (!this.durable.has(e.mid) || batch.length >= this.maxOps) break
      const size = this.sizes.get(e.mid)!
      if (batch.length > 0 && bytes + size > this.maxBytes) break
      batch.push(e)
      bytes += size
    }
    if (batch.length === 0) return undefined
    this.inFlight = batch
    return batch
  }

  /** The carrier of the batch in flight is gone: it will be sent again, with the same mids. */
  giveBack(): void {
    if (!this.inFlight) return
    this.inFlight = undefined
    if (this.entries.length) this.onSendable()
  }

  /** The hub refused the whole frame as too large: later batches carry half as many ops. */
  shrink(): void {
    this.maxOps = Math.max(1, Math.floor((this.inFlight?.length ?? this.maxOps) / 2))
    this.giveBack()
  }

  /**
   * The hub's results for the batch in flight, in order. Returns what was settled; an
   * `out_of_order` result (the hub has not seen the mids before it) stops there and leaves that
   * op and the rest in the outbox, to be renumbered (see renumber).
   */
  settle(results: Result[]): { settled: Settled[]; outOfOrder: boolean } {
    const batch = this.inFlight ?? []
    this.inFlight = undefined
    const settled: Settled[] = []
    let outOfOrder = false
    for (let i = 0; i < batch.length && i < results.length; i++) {
      const result = results[i]!
      if (!result.ok && result.code === 'out_of_order') {
        outOfOrder = true
        break
      }
      settled.push({ mid: batch[i]!.mid, op: batch[i]!.op, result })
    }
    if (settled.length > 0) {
      const done = new Set(settled.map((s) => s.mid))
      for (let i = this.entries.length - 1; i >= 0; i--) if (done.has(this.entries[i]!.mid)) this.entries.splice(i, 1)
      for (const mid of done) {
        this.sizes.delete(mid)
        this.durable.delete(mid)
      }
      void this.writer.write({ deleteOps: [...done] }).catch(() => {
        // Left in storage, the op is sent again after a restart and answered `dup`: harmless.
      })
      for (const s of settled) {
        const w = this.waiters.get(s.mid)
        this.waiters.delete(s.mid)
        if (!w) continue
        if (s.result.ok) w.resolve(s.result)
        else w.reject(new HubError(s.result.code, s.result.message))
      }
    }
    if (this.entries.length) this.onSendable()
    return { settled, outOfOrder }
  }

  /**
   * Renumbers the unsent ops so the first one follows `lastMid`, the last mid the hub applied for
   * this device (a state started afresh for a device id the hub already knows, or an
   * `out_of_order` answer). Only ops the hub never applied are in the outbox, so this is safe.
   */
  async renumber(lastMid: number): Promise<void> {
    const first = this.entries[0]?.mid ?? this.nextMid
    const shift = lastMid + 1 - first
    if (shift === 0) return void (await this.writer.write({ meta: { midsConfirmed: true } }))
    const old = this.entries.map((e) => e.mid)
    const moved = this.entries.map((e) => ({ ...e, mid: e.mid + shift, op: { ...e.op, mid: e.mid + shift } as Op }))
    this.nextMid += shift
    const waiters = new Map([...this.waiters].map(([mid, w]) => [mid + shift, w]))
    this.waiters.clear()
    for (const [mid, w] of waiters) this.waiters.set(mid, w)
    const sizes = new Map([...this.sizes].map(([mid, s]) => [mid + shift, s]))
    this.sizes.clear()
    for (const [mid, s] of sizes) this.sizes.set(mid, s)
    this.durable.clear()
    this.entries.splice(0, this.entries.length, ...moved)
    await this.writer.write({ meta: { nextMid: this.nextMid, midsConfirmed: true }, deleteOps: old, putOps: moved })
    for (const e of moved) this.durable.add(e.mid)
    if (this.entries.length) this.onSendable()
  }

  get next(): number {
    return this.nextMid
  }
}

const BUILT_IN: ReadonlyMap<string, (typeof BUILT_IN_COLLECTION_SPECS)[number]> = new Map(BUILT_IN_COLLECTION_SPECS.map((c) => [c.name, c]))

/**
 * The minimum data of the built-in collections, checked before the op gets a mid: the hub would
 * refuse it (using up the mid), and the app learns it at once instead of a round trip later.
 */
function builtInDataProblem(op: Op): string | undefined {
  const check = (collection: string, data: unknown, what: string) => {
    const spec = BUILT_IN.get(collection)
    if (!spec) return undefined
    const parsed = spec.schema.safeParse(data)
    return parsed.success ? undefined : `${what}: ${collection} data: ${describeIssue(parsed.error)}`
  }
  if (op.op === 'put') return check(op.collection, op.data, 'op')
  if (op.op === 'regen') return check('messages', op.message.data, 'op.message')
  if (op.op === 'fork') return check('conversations', op.conversation.data, 'op.conversation')
  return undefined
}
