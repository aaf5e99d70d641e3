import { z } from 'zod'
import { Epoch } from './frames.ts'
import { CollectionName, Id, Millis, RecordData, RecordSyncFields, Seq } from './records.ts'

/**
 * The backup format (`GET /v1/export`, `POST /v1/import`, `synchub export|import`): NDJSON, one
 * JSON object per line. Line 1 is a BackupHeader, then one BackupRecord per record, then one
 * BackupTrailer. A file without the trailer, or whose trailer count differs, is incomplete.
 */
export const BACKUP_VERSION = 1
export const BACKUP_MEDIA_TYPE = 'application/x-ndjson'

const ScopeKey = z.string().min(1).max(100)

export const BackupHeader = z.object({
  /** The format version; a reader refuses any other with `backup_version`. */
  synchub_backup: z.literal(BACKUP_VERSION),
  exported_at: Millis,
  /** Whose records these were (informational: an import goes to the authenticated user). */
  user: z.object({ id: Id, username: z.string().max(64) }).optional(),
  /** The scope keys the file covers; what overwrite replaces. */
  scopes: z.array(ScopeKey).max(100),
  /** The collections of those scopes. */
  collections: z.array(CollectionName).max(1000),
  /** Records expected when the export started: for progress only, the trailer's count decides. */
  records: z.int().nonnegative().optional(),
})
export type BackupHeader = z.infer<typeof BackupHeader>

/** One record as stored, recycle bin and conflict copies included; `data` in plaintext. */
export const BackupRecord = z
  .object({
    collection: CollectionName,
    id: Id,
    /** The record's rev on the exporting hub (informational: an import assigns new seqs). */
    rev: Seq,
    /** Creation order: only comparisons between records of one file mean anything. */
    order: Seq,
    ...RecordSyncFields.shape,
    /** The parent (a conversation) whose deletion took this record to the bin with it. */
    trashed_with: Id.optional(),
    data: RecordData,
  })
  .refine((r) => r.purge_at === undefined || r.deleted_at !== undefined, { message: 'purge_at without deleted_at', path: ['purge_at'] })
export type BackupRecord = z.infer<typeof BackupRecord>

export const BackupTrailer = z.object({ end: z.literal(true), records: z.int().nonnegative() })
export type BackupTrailer = z.infer<typeof BackupTrailer>

/** A `scopes=a,b` query parameter: absent or empty means every scope key. */
export const ScopeList = z
  .string()
  .optional()
  .transform((s) => (s ? s.split(',').filter(Boolean) : undefined))
  .pipe(z.array(ScopeKey).max(100).optional())

export const ExportQuery = z.object({ scopes: ScopeList })
export const ImportMode = z.enum(['merge', 'overwrite'])
export type ImportMode = z.infer<typeof ImportMode>
/** Query of POST /v1/import; `scopes` narrows the file's scopes (records outside are skipped). */
export const ImportQuery = z.object({ mode: ImportMode.default('merge'), scopes: ScopeList })

const Count = z.int().nonnegative()
export const ImportResult = z.object({
  /** Records written as they are in the file. */
  imported: Count,
  /** Merge: records whose id held different content, saved as conflict copies. */
  copies: Count,
  /** Records already present as they are (or their copy is), or outside the chosen scopes. */
  skipped: Count,
  /** Overwrite: current records the file did not hold, moved to the recycle bin. */
  trashed: Count,
  /** The user's newest seq after the import, and the epoch (new after an overwrite). */
  cursor: Seq,
  epoch: Epoch,
})
export type ImportResult = z.infer<typeof ImportResult>
