import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.ts'
import { HubError } from '../../protocol/errors.ts'
import type { Op, Result } from '../../protocol/ops.ts'
import type { Change } from '../../protocol/records.ts'
import type { ResetReason } from '../../protocol/frames.ts'
import type { Bus, ChangeBatch } from '../bus/port.ts'
import { deviceKey, midKey, type OpResultRow, type UserState } from '../store/rows.ts'
import type { PageQuery, SyncStore } from '../store/sync-store.ts'
import { WriteConflict, type PushStore } from '../store/push-store.ts'
import type { CollectionRegistry } from './collections.ts'
import { visibleCollections } from './collection-filter.ts'
import { GroupCommitter, type Settle } from './group-commit.ts'
import { UserPlan } from './push-planner.ts'
import { rowToWireChange, type WireChange } from './changes.ts'
import type { RecordCodec } from './record-codec.ts'
import { knownInputs, readInputs, type BatchInputs } from './batch-inputs.ts'
import { KnownState } from './known-state.ts'

/** Where a user's stream stands (its head `seq`, epoch and scope), as the edges see it. */
export type StreamState = UserState

export interface PushOutcome {
  cursor: number
  results: Result[]
}

export type PullOutcome =
  | { items: WireChange[]; cursor: number; more: boolean; epoch: string }
  | { reset: ResetReason; epoch: string }

export interface EngineOptions {
  store: SyncStore
  bus: Bus
  /** The collections (its registry) and the key box their secret fields are sealed with. */
  codec: RecordCodec
  maxOpsPerPush: number
  maxRecordBytes: number
  trashRetentionMs: number
  /** Parallel write transactions (lanes); 1 for the single-connection embedded store. */
  lanes: number
  /** How long a lane with pushes queued waits for more before its next commit (0: none). */
  commitDelayMs?: number
  /** Most ops in one group commit. */
  maxBatchOps?: number
  now?: () => number
  /** Called after every committed batch (metrics). */
  onBatch?: (info: { pushes: number; ops: number; ms: number }) => void
}

/** Who waits for a push: called once, with the outcome or the error, right after the commit. */
export interface PushAnswer {
  ok(outcome: PushOutcome): void
  failed(err: unknown): void
  /**
   * Wraps the answer and this node's fan-out of the push's changes (the pusher's own echo
   * among them), so a socket can send both in one write instead of two.
   */
  together?(send: () => void): void
}

interface PushJob {
  userId: string
  deviceId: string
  ops: Op[]
  weight: number
  answer: PushAnswer
}

/** A job's result inside a batch: its outcome (and the changes to publish), or its error. */
type JobResult = { outcome: PushOutcome; batch?: ChangeBatch } | { error: HubError }

/**
 * The sync engine: pushes become rows under the user's seq (group-committed), committed
 * batches are published to the bus, and pulls read the user's stream from the store.
 */
export class SyncEngine {
  readonly registry: CollectionRegistry
  readonly codec: RecordCodec
  private readonly committer: GroupCommitter<PushJob>
  private readonly now: () => number
  private readonly inflight = new Set<Promise<void>>()
  private readonly known = new KnownState()

  constructor(private readonly opts: EngineOptions) {
    this.codec = opts.codec
    this.registry = opts.codec.registry
    this.now = opts.now ?? Date.now
    this.committer = new GroupCommitter(opts.lanes, opts.maxBatchOps ?? 2000, (jobs) => this.runBatch(jobs), opts.commitDelayMs)
  }

  /** Applies a push atomically; resolves after commit, before anyone else can see it. */
  push(userId: string, deviceId: string, ops: Op[]): Promise<PushOutcome> {
    return new Promise((ok, failed) => this.submit(userId, deviceId, ops, { ok, failed }))
  }

  /** `push` for a caller that answers synchronously (a socket: its ack and echo leave together). */
  submit(userId: string, deviceId: string, ops: Op[], answer: PushAnswer): void {
    if (ops.length > this.opts.maxOpsPerPush) {
      return answer.failed(new HubError('too_large', `${ops.length} ops in one push, over the ${this.opts.maxOpsPerPush} limit`))
    }
    let done!: () => void
    const settled = new Promise<void>((resolve) => (done = resolve))
    this.inflight.add(settled)
    void settled.then(() => this.inflight.delete(settled))
    const job: PushJob = {
      userId,
      deviceId,
      ops,
      weight: ops.length,
      answer: {
        ok: (outcome) => (done(), answer.ok(outcome)),
        failed: (err) => (done(), answer.failed(err)),
        together: answer.together,
      },
    }
    this.committer.submit(job)
  }

  /** Resolves when every push received before this call has committed or failed (drain). */
  settled(): Promise<void> {
    return Promise.all([...this.inflight]).then(() => {})
  }

  /** Pushes queued or committing. */
  get pending(): number {
    return this.committer.pending
  }

