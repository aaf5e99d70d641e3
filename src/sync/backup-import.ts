import { createHash, randomBytes } from 'node:crypto'
import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.ts'
import { HubError } from '../../protocol/errors.ts'
import type { BackupRecord, ImportMode, ImportResult } from '../../protocol/backup.ts'
import type { Bus } from '../bus/port.ts'
import type { BackupStore } from '../store/backup-store.ts'
import { recordKey, type RecordRow } from '../store/rows.ts'
import { backupScopes } from './backup-scopes.ts'
import { stageBackup, type StagedBackup } from './backup-stage.ts'
import type { CollectionRule } from './collections.ts'
import type { RecordCodec } from './record-codec.ts'

export interface ImportOptions {
  store: BackupStore
  /** The collections, and the key box that seals and opens their secret fields. */
  codec: RecordCodec
  userId: string
  mode: ImportMode
  /** Narrows the file's scopes; records outside are skipped. Default: all the file holds. */
  scopes?: string[]
  /** The device the import's own changes are attributed to (conflict copies, binned records). */
  deviceId?: string
  maxRecordBytes: number
  maxBytes: number
  trashRetentionMs: number
  now?: () => number
  /** Records per statement while applying. */
  batchSize?: number
  tmpDir?: string
  /** `read`: records checked as the file arrives (of the header's estimate); `apply`: records written, of all staged. */
  onProgress?: (p: { phase: 'read' | 'apply'; records: number; total?: number }) => void
}

/** The result, plus what the caller needs to tell the cluster. */
export interface ImportOutcome extends ImportResult {
  /** The user's seq before the import: the changes are (from, cursor]. */
  from: number
  /** Overwrite: the history was replaced under a new epoch. */
  replaced: boolean
}

/**
 * `POST /v1/import` and `synchub import`. The file is read and checked whole first (staged,
 * see backup-stage), then applied in ONE transaction: every record gets a seq from the user's
 * counter like a push, so it reaches devices through the normal stream, and a failure anywhere
 * leaves nothing changed.
 *
 * merge: a record whose id is new is written as in the file; one whose stored data is the same
 * is skipped; one whose data differs becomes a conflict copy (`conflict_of` = its id; the stored
 * version stays). The copy's id is derived from the record, so replaying the import finds the
 * copy and skips it instead of making another.
 * overwrite: every record of the chosen scopes is written as in the file (replacing the stored
 * one), the scopes' other live records go to the recycle bin, and the user's epoch changes.
 */
export async function importBackup(body: AsyncIterable<Uint8Array>, opts: ImportOptions): Promise<ImportOutcome> {
  const registry = opts.codec.registry
  const requested = opts.scopes ? backupScopes(registry, opts.scopes) : undefined
  const staged = await stageBackup(body, {
    codec: opts.codec,
    maxRecordBytes: opts.maxRecordBytes,
    maxBytes: opts.maxBytes,
    tmpDir: opts.tmpDir,
    onProgress: (p) => opts.onProgress?.({ phase: 'read', ...p }),
    accept: (header) => {
      const outside = requested?.scopes.filter((s) => !header.scopes.includes(s)) ?? []
      if (outside.length > 0) throw new HubError('invalid', `scopes: the backup does not cover ${outside.join(', ')} (it has ${header.scopes.join(', ')})`)
      const chosen = requested?.scopes ?? header.scopes.filter((s) => registry.scopeKeys().includes(s))
      return new Set(registry.collectionsIn(chosen).filter((c) => header.collections.includes(c)))
    },
  })
  try {
    return await apply(staged, opts)
  } finally {
    await staged.discard()
  }
}

/** Tells every node: an overwrite resets the user's sockets; any import pokes the feeds to read the new changes. */
export function announceImport(bus: Pick<Bus, 'publish' | 'publishControl'>, userId: string, outcome: ImportOutcome): void {
  if (outcome.replaced) bus.publishControl({ type: 'user_reset', user: userId, reason: 'epoch_changed', epoch: outcome.epoch })
  // A poke (no changes): an import can be far larger than a bus message, so each node reads it from the store.
  if (outcome.cursor > outcome.from) bus.publish({ user: userId, from: outcome.from, to: outcome.cursor })
}

