import { decodeMsgpack, PackedValue } from '../../protocol/codec.ts'
import type { Change } from '../../protocol/records.ts'
import type { RecordRow } from '../store/rows.ts'
import type { RecordCodec } from './record-codec.ts'

/** A Change on its way out: `data` may still be the stored msgpack bytes, for the encoder to copy. */
export type WireChange = Omit<Change, 'data'> & { data: Change['data'] | PackedValue }

/**
 * The wire form of a stored row, its secret fields opened by `codec`. `data` may be passed when
 * the caller already holds it decoded (and opened).
 */
export function rowToChange(row: RecordRow, codec: RecordCodec, data?: Record<string, unknown>): Change {
  return withSyncFields(row, data ?? codec.openStored(row.collection, decodeMsgpack(row.data) as Record<string, unknown>))
}

/**
 * rowToChange for rows that only travel (pull and browse pages, a socket's backlog and
 * backfill): data with nothing to open stays as stored, and the encoder copies those bytes into
 * the frame (a long history pulls faster without a decode and an encode per record).
 */
export function rowToWireChange(row: RecordRow, codec: RecordCodec): WireChange {
  return codec.sentAsStored(row.collection) ? withSyncFields(row, new PackedValue(row.data)) : rowToChange(row, codec)
}

function withSyncFields<D extends WireChange['data']>(row: RecordRow, data: D): Omit<Change, 'data'> & { data: D } {
  const change: Omit<Change, 'data'> & { data: D } = {
    seq: row.seq,
    collection: row.collection,
    id: row.id,
    data,
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