  /** Commits a batch; resolves with the work of answering it, which the committer runs next. */
  private async runBatch(jobs: PushJob[]): Promise<Settle | void> {
    const started = performance.now()
    let outcomes: JobResult[]
    try {
      outcomes = await this.commit(jobs)
    } catch (err) {
      if (jobs.length > 1 && !(err instanceof HubError && err.code === 'unavailable')) {
        // One push broke the shared transaction: give each its own, so only that one fails.
        for (const job of jobs) (await this.runBatch([job]))?.()
        return
      }
      const error =
        err instanceof HubError ? err
        : err instanceof WriteConflict ? new HubError('unavailable', 'too many concurrent writes for this user, nothing was applied; retry')
        : new HubError('internal', 'push failed, nothing was applied')
      for (const job of jobs) job.answer.failed(error)
      return
    }
    this.opts.onBatch?.({ pushes: jobs.length, ops: jobs.reduce((n, j) => n + j.weight, 0), ms: performance.now() - started })
    // Durable before visible: answer and publish only once the transaction committed.
    return () =>
      jobs.forEach((job, i) => {
        const result = outcomes[i]!
        if ('error' in result) return job.answer.failed(result.error)
        // The fan-out first: a pusher sees its own change before the ack that names its seq.
        const send = () => {
          if (result.batch) this.publish(result.batch)
          job.answer.ok(result.outcome)
        }
        if (job.answer.together) job.answer.together(send)
        else send()
      })
  }

  /** A batch holding any secret field (a provider key) is marked, so no bus carries it off this node. */
  private publish(batch: ChangeBatch): void {
    const sensitive = batch.changes?.some((c) => this.registry.get(c.collection)?.secretFields?.length)
    this.opts.bus.publish(sensitive ? { ...batch, sensitive: true } : batch)
  }

