/**
 * A reference model of one user's synced records, written from the v1 contract
 * (../shared/design/PROTOCOL.md) and the hub's documented decisions (protocol/PROTOCOL.md), not
 * from src/. It applies ops one by one, as the hub commits them for a single user whose pushes
 * arrive one after another, and predicts every Result (seq included: the user's seq is gapless
 * and in commit order) and the record set that follows.
 *
 * Ids the hub chooses (conflict copies, fork copies) are not predictable: the model names them
 * with placeholders (`?copy@<seq>`, `?fork@<seq>`) until the test binds them to the real ids.
 */
import { isDeepStrictEqual } from 'node:util'
import type { Op } from '../../protocol/ops.ts'

export type Data = Record<string, unknown>

/** Every scope key, in the hub's order: the default scope of a new user. */
export const ALL_SCOPE_KEYS = ['chat.history', 'characters.cards', 'characters.per_settings', 'providers.config', 'providers.keys', 'user.text_inputs', 'user.settings']

/** The collections of the built-in registry and their scope keys. */
export const COLLECTION_SCOPE: Record<string, string> = {
  conversations: 'chat.history',
  messages: 'chat.history',
  characters: 'characters.cards',
  character_settings: 'characters.per_settings',
  providers: 'providers.config',
  provider_keys: 'providers.keys',
  text_inputs: 'user.text_inputs',
  settings: 'user.settings',
}

/** The only fields of a message a later put may change. */
const STATUS_FIELDS = new Set(['status', 'delivered_at'])
const MESSAGE_ROLES = new Set(['user', 'assistant', 'system', 'tool'])
const MESSAGE_STATUSES = new Set(['sending', 'sent', 'failed', 'delivered'])

export interface MRecord {
  collection: string
  id: string
  data: Data
  /** The seq of the latest version. */
  rev: number
  /** The seq that created it: creation order inside a conversation. */
  createdSeq: number
  deleted: boolean
  replacedBy?: string
  conflictOf?: string
  /** messages: the conversation (data.conversation_id). */
  parent?: string
  /** In the bin because this conversation was deleted: restoring it brings the record back. */
  trashedWith?: string
  /** The device whose push produced the latest version. */
  deviceId: string
}

/** A predicted Result; `message` of refusals is for humans and not predicted. */
export type Expected = { ok: true; seq: number; id: string; copy?: string; dup?: true } | { ok: false; code: string; dup?: true }

/** A record as compared between the model, the server and a device. */
export interface Normalized {
  collection: string
  id: string
  rev: number
  deleted: boolean
  replaced_by?: string
  conflict_of?: string
  device_id?: string
  data: Data
}

export const isPlaceholder = (id: string | undefined): boolean => id !== undefined && id.startsWith('?')
const keyOf = (collection: string, id: string) => `${collection}/${id}`
const refuse = (code: string): Expected => ({ ok: false, code })
const strip = (d: Data) => Object.fromEntries(Object.entries(d).filter(([k]) => !STATUS_FIELDS.has(k)))

/** Per-collection minimum data (protocol/PROTOCOL.md "Collections"); undefined when valid. */
function schemaProblem(collection: string, data: Data): string | undefined {
  const str = (v: unknown) => typeof v === 'string'
  switch (collection) {
    case 'conversations':
      return str(data.title) ? undefined : 'title'
    case 'messages': {
      const c = data.conversation_id
      if (!str(c) || (c as string).length < 1 || (c as string).length > 200) return 'conversation_id'
      if (!MESSAGE_ROLES.has(data.role as string)) return 'role'
      if (!str(data.content)) return 'content'
      if (data.status !== undefined && !MESSAGE_STATUSES.has(data.status as string)) return 'status'
      if (data.delivered_at !== undefined && !(Number.isInteger(data.delivered_at) && (data.delivered_at as number) >= 0)) return 'delivered_at'
      return undefined
    }
    case 'characters':
      return str(data.name) ? undefined : 'name'
    case 'settings':
    case 'text_inputs':
    case 'character_settings':
      return data.value !== undefined ? undefined : 'value'
    case 'providers':
      return str(data.name) ? undefined : 'name'
    case 'provider_keys':
      return str(data.provider) && (data.provider as string).length > 0 && str(data.key) ? undefined : 'provider/key'
    default:
      return 'collection'
  }
}

interface DeviceMids {
  lastMid: number
  /** The first answer of every mid the hub applied (or refused): what a replay gets back. */
  answers: Map<number, Expected>
}

export class SyncModel {
  seq = 0
  scope: string[] = [...ALL_SCOPE_KEYS]
  /** Every record ever created (nothing is purged during a run), in creation order. */
  readonly records = new Map<string, MRecord>()
  readonly devices = new Map<string, DeviceMids>()
  /** Ids of records created by acked, non-replayed ops (a replay never adds to it). */
  readonly created = new Set<string>()

