import { randomUUID } from 'node:crypto'
import { isDeepStrictEqual } from 'node:util'
import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.ts'
import type { Change } from '../../protocol/records.ts'
import type { DelOp, FailResult, Op, PutOp, RestoreOp, Result } from '../../protocol/ops.ts'
import { isRefusal, refuse } from './refusals.ts'
import { describeIssue } from '../../protocol/validate.ts'
import { recordKey, type RecordRow, type UserState } from '../store/rows.ts'
import type { CollectionRegistry, CollectionRule } from './collections.ts'
import { rowToChange } from './changes.ts'
import { clear, fork, regen } from './chat-ops.ts'
import type { RecordCodec } from './record-codec.ts'

/** Everything the planner needs that is not the ops themselves. */
export interface PlanContext {
  registry: CollectionRegistry
  /** Seals secret fields on the way in, opens them for the changes reported. */
  codec: RecordCodec
  maxRecordBytes: number
  trashRetentionMs: number
  now: number
}


/** A row about to be created: everything but what commit assigns. */
export type NewRow = Omit<RecordRow, 'seq' | 'updated_at' | 'created_seq'>

/**
 * Applies the ops of one user's pushes to an in-memory view of that user's rows, assigning
 * seqs from the locked counter. Pure apart from that view: the caller loads the rows (and the
 * children of every parent an op touches) and writes `dirty` back in the same transaction.
 * Every op checks everything first and changes rows only once it cannot be refused, so an op
 * applies whole or not at all.
 */
export class UserPlan {
  /** Rows as they will be after the batch, keyed by recordKey. */
  readonly dirty = new Map<string, RecordRow>()
  private readonly decoded = new WeakMap<RecordRow, Record<string, unknown>>()
  private readonly scopeCollections: Set<string> | null
  /** parent id → keys of its children (as loaded, plus those created in this batch). */
  private readonly childKeys = new Map<string, Set<string>>()

  constructor(
    readonly user: UserState,
    private readonly rows: Map<string, RecordRow>,
    readonly ctx: PlanContext,
  ) {
    this.scopeCollections = user.scope ? new Set(ctx.registry.collectionsIn(user.scope)) : null
    for (const [key, row] of rows) if (row.user_id === user.userId && row.parent_id !== null) this.indexChild(row.parent_id, key)
  }

  get seq(): number {
    return this.user.seq
  }

  /** Applies one op; `changes` receives the changes it produced, in seq order. */
  apply(op: Op, deviceId: string, changes: Change[]): Result {
    switch (op.op) {
      case 'put':
        return this.put(op, deviceId, changes)
      case 'del':
        return this.del(op, deviceId, changes)
      case 'restore':
        return this.restore(op, deviceId, changes)
      case 'regen':
        return regen(this, op, deviceId, changes)
      case 'fork':
        return fork(this, op, deviceId, changes)
      case 'clear':
        return clear(this, op, deviceId, changes)
    }
  }

  // ---- the view the ops work on -------------------------------------------------------------

  /** The collection's rule, or the refusal: unknown collection, or outside the user's scope. */
  rule(collection: string): CollectionRule | FailResult {
    const rule = this.ctx.registry.get(collection)
    if (!rule) return refuse('invalid', `unknown collection ${collection}`)
    if (this.scopeCollections && !this.scopeCollections.has(collection)) {
      return refuse('out_of_scope', `${collection} is outside this user's sync scope`)
    }
    return rule
  }

  row(collection: string, id: string): RecordRow | undefined {
    const key = recordKey(this.user.userId, collection, id)
    return this.dirty.get(key) ?? this.rows.get(key)
  }

  /** A row's data as the client sent it (secret fields opened): trash and restore deliver it live. */
  dataOf(row: RecordRow): Record<string, unknown> {
    let data = this.decoded.get(row)
    if (!data) {
      const stored = decodeMsgpack(row.data) as Record<string, unknown>
      const rule = this.ctx.registry.get(row.collection)
      this.decoded.set(row, (data = rule ? this.ctx.codec.open(rule, stored) : stored))
    }
    return data
  }