  /**
   * Plans and writes a batch: first optimistically, from what this node already knows when every
   * op creates a record, else from a read, with no lock held; if the write finds its inputs moved
   * (another node writing for the same user), again inside a transaction holding the users'
   * counter rows, where nothing it read can move, so contention ends in a wait, not a livelock.
   */
  private async commit(jobs: PushJob[]): Promise<JobResult[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        if (attempt === 1) {
          const store = this.opts.store.push
          const now = this.now()
          const inputs = knownInputs(this.known, jobs) ?? (await this.readAndRemember(store, jobs, now))
          return await this.planBatch(store, jobs, inputs, now)
        }
        return await this.opts.store.pushInTransaction(async (store) => {
          await store.lockUsers([...new Set(jobs.map((j) => j.userId))])
          const now = this.now()
          return this.planBatch(store, jobs, await this.readAndRemember(store, jobs, now), now)
        })
      } catch (err) {
        if (!(err instanceof WriteConflict)) throw err
        for (const job of jobs) this.known.forget(job.userId)
        if (attempt >= MAX_WRITE_ATTEMPTS) throw err
      }
    }
  }

  private async readAndRemember(store: PushStore, jobs: PushJob[], now: number): Promise<BatchInputs> {
    const inputs = await readInputs(store, this.registry, jobs, now)
    this.known.remember(inputs.users.values(), inputs.devices.values())
    return inputs
  }

  private async planBatch(store: PushStore, jobs: PushJob[], inputs: BatchInputs, now: number): Promise<JobResult[]> {
    const { users, devices, rows, firstAnswers } = inputs
    const readLastMid = new Map([...devices].map(([key, d]) => [key, d.lastMid]))
    const ctx = { registry: this.registry, codec: this.codec, maxRecordBytes: this.opts.maxRecordBytes, trashRetentionMs: this.opts.trashRetentionMs, now }
    const plans = new Map<string, UserPlan>()
    const results: OpResultRow[] = []
    const outcomes: JobResult[] = []
    for (const job of jobs) {
      const user = users.get(job.userId)
      const device = devices.get(deviceKey(job.userId, job.deviceId))
      if (!user || !device) {
        outcomes.push({ error: new HubError('unauthorized', 'unknown user') })
        continue
      }
      if (device.revoked) {
        outcomes.push({ error: new HubError('forbidden', 'this device was revoked') })
        continue
      }
      let plan = plans.get(job.userId)
      // The plan advances its own copy: the write checks the counter against the one read.
      if (!plan) plans.set(job.userId, (plan = new UserPlan({ ...user }, rows, ctx)))
      const from = plan.seq
      const changes: Change[] = []
      const opResults: Result[] = []
      for (const op of job.ops) {
        let result: Result
        if (op.mid <= device.lastMid) {
          const first = firstAnswers.get(midKey(job.userId, job.deviceId, op.mid))
          result = first ? { ...(decodeMsgpack(first) as Result), dup: true } : { ok: true, dup: true }
        } else if (op.mid !== device.lastMid + 1) {
          result = { ok: false, code: 'out_of_order', message: `mid ${op.mid} skips ahead: expected ${device.lastMid + 1}` }
        } else {
          result = plan.apply(op, job.deviceId, changes)
          device.lastMid = op.mid
          results.push({ userId: job.userId, deviceId: job.deviceId, mid: op.mid, result: encodeMsgpack(result) })
        }
        opResults.push(result)
      }
      outcomes.push({
        outcome: { cursor: plan.seq, results: opResults },
        batch: changes.length > 0 ? { user: job.userId, from, to: plan.seq, changes } : undefined,
      })
    }

    const touchedDevices = new Map<string, { userId: string; deviceId: string; lastMid: number; readLastMid: number }>()
    for (const r of results) {
      const key = deviceKey(r.userId, r.deviceId)
      touchedDevices.set(key, { userId: r.userId, deviceId: r.deviceId, lastMid: r.mid, readLastMid: readLastMid.get(key)! })
    }
    if (results.length > 0) {
      const written = {
        users: [...plans.values()].map((p) => ({ userId: p.user.userId, seq: p.seq, read: users.get(p.user.userId)! })),
        devices: [...touchedDevices.values()],
      }
      await store.write({ ...written, records: [...plans.values()].flatMap((p) => [...p.dirty.values()]), results, absent: inputs.assumedAbsent, now })
      this.known.wrote(written.users, written.devices)
    }
    return outcomes
  }

  /** One page of the user's stream after `since`, restricted to their scope and `collections`. */
  async pull(userId: string, q: { since: number; limit: number; collections?: string[]; epoch?: string }): Promise<PullOutcome> {
    const state = await this.streamState(userId)
    return this.readPage(userId, { since: q.since, limit: q.limit, collections: this.collectionFilter(state.scope, q.collections), epoch: q.epoch })
  }

  /** One page with an already-resolved collection filter (a socket resolves it once per sub). */
  async readPage(userId: string, q: PageQuery & { epoch?: string }): Promise<PullOutcome> {
    const page = await this.opts.store.pull(userId, q)
    if (!page) throw new HubError('unauthorized', 'unknown user')
    const reset = resetReason(q, page)
    if (reset) return { reset, epoch: page.epoch }
    const last = page.rows.at(-1)
    const more = page.cut && last !== undefined && last.seq < page.head
    return { items: page.rows.map((row) => rowToWireChange(row, this.codec)), cursor: more ? last!.seq : page.head, more, epoch: page.epoch }
  }

  /**
   * Records of `collections` with since < seq ≤ upTo (a socket's backfill after its scope widened):
   * the store's page, cut at `upTo`; `more` while the page was cut before reaching it.
   */
  async readBackfill(userId: string, q: { collections: readonly string[]; since: number; upTo: number; limit: number; maxBytes: number }): Promise<{ items: WireChange[]; more: boolean; next: number }> {
    const { collections, since, upTo, limit, maxBytes } = q
    const page = await this.opts.store.pull(userId, { since, limit, collections: [...collections], maxBytes })
    const rows = (page?.rows ?? []).filter((r) => r.seq <= upTo)
    const more = page !== undefined && page.cut && rows.length === page.rows.length && rows.length > 0
    return { items: rows.map((row) => rowToWireChange(row, this.codec)), more, next: rows.at(-1)?.seq ?? since }
  }

  /** Where the user's stream stands: its head (`seq`), epoch and scope; HubError `unauthorized` for an unknown user. */
  async streamState(userId: string): Promise<StreamState> {
    const state = await this.opts.store.userState(userId)
    if (!state) throw new HubError('unauthorized', 'unknown user')
    return state
  }

  /**
   * A device opens a socket: it is registered (or its name, platform and last sighting
   * refreshed), refused when revoked; resolves where the user's stream stands.
   */
  async admitDevice(userId: string, device: { id: string; name?: string; platform?: string }): Promise<StreamState> {
    const active = await this.opts.store.touchDevice({ userId, id: device.id, name: device.name, platform: device.platform, now: this.now() })
    if (!active) throw new HubError('forbidden', 'this device was revoked')
    return this.streamState(userId)
  }

  /** The collections a reader may see: its scope, narrowed by what it asked for. null = all. */
  collectionFilter(scope: readonly string[] | null, requested?: readonly string[]): string[] | null {
    return visibleCollections(this.registry, scope, requested)
  }
}

/** Why a cursor cannot be served, if it cannot. */
export function resetReason(q: { since: number; epoch?: string }, state: { head: number; minValidSeq: number; epoch: string }): ResetReason | undefined {
  if (q.epoch !== undefined && q.epoch !== state.epoch) return 'epoch_changed'
  if (q.since > state.head) return 'cursor_ahead'
  if (q.since > 0 && q.since < state.minValidSeq) return 'cursor_purged'
  return undefined
}

/** Plans of one batch before giving up on a user whose other writers keep getting in first. */
const MAX_WRITE_ATTEMPTS = 8