  clone(): SyncModel {
    const m = new SyncModel()
    m.seq = this.seq
    m.scope = [...this.scope]
    for (const [k, r] of this.records) m.records.set(k, { ...r, data: structuredClone(r.data) })
    for (const [d, s] of this.devices) m.devices.set(d, { lastMid: s.lastMid, answers: new Map([...s.answers].map(([mid, a]) => [mid, { ...a }])) })
    for (const id of this.created) m.created.add(id)
    return m
  }

  /** Puts `other`'s state into this model (undoing predictions the hub never applied). */
  restoreFrom(other: SyncModel): void {
    const c = other.clone()
    this.seq = c.seq
    this.scope = c.scope
    this.records.clear()
    for (const [k, r] of c.records) this.records.set(k, r)
    this.devices.clear()
    for (const [d, s] of c.devices) this.devices.set(d, s)
    this.created.clear()
    for (const id of c.created) this.created.add(id)
  }

  inScope(collection: string): boolean {
    const key = COLLECTION_SCOPE[collection]
    return key !== undefined && this.scope.includes(key)
  }

  /** Collections the current scope covers. */
  scopeCollections(): Set<string> {
    return new Set(Object.keys(COLLECTION_SCOPE).filter((c) => this.inScope(c)))
  }

  get(collection: string, id: string): MRecord | undefined {
    return this.records.get(keyOf(collection, id))
  }

  /** Records with real (bound) ids, optionally of one collection, in creation order. */
  known(collection?: string): MRecord[] {
    return [...this.records.values()].filter((r) => !isPlaceholder(r.id) && (collection === undefined || r.collection === collection))
  }

  /** A conversation's messages (live and binned), in creation order. */
  messagesOf(conversation: string): MRecord[] {
    return [...this.records.values()].filter((r) => r.collection === 'messages' && r.parent === conversation).sort((a, b) => a.createdSeq - b.createdSeq)
  }

  liveMessagesOf(conversation: string): MRecord[] {
    return this.messagesOf(conversation).filter((m) => !m.deleted)
  }

  lastMid(deviceId: string): number {
    return this.devices.get(deviceId)?.lastMid ?? 0
  }

  answerOf(deviceId: string, mid: number): Expected | undefined {
    return this.devices.get(deviceId)?.answers.get(mid)
  }

  /** Replaces a placeholder id with the id the hub chose, everywhere it appears. */
  bind(placeholder: string, realId: string): void {
    for (const [k, r] of [...this.records]) {
      if (r.id !== placeholder) continue
      this.records.delete(k)
      // Re-insert at the same position is not needed: creation order comes from createdSeq.
      r.id = realId
      this.records.set(keyOf(r.collection, realId), r)
    }
    for (const r of this.records.values()) {
      if (r.parent === placeholder) r.parent = realId
      if (r.conflictOf === placeholder) r.conflictOf = realId
      if (r.replacedBy === placeholder) r.replacedBy = realId
      if (r.trashedWith === placeholder) r.trashedWith = realId
      // A fork of a fork in one push: the copy of a copy names it in forked_from.
      if (r.data.forked_from === placeholder) r.data.forked_from = realId
    }
    for (const d of this.devices.values()) for (const a of d.answers.values()) if (a.ok && a.copy === placeholder) a.copy = realId
    if (this.created.delete(placeholder)) this.created.add(realId)
  }

  /** Placeholders still unbound, oldest first. */
  placeholders(): MRecord[] {
    return [...this.records.values()].filter((r) => isPlaceholder(r.id)).sort((a, b) => a.createdSeq - b.createdSeq)
  }

  /**
   * Applies one op pushed by `deviceId` and returns the Result the hub owes it. The mid rule
   * comes first: a replay answers its first answer with `dup`, a gap is `out_of_order` and uses
   * nothing up, and any other op (applied or refused) uses up its mid.
   */
  apply(deviceId: string, op: Op): Expected {
    let dev = this.devices.get(deviceId)
    if (!dev) this.devices.set(deviceId, (dev = { lastMid: 0, answers: new Map() }))
    if (op.mid <= dev.lastMid) {
      const first = dev.answers.get(op.mid)
      if (!first) throw new Error(`model: no first answer for mid ${op.mid} of ${deviceId}`)
      return { ...first, dup: true }
    }
    if (op.mid !== dev.lastMid + 1) return refuse('out_of_order')
    const result = this.applyOp(deviceId, op)
    dev.lastMid = op.mid
    dev.answers.set(op.mid, { ...result })
    return result
  }

