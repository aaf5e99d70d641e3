import { byteaArray, int8Array, recordArrays, textArray } from './pg-arrays.ts'
import type { SqlQueryable } from './sql-client.ts'
import { byUserThenDevice, deviceKey, midKey, RECORD_COLUMNS, recordKey, recordOf, type DeviceState, type OpResultRow, type RecordRow, type UserState } from './rows.ts'

/** What a group commit read: the state its plan starts from, and that its write checks again. */
export interface BatchRead {
  users: Map<string, UserState>
  devices: Map<string, DeviceState>
  records: Map<string, RecordRow>
}

/**
 * What one group commit writes, all in one statement. Each user and device carries the state
 * the plan was made from; if any has moved since, nothing is written (`WriteConflict`).
 */
export interface BatchWrite {
  records: RecordRow[]
  results: OpResultRow[]
  devices: Array<{ userId: string; deviceId: string; lastMid: number; readLastMid: number }>
  users: Array<{ userId: string; seq: number; read: UserState }>
  /** Records (recordKey) the plan took to be absent without reading them; the write refuses if one exists, or is not written. */
  absent?: ReadonlySet<string>
  now: number
}

/** The batch's inputs changed between its read and its write: plan it again from a fresh read. */
export class WriteConflict extends Error {
  constructor() {
    super('a batch’s inputs changed before its write')
    this.name = 'WriteConflict'
  }
}

// serialization_failure (the write guard), deadlock_detected (two nodes writing the same users)
// and unique_violation (a record the plan took to be absent exists, or another node took the seq).
const CONFLICT_CODES: ReadonlySet<string> = new Set(['40001', '40P01', '23505'])

type ReadRow = RecordRow & { kind: 'u' | 'd' | 'r'; min_valid_seq: number; epoch: string; scope: string[] | null; last_mid: number; revoked_at: number | null }

/**
 * The push path's statements. A group commit is one read and one write, each a single
 * statement outside any explicit transaction: no BEGIN/COMMIT round trips and no row locks held
 * while the hub plans. The write is atomic by itself and checks, under its row locks, that what
 * the plan read is still current (optimistic concurrency, see migration 0003). After a conflict
 * the same statements run inside a transaction that locks the users first.
 */
export class PushStore {
  constructor(private readonly q: SqlQueryable) {}

  /** Users' counters, devices and records for one batch, in one statement and one snapshot. */
  async read(userIds: string[], devices: Array<{ userId: string; deviceId: string }>, records: Array<{ userId: string; collection: string; id: string }>): Promise<BatchRead> {
    const { rows } = await this.q.query<ReadRow>(
      `SELECT 'u' AS kind, user_id, NULL::text AS collection, NULL::text AS id, seq, NULL::bytea AS data, NULL::text AS parent_id,
              NULL::int8 AS created_at, NULL::int8 AS updated_at, NULL::int8 AS deleted_at, NULL::int8 AS purge_at,
              NULL::text AS replaced_by, NULL::text AS conflict_of, NULL::text AS device_id, NULL::int8 AS created_seq,
              NULL::text AS trashed_with, min_valid_seq, epoch, scope, NULL::int8 AS last_mid, NULL::int8 AS revoked_at
         FROM user_state WHERE user_id = ANY($1::text[])
       UNION ALL
       SELECT 'd', d.user_id, NULL, d.id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
              NULL, NULL, NULL, d.last_mid, d.revoked_at
         FROM devices d JOIN unnest($2::text[], $3::text[]) AS k(u, i) ON d.user_id = k.u AND d.id = k.i
       UNION ALL
       SELECT 'r', r.user_id, ${RECORD_COLUMNS.split(', ').map((c) => 'r.' + c).join(', ')}, NULL, NULL, NULL, NULL, NULL
         FROM records r JOIN unnest($4::text[], $5::text[], $6::text[]) AS k(u, c, i)
           ON r.user_id = k.u AND r.collection = k.c AND r.id = k.i`,
      [
        userIds,
        devices.map((d) => d.userId), devices.map((d) => d.deviceId),
        records.map((r) => r.userId), records.map((r) => r.collection), records.map((r) => r.id),
      ],
    )
    const read: BatchRead = { users: new Map(), devices: new Map(), records: new Map() }
    for (const r of rows) {
      if (r.kind === 'u') read.users.set(r.user_id, { userId: r.user_id, seq: r.seq, minValidSeq: r.min_valid_seq, epoch: r.epoch, scope: r.scope })
      else if (r.kind === 'd') read.devices.set(deviceKey(r.user_id, r.id), toDevice(r))
      else read.records.set(recordKey(r.user_id, r.collection, r.id), recordOf(r, r.user_id))
    }
    return read
  }

  /** Locks the users' counter rows, in lock order (the fallback after a conflict, in a transaction). */
  async lockUsers(userIds: string[]): Promise<void> {
    const ordered = userIds.map((userId) => ({ userId })).sort(byUserThenDevice)
    await this.q.query(
      `SELECT 1 FROM user_state s JOIN unnest($1::text[]) WITH ORDINALITY AS k(u, n) ON s.user_id = k.u ORDER BY k.n FOR UPDATE OF s`,
      [ordered.map((u) => u.userId)],
    )
  }

