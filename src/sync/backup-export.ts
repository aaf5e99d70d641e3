import { decodeMsgpack } from '../../protocol/codec.ts'
import { BACKUP_VERSION, type BackupHeader, type BackupRecord, type BackupTrailer } from '../../protocol/backup.ts'
import type { RecordRow } from '../store/rows.ts'
import type { BackupStore, ExportCursor } from '../store/backup-store.ts'
import { backupScopes } from './backup-scopes.ts'
import type { RecordCodec } from './record-codec.ts'

export interface ExportOptions {
  store: BackupStore
  /** The collections, and the key box that opens their secret fields. */
  codec: RecordCodec
  user: { id: string; username?: string }
  /** Scope keys to export; every key by default. */
  scopes?: string[]
  now?: () => number
  pageRows?: number
  /** Stored data bytes per page: what one read (and one written chunk) holds at most. */
  pageBytes?: number
  /** After each page: records written so far, of about `total`. */
  onProgress?: (p: { records: number; total: number }) => void
}

export interface PreparedExport {
  header: BackupHeader
  /** The file as chunks of whole lines: the header, a chunk per page, the trailer. */
  lines: AsyncGenerator<string, void, undefined>
}

/**
 * Prepares an export: checks the scopes (so a bad request fails before anything is sent) and
 * counts the records for progress. The lines are produced as they are pulled: each page is read
 * from the store only when the consumer asks for more, so a slow reader holds one page at most.
 */
export async function prepareExport(opts: ExportOptions): Promise<PreparedExport> {
  const { scopes, collections } = backupScopes(opts.codec.registry, opts.scopes)
  const reader = opts.store.reader
  const total = await reader.count(opts.user.id, collections)
  const header: BackupHeader = {
    synchub_backup: BACKUP_VERSION,
    exported_at: (opts.now ?? Date.now)(),
    ...(opts.user.username !== undefined ? { user: { id: opts.user.id, username: opts.user.username } } : {}),
    scopes,
    collections,
    records: total,
  }
  const pageRows = opts.pageRows ?? 2000
  const pageBytes = opts.pageBytes ?? 1024 * 1024
  async function* lines(): AsyncGenerator<string, void, undefined> {
    yield JSON.stringify(header) + '\n'
    let after: ExportCursor | null = null
    let records = 0
    for (;;) {
      const rows = await reader.page(opts.user.id, { collections, after, limit: pageRows, maxBytes: pageBytes })
      if (rows.length === 0) break
      let chunk = ''
      for (const row of rows) chunk += JSON.stringify(toBackupRecord(row, opts.codec)) + '\n'
      records += rows.length
      const last = rows.at(-1)!
      after = { collection: last.collection, id: last.id }
      opts.onProgress?.({ records, total: Math.max(total, records) })
      yield chunk
    }
    yield JSON.stringify({ end: true, records } satisfies BackupTrailer) + '\n'
  }
  return { header, lines: lines() }
}

/** A stored row as a backup line: secret fields opened (the owner's own data), optional fields omitted. */
export function toBackupRecord(row: RecordRow, codec: RecordCodec): BackupRecord {
  const stored = decodeMsgpack(row.data) as Record<string, unknown>
  const rule = codec.registry.get(row.collection)
  const record: BackupRecord = {
    collection: row.collection,
    id: row.id,
    rev: row.seq,
    order: row.created_seq,
    created_at: row.created_at,
    updated_at: row.updated_at,
  } as BackupRecord
  if (row.deleted_at !== null) record.deleted_at = row.deleted_at
  if (row.purge_at !== null) record.purge_at = row.purge_at
  if (row.replaced_by !== null) record.replaced_by = row.replaced_by
  if (row.conflict_of !== null) record.conflict_of = row.conflict_of
  if (row.trashed_with !== null) record.trashed_with = row.trashed_with
  if (row.device_id !== null) record.device_id = row.device_id
  // data last: the metadata of a line stays readable at a glance.
  record.data = rule ? codec.open(rule, stored) : stored
  return record
}

/** An async generator of text as a byte stream that reads the next chunk only when asked (backpressure). */
export function textStream(chunks: AsyncGenerator<string, void, undefined>): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder()
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await chunks.next()
        if (next.done) controller.close()
        else controller.enqueue(encoder.encode(next.value))
      },
      async cancel() {
        await chunks.return(undefined)
      },
    },
    { highWaterMark: 0 },
  )
}