  /** A parent's children of one collection as they stand now, in creation order. */
  children(collection: string, parentId: string): RecordRow[] {
    const found: RecordRow[] = []
    for (const key of this.childKeys.get(parentId) ?? []) {
      const row = this.dirty.get(key) ?? this.rows.get(key)
      if (row && row.collection === collection && row.parent_id === parentId) found.push(row)
    }
    return found.sort((a, b) => a.created_seq - b.created_seq)
  }

  /**
   * Validates data against the collection's schema and the size limit; returns its stored
   * encoding, secret fields sealed. Checks apply to the plaintext, as the client sent it.
   */
  encodeData(rule: CollectionRule, data: Record<string, unknown>): Uint8Array | FailResult {
    const parsed = rule.schema.safeParse(data)
    if (!parsed.success) return refuse('invalid', `${rule.name} data: ${describeIssue(parsed.error)}`)
    const bytes = encodeMsgpack(data)
    if (bytes.byteLength > this.ctx.maxRecordBytes) {
      return refuse('too_large', `record data is ${bytes.byteLength} bytes, over the ${this.ctx.maxRecordBytes} limit`)
    }
    const stored = this.ctx.codec.seal(rule, data)
    return stored === data ? bytes : encodeMsgpack(stored)
  }

  /** A new row of `rule`'s collection, its parent taken from the data; `conflictOf` names the record a conflict copy stands beside. */
  fresh(rule: CollectionRule, row: { id: string; bytes: Uint8Array; data: Record<string, unknown>; deviceId: string; conflictOf?: string }): NewRow {
    return {
      user_id: this.user.userId,
      collection: rule.name,
      id: row.id,
      data: row.bytes,
      parent_id: rule.parentField ? String(row.data[rule.parentField]) : null,
      created_at: this.ctx.now,
      deleted_at: null,
      purge_at: null,
      replaced_by: null,
      conflict_of: row.conflictOf ?? null,
      device_id: row.deviceId,
      trashed_with: null,
    }
  }

  /** Creates a row under the next seq and reports it as a change. */
  create(row: NewRow, data: Record<string, unknown>, changes: Change[]): RecordRow {
    return this.commit({ ...row, created_seq: this.user.seq + 1 }, data, changes)
  }

  /** Stores a new version of a row under the next seq and reports it as a change. */
  commit(row: Omit<RecordRow, 'seq' | 'updated_at'>, data: Record<string, unknown>, changes: Change[]): RecordRow {
    const next: RecordRow = { ...row, seq: ++this.user.seq, updated_at: this.ctx.now }
    const key = recordKey(next.user_id, next.collection, next.id)
    this.decoded.set(next, data)
    this.dirty.set(key, next)
    if (next.parent_id !== null) this.indexChild(next.parent_id, key)
    changes.push(rowToChange(next, this.ctx.codec, data))
    return next
  }

  /** Moves a live row to the recycle bin; `trashedWith` names the parent it went with, `extra` sets more fields (replaced_by). */
  trash(row: RecordRow, deviceId: string, changes: Change[], opts: { extra?: Partial<RecordRow>; trashedWith?: string } = {}): RecordRow {
    const now = this.ctx.now
    return this.commit(
      { ...row, ...opts.extra, deleted_at: now, purge_at: now + this.ctx.trashRetentionMs, trashed_with: opts.trashedWith ?? null, device_id: deviceId },
      this.dataOf(row),
      changes,
    )
  }

  private indexChild(parentId: string, key: string): void {
    let set = this.childKeys.get(parentId)
    if (!set) this.childKeys.set(parentId, (set = new Set()))
    set.add(key)
  }

  // ---- put, del, restore ---------------------------------------------------------------------