async function apply(staged: StagedBackup, opts: ImportOptions): Promise<ImportOutcome> {
  const now = (opts.now ?? Date.now)()
  const batchSize = opts.batchSize ?? 500
  const counts = { imported: 0, copies: 0, skipped: staged.outside, trashed: 0 }
  const registry = opts.codec.registry
  return opts.store.importTransaction(async (writer) => {
    const user = await writer.lockUser(opts.userId)
    if (!user) throw new HubError('unauthorized', 'unknown user')
    const base = user.seq
    let seq = base
    const toRow = (r: BackupRecord, rule: CollectionRule, over: Partial<RecordRow> = {}): RecordRow => ({
      user_id: opts.userId,
      collection: r.collection,
      id: r.id,
      seq: ++seq,
      data: encodeMsgpack(r.data),
      parent_id: rule.parentField ? String(r.data[rule.parentField]) : null,
      created_at: r.created_at,
      updated_at: r.updated_at,
      deleted_at: r.deleted_at ?? null,
      purge_at: r.deleted_at === undefined ? null : (r.purge_at ?? r.deleted_at + opts.trashRetentionMs),
      replaced_by: r.replaced_by ?? null,
      conflict_of: r.conflict_of ?? null,
      device_id: r.device_id ?? null,
      // The file's creation order for now; renumberCreated turns it into this user's seqs.
      created_seq: r.order,
      trashed_with: r.deleted_at === undefined ? null : (r.trashed_with ?? null),
      ...over,
    })
    let applied = 0
    for await (const batch of batches(staged.records(), batchSize)) {
      const plain = batch.map((r) => ({ r, rule: registry.get(r.collection)!, data: undefined as Record<string, unknown> | undefined }))
      const keys = batch.map((r) => ({ collection: r.collection, id: r.id }))
      if (opts.mode === 'merge') {
        for (const p of plain) {
          p.data = opts.codec.open(p.rule, p.r.data)
          keys.push({ collection: p.r.collection, id: copyIdOf(p.r.collection, p.r.id, p.data) })
        }
      }
      const stored = new Map((await writer.load(opts.userId, keys)).map((row) => [recordKey(row.user_id, row.collection, row.id), row]))
      const written = new Map<string, RecordRow>()
      const put = (row: RecordRow) => {
        const key = recordKey(row.user_id, row.collection, row.id)
        stored.set(key, row)
        written.set(key, row)
      }
      for (const { r, rule, data } of plain) {
        const existing = stored.get(recordKey(opts.userId, r.collection, r.id))
        if (opts.mode === 'overwrite' || !existing) {
          put(toRow(r, rule))
          counts.imported++
          continue
        }
        if (sameContent(rule, opts.codec.open(rule, decodeMsgpack(existing.data) as Record<string, unknown>), data!)) {
          counts.skipped++
          continue
        }
        const copyId = copyIdOf(r.collection, r.id, data!)
        if (stored.has(recordKey(opts.userId, r.collection, copyId))) {
          counts.skipped++ // this clash was turned into a copy by an earlier run of the same import
          continue
        }
        put(
          toRow(r, rule, {
            id: copyId,
            conflict_of: r.id,
            created_at: now,
            updated_at: now,
            replaced_by: null,
            trashed_with: null,
            device_id: opts.deviceId ?? null,
          }),
        )
        counts.copies++
      }
      await writer.write([...written.values()])
      applied += batch.length
      opts.onProgress?.({ phase: 'apply', records: applied, total: staged.staged })
    }
    if (seq > base) await writer.renumberCreated(opts.userId, base)
    let epoch = user.epoch
    if (opts.mode === 'overwrite') {
      const collections = [...staged.collections]
      counts.trashed = await writer.trashUntouched(opts.userId, {
        base,
        seq,
        collections,
        now,
        purgeAt: now + opts.trashRetentionMs,
        deviceId: opts.deviceId ?? null,
        parents: registry
          .all()
          .filter((r) => r.parentCollection && collections.includes(r.name))
          .map((r) => ({ child: r.name, parent: r.parentCollection! })),
      })
      seq += counts.trashed
      epoch = randomBytes(9).toString('base64url')
      // Every cursor of the old history is now invalid, with or without its epoch.
      await writer.finish(opts.userId, seq, { epoch, minValidSeq: base + 1 })
    } else if (seq > base) {
      await writer.finish(opts.userId, seq)
    }
    return { ...counts, cursor: seq, epoch, from: base, replaced: opts.mode === 'overwrite' }
  })
}

async function* batches<T>(items: AsyncIterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = []
  for await (const item of items) {
    batch.push(item)
    if (batch.length === size) {
      yield batch
      batch = []
    }
  }
  if (batch.length > 0) yield batch
}

/** Messages may differ in their status fields alone and still be the same message (a push would apply that). */
function sameContent(rule: CollectionRule, stored: Record<string, unknown>, incoming: Record<string, unknown>): boolean {
  if (rule.kind === 'append_only' && rule.statusFields?.length) {
    const strip = (d: Record<string, unknown>) => Object.fromEntries(Object.entries(d).filter(([k]) => !rule.statusFields!.includes(k)))
    return canonicalJson(strip(stored)) === canonicalJson(strip(incoming))
  }
  return canonicalJson(stored) === canonicalJson(incoming)
}

/** The conflict copy's id: a UUID (version 8, name-based) of the record's identity and content. */
export function copyIdOf(collection: string, id: string, data: Record<string, unknown>): string {
  const h = createHash('sha256').update(`synchub-import-copy\u0000${collection}\u0000${id}\u0000${canonicalJson(data)}`).digest()
  h[6] = (h[6]! & 0x0f) | 0x80
  h[8] = (h[8]! & 0x3f) | 0x80
  const hex = h.subarray(0, 16).toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** JSON with map keys sorted: equal values, however their keys were ordered, give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v) || ArrayBuffer.isView(v)) return v
    const sorted: Record<string, unknown> = {}
    for (const k of Object.keys(v).sort()) sorted[k] = (v as Record<string, unknown>)[k]
    return sorted
  })
}