  private applyOp(deviceId: string, op: Op): Expected {
    switch (op.op) {
      case 'put':
        return this.put(deviceId, op.collection, op.id, op.data, op.base)
      case 'del':
        return this.del(deviceId, op.collection, op.id)
      case 'restore':
        return this.restore(deviceId, op.collection, op.id)
      case 'regen':
        return this.regen(deviceId, op.conversation, op.old, op.message.id, op.message.data)
      case 'fork':
        return this.fork(deviceId, op.from.conversation, op.from.message, op.conversation.id, op.conversation.data)
      case 'clear':
        return this.clear(deviceId, op.conversation)
    }
  }

  /** Unknown collection `invalid`, outside the scope `out_of_scope`. */
  private ruleProblem(collection: string): Expected | undefined {
    if (COLLECTION_SCOPE[collection] === undefined) return refuse('invalid')
    if (!this.inScope(collection)) return refuse('out_of_scope')
    return undefined
  }

  private create(deviceId: string, collection: string, id: string, data: Data, conflictOf?: string): MRecord {
    const seq = ++this.seq
    const rec: MRecord = {
      collection,
      id,
      data: structuredClone(data),
      rev: seq,
      createdSeq: seq,
      deleted: false,
      deviceId,
      ...(conflictOf !== undefined ? { conflictOf } : {}),
      ...(collection === 'messages' ? { parent: String(data.conversation_id) } : {}),
    }
    this.records.set(keyOf(collection, id), rec)
    this.created.add(id)
    return rec
  }

  private trash(deviceId: string, rec: MRecord, trashedWith?: string, replacedBy?: string): void {
    rec.deleted = true
    rec.rev = ++this.seq
    rec.deviceId = deviceId
    rec.trashedWith = trashedWith
    if (replacedBy !== undefined) rec.replacedBy = replacedBy
  }

  private untrash(deviceId: string, rec: MRecord): void {
    rec.deleted = false
    rec.rev = ++this.seq
    rec.deviceId = deviceId
    rec.trashedWith = undefined
  }

  private put(deviceId: string, collection: string, id: string, data: Data, base: number | undefined): Expected {
    const problem = this.ruleProblem(collection)
    if (problem) return problem
    if (schemaProblem(collection, data)) return refuse('invalid')
    const existing = this.get(collection, id)
    if (!existing) {
      const rec = this.create(deviceId, collection, id, data)
      return { ok: true, seq: rec.rev, id }
    }
    if (collection === 'messages') {
      // Append-only: base is ignored; only the status fields may change.
      if (!isDeepStrictEqual(strip(existing.data), strip(data))) return refuse('immutable')
      if (existing.deleted) return refuse('not_found')
      if (isDeepStrictEqual(existing.data, data)) return { ok: true, seq: existing.rev, id }
      existing.data = structuredClone(data)
      existing.rev = ++this.seq
      existing.deviceId = deviceId
      return { ok: true, seq: existing.rev, id }
    }
    if (base === undefined || base !== existing.rev) {
      // Stale (or no) base: the cloud wins, the client's version becomes a conflict copy.
      const copy = this.create(deviceId, collection, `?copy@${this.seq + 1}`, data, id)
      return { ok: true, seq: copy.rev, id, copy: copy.id }
    }
    if (existing.deleted) return refuse('not_found')
    existing.data = structuredClone(data)
    existing.rev = ++this.seq
    existing.deviceId = deviceId
    return { ok: true, seq: existing.rev, id }
  }

  private del(deviceId: string, collection: string, id: string): Expected {
    const problem = this.ruleProblem(collection)
    if (problem) return problem
    const existing = this.get(collection, id)
    if (!existing) return refuse('not_found')
    if (existing.deleted) return { ok: true, seq: existing.rev, id }
    // A conversation takes its live messages with it: their changes first, its own last.
    if (collection === 'conversations') for (const m of this.liveMessagesOf(id)) this.trash(deviceId, m, id)
    this.trash(deviceId, existing)
    return { ok: true, seq: existing.rev, id }
  }

  private restore(deviceId: string, collection: string, id: string): Expected {
    const problem = this.ruleProblem(collection)
    if (problem) return problem
    const existing = this.get(collection, id)
    if (!existing) return refuse('not_found')
    if (!existing.deleted) return { ok: true, seq: existing.rev, id }
    this.untrash(deviceId, existing)
    let seq = existing.rev
    // Exactly the messages that went to the bin with the conversation come back.
    if (collection === 'conversations') {
      for (const m of this.messagesOf(id)) {
        if (m.deleted && m.trashedWith === id) {
          this.untrash(deviceId, m)
          seq = m.rev
        }
      }
    }
    return { ok: true, seq, id }
  }