  private put(op: PutOp, deviceId: string, changes: Change[]): Result {
    const rule = this.rule(op.collection)
    if (isRefusal(rule)) return rule
    const bytes = this.encodeData(rule, op.data)
    if (isRefusal(bytes)) return bytes
    const existing = this.row(op.collection, op.id)
    if (!existing) {
      const row = this.create(this.fresh(rule, { id: op.id, bytes, data: op.data, deviceId }), op.data, changes)
      return { ok: true, seq: row.seq, id: op.id }
    }
    if (rule.kind === 'append_only') return this.putStatus(rule, existing, { op, bytes, deviceId }, changes)
    if (op.base === undefined || op.base !== existing.seq) {
      // The cloud wins; the client's version is kept beside it, never merged.
      const copy = this.create(this.fresh(rule, { id: randomUUID(), bytes, data: op.data, deviceId, conflictOf: op.id }), op.data, changes)
      return { ok: true, seq: copy.seq, id: op.id, copy: copy.id }
    }
    if (existing.deleted_at !== null) return refuse('not_found', `${op.collection}/${op.id} is in the recycle bin; restore it first`)
    const parentId = rule.parentField ? String(op.data[rule.parentField]) : null
    const row = this.commit({ ...existing, data: bytes, parent_id: parentId, device_id: deviceId }, op.data, changes)
    return { ok: true, seq: row.seq, id: op.id }
  }

  /** Append-only records: only the status fields may change, whatever the base. */
  private putStatus(rule: CollectionRule, existing: RecordRow, put: { op: PutOp; bytes: Uint8Array; deviceId: string }, changes: Change[]): Result {
    const { op, bytes, deviceId } = put
    const stored = this.dataOf(existing)
    const status = new Set(rule.statusFields ?? [])
    const strip = (d: Record<string, unknown>) => Object.fromEntries(Object.entries(d).filter(([k]) => !status.has(k)))
    if (!isDeepStrictEqual(strip(stored), strip(op.data))) {
      return refuse('immutable', `${op.collection} are immutable: only ${[...status].join(', ') || 'nothing'} may change`)
    }
    if (existing.deleted_at !== null) return refuse('not_found', `${op.collection}/${op.id} is in the recycle bin; restore it first`)
    if (isDeepStrictEqual(stored, op.data)) return { ok: true, seq: existing.seq, id: op.id }
    const row = this.commit({ ...existing, data: bytes, device_id: deviceId }, op.data, changes)
    return { ok: true, seq: row.seq, id: op.id }
  }

  /** Deleting a parent (a conversation) takes its live children (messages) to the bin with it. */
  private del(op: DelOp, deviceId: string, changes: Change[]): Result {
    const rule = this.rule(op.collection)
    if (isRefusal(rule)) return rule
    const existing = this.row(op.collection, op.id)
    if (!existing) return refuse('not_found', `${op.collection}/${op.id} does not exist`)
    if (existing.deleted_at !== null) return { ok: true, seq: existing.seq, id: op.id }
    for (const child of this.ctx.registry.childrenOf(op.collection)) {
      for (const row of this.children(child.name, op.id)) if (row.deleted_at === null) this.trash(row, deviceId, changes, { trashedWith: op.id })
    }
    const row = this.trash(existing, deviceId, changes)
    return { ok: true, seq: row.seq, id: op.id }
  }

  /** Restoring a parent brings back the children that went to the bin with it, not others. */
  private restore(op: RestoreOp, deviceId: string, changes: Change[]): Result {
    const rule = this.rule(op.collection)
    if (isRefusal(rule)) return rule
    const existing = this.row(op.collection, op.id)
    if (!existing) return refuse('not_found', `${op.collection}/${op.id} does not exist`)
    if (existing.deleted_at === null) return { ok: true, seq: existing.seq, id: op.id }
    let row = this.untrash(existing, deviceId, changes)
    for (const child of this.ctx.registry.childrenOf(op.collection)) {
      for (const c of this.children(child.name, op.id)) if (c.deleted_at !== null && c.trashed_with === op.id) row = this.untrash(c, deviceId, changes)
    }
    return { ok: true, seq: row.seq, id: op.id }
  }

  private untrash(row: RecordRow, deviceId: string, changes: Change[]): RecordRow {
    return this.commit({ ...row, deleted_at: null, purge_at: null, trashed_with: null, device_id: deviceId }, this.dataOf(row), changes)
  }
}
