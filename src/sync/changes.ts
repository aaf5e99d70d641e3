import { decodeMsgpack } from '../../protocol/codec.ts'
import type { Change } from '../../protocol/records.ts'
import type { RecordRow } from '../store/rows.ts'
import { openStored } from './record-codec.ts'

/**
 * The wire form of a stored row, its secret fields opened. `data` may be passed when the caller
 * already holds it decoded (and opened).
 */
export function rowToChange(row: RecordRow, data?: Record<string, unknown>): Change {
  const change: Change = {
    seq: row.seq,
    collection: row.collection,
    id: row.id,
    data: data ?? openStored(row.collection, decodeMsgpack(row.data) as Record<string, unknown>),
    rev: row.seq,
    created_at: row.created_at,
    updated_at: row.updated_at,
  }
  // Optional fields are omitted, never sent as nil.
  if (row.deleted_at !== null) change.deleted_at = row.deleted_at
  if (row.purge_at !== null) change.purge_at = row.purge_at
  if (row.replaced_by !== null) change.replaced_by = row.replaced_by
  if (row.conflict_of !== null) change.conflict_of = row.conflict_of
  if (row.device_id !== null) change.device_id = row.device_id
  return change
}