  /** Creates devices the batch does not know yet (a REST writer's first push). */
  async addDevices(keys: Array<{ userId: string; deviceId: string }>, now: number): Promise<DeviceState[]> {
    const ordered = [...keys].sort(byUserThenDevice)
    const { rows } = await this.q.query<{ user_id: string; id: string; last_mid: number; revoked_at: number | null }>(
      `INSERT INTO devices (user_id, id, created_at, last_seen)
         SELECT u, d, $3, $3 FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS k(u, d, n) ORDER BY n
       ON CONFLICT (user_id, id) DO UPDATE SET last_seen = EXCLUDED.last_seen
       RETURNING user_id, id, last_mid, revoked_at`,
      [ordered.map((k) => k.userId), ordered.map((k) => k.deviceId), now],
    )
    return rows.map(toDevice)
  }

  /** Every child (live or in the bin) of the given parents, e.g. the messages of conversations, in creation order. */
  async children(userId: string, collection: string, parentIds: string[]): Promise<RecordRow[]> {
    if (parentIds.length === 0) return []
    const { rows } = await this.q.query<RecordRow>(
      `SELECT user_id, ${RECORD_COLUMNS} FROM records
        WHERE user_id = $1 AND parent_id = ANY($2::text[]) AND collection = $3 ORDER BY created_seq`,
      [userId, parentIds, collection],
    )
    return rows
  }

  /** The stored first answers of replayed mids. */
  async results(keys: Array<{ userId: string; deviceId: string; mid: number }>): Promise<Map<string, Uint8Array>> {
    if (keys.length === 0) return new Map()
    const { rows } = await this.q.query<{ user_id: string; device_id: string; mid: number; result: Uint8Array }>(
      `SELECT o.user_id, o.device_id, o.mid, o.result FROM op_results o
         JOIN unnest($1::text[], $2::text[], $3::int8[]) AS k(u, d, m) ON o.user_id = k.u AND o.device_id = k.d AND o.mid = k.m`,
      [keys.map((k) => k.userId), keys.map((k) => k.deviceId), keys.map((k) => k.mid)],
    )
    return new Map(rows.map((r) => [midKey(r.user_id, r.device_id, r.mid), r.result]))
  }

  /**
   * Writes a whole batch in one statement: user counters and device mids first (their row locks
   * order every writer of a user), checked against what the plan read, then records and op
   * results. Throws WriteConflict, having written nothing, when any of them moved.
   */
  async write(batch: BatchWrite): Promise<void> {
    // Records assumed absent go first: the statement inserts them without overwriting, and the
    // primary key refuses the whole statement if one existed (migration 0006). One assumed
    // absent but not written (a refused op) has no insert to tell: plan the batch again from a
    // read instead.
    const absent = batch.absent ?? new Set<string>()
    const fresh: RecordRow[] = []
    const known: RecordRow[] = []
    for (const row of batch.records) (absent.size > 0 && absent.has(recordKey(row.user_id, row.collection, row.id)) ? fresh : known).push(row)
    if (fresh.length < absent.size) throw new WriteConflict()
    const r = fresh.length === 0 ? known : fresh.concat(known)
    // Counter rows, then device rows, each locked in lock order (the function updates them in array order).
    const users = [...batch.users].sort(byUserThenDevice)
    const devices = [...batch.devices].sort(byUserThenDevice)
    try {
      // synchub_write_batch (migration 0006) holds the statement, planned once per connection.
      // Every array travels as a literal built here (pg-arrays.ts), not formatted by the driver.
      await this.q.query(
        `SELECT synchub_write_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
                                    $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31)`,
        [
          textArray(users.map((u) => u.userId)), int8Array(users.map((u) => u.seq)), int8Array(users.map((u) => u.read.seq)),
          int8Array(users.map((u) => u.read.minValidSeq)), textArray(users.map((u) => u.read.epoch)),
          textArray(users.map((u) => u.read.scope && textArray(u.read.scope))),
          textArray(devices.map((d) => d.userId)), textArray(devices.map((d) => d.deviceId)),
          int8Array(devices.map((d) => d.lastMid)), int8Array(devices.map((d) => d.readLastMid)),
          batch.now,
          ...recordArrays(r),
          textArray(batch.results.map((x) => x.userId)), textArray(batch.results.map((x) => x.deviceId)),
          int8Array(batch.results.map((x) => x.mid)), byteaArray(batch.results.map((x) => x.result)),
          fresh.length,
        ],
      )
    } catch (err) {
      if (CONFLICT_CODES.has((err as { code?: string })?.code ?? '')) throw new WriteConflict()
      throw err
    }
  }
}

function toDevice(r: { user_id: string; id: string; last_mid: number; revoked_at: number | null }): DeviceState {
  return { userId: r.user_id, deviceId: r.id, lastMid: r.last_mid, revoked: r.revoked_at !== null }
}