  /** Both chat collections must be in scope; the conversation must exist and be live. */
  private liveConversation(id: string): Expected | MRecord {
    const problem = this.ruleProblem('conversations') ?? this.ruleProblem('messages')
    if (problem) return problem
    const conv = this.get('conversations', id)
    if (!conv || conv.deleted) return refuse('not_found')
    return conv
  }

  private regen(deviceId: string, conversation: string, old: string, newId: string, data: Data): Expected {
    const conv = this.liveConversation(conversation)
    if ('ok' in conv) return conv
    const newest = this.liveMessagesOf(conversation).at(-1)
    if (!newest || newest.id !== old) return refuse('invalid')
    if (newest.data.role !== 'assistant') return refuse('invalid')
    if (data.conversation_id !== conversation) return refuse('invalid')
    if (this.get('messages', newId)) return refuse('invalid')
    if (schemaProblem('messages', data)) return refuse('invalid')
    this.trash(deviceId, newest, undefined, newId)
    const rec = this.create(deviceId, 'messages', newId, data)
    return { ok: true, seq: rec.rev, id: newId }
  }

  private fork(deviceId: string, source: string, at: string, newId: string, data: Data): Expected {
    const conv = this.liveConversation(source)
    if ('ok' in conv) return conv
    const point = this.get('messages', at)
    if (!point || point.parent !== source) return refuse('invalid')
    if (point.deleted) return refuse('not_found')
    if (this.get('conversations', newId)) return refuse('invalid')
    const convData = { ...data, parent_conversation_id: source, fork_from_message_id: at }
    if (schemaProblem('conversations', convData)) return refuse('invalid')
    const history = this.liveMessagesOf(source).filter((m) => m.createdSeq <= point.createdSeq)
    let last = this.create(deviceId, 'conversations', newId, convData)
    for (const m of history) {
      const copy = { ...structuredClone(m.data), conversation_id: newId, forked_from: m.id }
      last = this.create(deviceId, 'messages', `?fork@${this.seq + 1}`, copy)
    }
    return { ok: true, seq: last.rev, id: newId }
  }

  private clear(deviceId: string, conversation: string): Expected {
    const conv = this.liveConversation(conversation)
    if ('ok' in conv) return conv
    let seq = conv.rev
    for (const m of this.liveMessagesOf(conversation)) {
      this.trash(deviceId, m)
      seq = m.rev
    }
    return { ok: true, seq, id: conversation }
  }

  /** The record set as the server should show it (optionally only some collections), sorted. */
  snapshot(collections?: Set<string>): Normalized[] {
    return sortNormalized(
      [...this.records.values()]
        .filter((r) => !collections || collections.has(r.collection))
        .map((r) => ({
          collection: r.collection,
          id: r.id,
          rev: r.rev,
          deleted: r.deleted,
          ...(r.replacedBy !== undefined ? { replaced_by: r.replacedBy } : {}),
          ...(r.conflictOf !== undefined ? { conflict_of: r.conflictOf } : {}),
          device_id: r.deviceId,
          data: r.data,
        })),
    )
  }
}

/** A Change (as the hub sends it) in the model's terms. */
export function normalizeChange(c: {
  collection: string
  id: string
  rev: number
  data: Data
  deleted_at?: number
  replaced_by?: string
  conflict_of?: string
  device_id?: string
}): Normalized {
  return {
    collection: c.collection,
    id: c.id,
    rev: c.rev,
    deleted: c.deleted_at !== undefined,
    ...(c.replaced_by !== undefined ? { replaced_by: c.replaced_by } : {}),
    ...(c.conflict_of !== undefined ? { conflict_of: c.conflict_of } : {}),
    ...(c.device_id !== undefined ? { device_id: c.device_id } : {}),
    data: c.data,
  }
}

export function sortNormalized<T extends { collection: string; id: string }>(items: T[]): T[] {
  return [...items].sort((a, b) => (a.collection === b.collection ? (a.id < b.id ? -1 : a.id > b.id ? 1 : 0) : a.collection < b.collection ? -1 : 1))
}

/** Whether a hub Result matches the prediction: same outcome, code, seq, id, copy and dup (message ignored). */
export function resultMatches(expected: Expected, actual: Record<string, unknown>): boolean {
  if (actual.ok !== expected.ok) return false
  if ((actual.dup === true) !== (expected.dup === true)) return false
  if (!expected.ok) return actual.code === expected.code
  if (actual.seq !== expected.seq || actual.id !== expected.id) return false
  if (expected.copy === undefined) return actual.copy === undefined
  if (isPlaceholder(expected.copy)) return typeof actual.copy === 'string' && actual.copy.length > 0
  return actual.copy === expected.copy
}
