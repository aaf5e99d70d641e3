import type { Change } from '../../../protocol/records.ts'
import type { Op } from '../../../protocol/ops.ts'

/**
 * The client's persistent state, behind one port with three adapters (memory, a file directory
 * for Node, IndexedDB for browsers) that pass one contract suite (test/client/storage-contract.ts).
 */
export interface Meta {
  /** The device id this state belongs to (its mids are counted per device). */
  deviceId?: string
  /** `to` of the last batch the app's handler applied: where the stream resumes. */
  cursor: number
  /** The history `cursor` belongs to. */
  epoch?: string
  /** The mid the next enqueued op gets. */
  nextMid: number
  /** Set once the hub's count of this device's mids was checked against `nextMid` (see Outbox). */
  midsConfirmed?: boolean
  /** The refresh token of a username/password login (rotated on every refresh). */
  refreshToken?: string
  /** The sync scope (keys) whose records this device holds. */
  scope?: string[]
  /** Free slots for the app or a command built on the client (e.g. `synchub push`'s progress). */
  app?: Record<string, unknown>
}

/** An op in the outbox: it has its mid from the moment it was enqueued. */
export interface OutboxEntry {
  mid: number
  op: Op
  /** Local time of the enqueue (ms). */
  at: number
}

export type StoredRecord = Change

export interface Snapshot {
  meta: Meta
  /** In mid order. */
  outbox: OutboxEntry[]
  /** The local view's records (empty unless the client keeps a view). */
  records: StoredRecord[]
}

/**
 * One atomic change: after a crash either all of it is there or none of it. Meta fields are
 * merged (a field set to null is removed); records are keyed by collection and id.
 */
export interface WriteBatch {
  meta?: { [K in keyof Meta]?: Meta[K] | null }
  putOps?: OutboxEntry[]
  deleteOps?: number[]
  /** Drop every record of these collections (all records when true), before putRecords. */
  clearRecords?: true | string[]
  putRecords?: StoredRecord[]
  deleteRecords?: Array<{ collection: string; id: string }>
}

export interface StorageAdapter {
  /** Reads the whole state (an empty one the first time). Called once, before any write. */
  load(): Promise<Snapshot>
  /** Applies one batch atomically and durably; writes are applied in call order. */
  write(batch: WriteBatch): Promise<void>
  /** Releases the storage (locks, handles); the adapter is unusable afterwards. */
  close(): Promise<void>
}

export const emptySnapshot = (): Snapshot => ({ meta: { cursor: 0, nextMid: 1 }, outbox: [], records: [] })

export const recordKey = (collection: string, id: string): string => `${collection}\u0000${id}`

/**
 * Applies a batch to the in-memory maps: the one meaning of a batch, shared by the adapters.
 * Inside a batch deletions come first, then puts (so a renumbered op or a re-put record stays).
 */
export function applyBatch(meta: Meta, batch: WriteBatch, records: Map<string, StoredRecord>, outbox: Map<number, OutboxEntry>): void {
  if (batch.meta) {
    const m = meta as unknown as Record<string, unknown>
    for (const [k, v] of Object.entries(batch.meta)) {
      if (v === null) delete m[k]
      else if (v !== undefined) m[k] = structuredClone(v)
    }
  }
  for (const mid of batch.deleteOps ?? []) outbox.delete(mid)
  for (const e of batch.putOps ?? []) outbox.set(e.mid, structuredClone(e))
  if (batch.clearRecords === true) records.clear()
  else if (batch.clearRecords) {
    const drop = new Set(batch.clearRecords)
    for (const [k, r] of records) if (drop.has(r.collection)) records.delete(k)
  }
  for (const r of batch.deleteRecords ?? []) records.delete(recordKey(r.collection, r.id))
  for (const r of batch.putRecords ?? []) records.set(recordKey(r.collection, r.id), structuredClone(r))
}

/**
 * Merges batches in order into one with the same meaning (deletions before puts, as applyBatch
 * reads a batch), in time linear in their sizes: the writer folds thousands of enqueues into one
 * write this way.
 */
export class BatchBuilder {
  private meta: Record<string, unknown> | undefined
  private readonly opPuts = new Map<number, OutboxEntry>()
  private readonly opDeletes = new Set<number>()
  private clearAll = false
  private readonly clearCols = new Set<string>()
  private readonly recPuts = new Map<string, StoredRecord>()
  private readonly recDeletes = new Map<string, { collection: string; id: string }>()

  add(b: WriteBatch): this {
    if (b.meta) this.meta = { ...this.meta, ...b.meta }
    for (const mid of b.deleteOps ?? []) {
      this.opPuts.delete(mid)
      this.opDeletes.add(mid)
    }
    for (const e of b.putOps ?? []) this.opPuts.set(e.mid, e)
    if (b.clearRecords === true) {
      this.clearAll = true
      this.recPuts.clear()
      this.recDeletes.clear()
    } else if (b.clearRecords) {
      const cols = new Set(b.clearRecords)
      for (const c of cols) this.clearCols.add(c)
      for (const [k, r] of this.recPuts) if (cols.has(r.collection)) this.recPuts.delete(k)
      for (const [k, r] of this.recDeletes) if (cols.has(r.collection)) this.recDeletes.delete(k)
    }
    for (const r of b.deleteRecords ?? []) {
      const key = recordKey(r.collection, r.id)
      this.recPuts.delete(key)
      this.recDeletes.set(key, r)
    }
    for (const r of b.putRecords ?? []) this.recPuts.set(recordKey(r.collection, r.id), r)
    return this
  }

  build(): WriteBatch {
    const out: WriteBatch = {}
    if (this.meta) out.meta = this.meta as WriteBatch['meta']
    if (this.opDeletes.size) out.deleteOps = [...this.opDeletes]
    if (this.opPuts.size) out.putOps = [...this.opPuts.values()].sort((x, y) => x.mid - y.mid)
    if (this.clearAll) out.clearRecords = true
    else if (this.clearCols.size) out.clearRecords = [...this.clearCols]
    if (this.recDeletes.size) out.deleteRecords = [...this.recDeletes.values()]
    if (this.recPuts.size) out.putRecords = [...this.recPuts.values()]
    return out
  }
}

/** Batch `b` applied after batch `a`, as one batch. */
export function mergeBatches(a: WriteBatch, b: WriteBatch): WriteBatch {
  return new BatchBuilder().add(a).add(b).build()
}
