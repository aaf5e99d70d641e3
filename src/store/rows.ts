/** Row shapes shared by the store and the sync engine. Times are ms since the epoch. */

/** The records table's columns after user_id, in the order every statement lists them. */
export const RECORD_COLUMNS =
  'collection, id, seq, data, parent_id, created_at, updated_at, deleted_at, purge_at, replaced_by, conflict_of, device_id, created_seq, trashed_with'

export interface RecordRow {
  user_id: string
  collection: string
  id: string
  /** Seq of the record's latest change; its `rev` on the wire. */
  seq: number
  /** The record's `data`, msgpack-encoded. */
  data: Uint8Array
  parent_id: string | null
  created_at: number
  /** The seq the record was created at: its place among its siblings, whatever changed since. */
  created_seq: number
  updated_at: number
  deleted_at: number | null
  purge_at: number | null
  replaced_by: string | null
  conflict_of: string | null
  device_id: string | null
  /** The parent whose deletion moved this record to the bin with it (restored with it). */
  trashed_with: string | null
}

/**
 * The RecordRow fields of a result row that carries more columns (a pull page's head and
 * running size, a batch read's kind). Picked one by one: an object rest pattern copied each
 * row about 50 times slower, which made up a tenth of a 5,000-row pull page's time.
 */
export function recordOf(r: Omit<RecordRow, 'user_id'>, userId: string): RecordRow {
  return {
    user_id: userId,
    collection: r.collection,
    id: r.id,
    seq: r.seq,
    data: r.data,
    parent_id: r.parent_id,
    created_at: r.created_at,
    created_seq: r.created_seq,
    updated_at: r.updated_at,
    deleted_at: r.deleted_at,
    purge_at: r.purge_at,
    replaced_by: r.replaced_by,
    conflict_of: r.conflict_of,
    device_id: r.device_id,
    trashed_with: r.trashed_with,
  }
}

export interface UserState {
  userId: string
  seq: number
  minValidSeq: number
  epoch: string
  /** null: the default scope (every scope key). */
  scope: string[] | null
}

export interface DeviceState {
  userId: string
  deviceId: string
  lastMid: number
  revoked: boolean
}

export interface OpResultRow {
  userId: string
  deviceId: string
  mid: number
  result: Uint8Array
}

/**
 * The one order in which every statement that waits for them locks users' counter rows and
 * devices' rows, so two statements never wait on each other in a cycle (a deadlock costs
 * Postgres's deadlock_timeout, 1 s by default). Sorted here, not by SQL ORDER BY, whose
 * collation may order text otherwise; statements lock in the order of the arrays they are
 * given. (The ack flush does not wait: it skips busy rows.)
 */
export function byUserThenDevice(a: { userId: string; deviceId?: string }, b: { userId: string; deviceId?: string }): number {
  if (a.userId !== b.userId) return a.userId < b.userId ? -1 : 1
  const x = a.deviceId ?? ''
  const y = b.deviceId ?? ''
  return x === y ? 0 : x < y ? -1 : 1
}

export const recordKey = (user: string, collection: string, id: string) => `${user}\u0000${collection}\u0000${id}`
export const deviceKey = (user: string, device: string) => `${user}\u0000${device}`
export const midKey = (user: string, device: string, mid: number) => `${user}\u0000${device}\u0000${mid}`
