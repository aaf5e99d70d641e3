import type { SqlClient, SqlQueryable } from './sql-client.ts'
import { deviceKey, midKey, recordKey, type DeviceState, type OpResultRow, type RecordRow, type UserState } from './rows.ts'

const RECORD_COLUMNS =
  'collection, id, seq, data, parent_id, created_at, updated_at, deleted_at, purge_at, replaced_by, conflict_of, device_id, created_seq, trashed_with'

/** What one group commit writes, all in one statement. */
export interface BatchWrite {
  records: RecordRow[]
  results: OpResultRow[]
  devices: Array<{ userId: string; deviceId: string; lastMid: number }>
  users: Array<{ userId: string; seq: number }>
}

export interface PullPage {
  head: number
  minValidSeq: number
  epoch: string
  rows: RecordRow[]
  /** The page stopped at its row or byte bound: more rows may follow its last. */
  cut: boolean
}

/** Bytes of record data one page may carry by default. */
export const DEFAULT_PAGE_BYTES = 4 * 1024 * 1024

const toUserState = (r: { user_id: string; seq: number; min_valid_seq: number; epoch: string; scope: string[] | null }): UserState => ({
  userId: r.user_id,
  seq: r.seq,
  minValidSeq: r.min_valid_seq,
  epoch: r.epoch,
  scope: r.scope,
})

/** The sync engine's statements inside one write transaction. Locks are taken users first, sorted. */
export class SyncTx {
  constructor(private readonly q: SqlQueryable) {}

  /** Locks the users' counter rows in user_id order, so concurrent batches never deadlock. */
  async lockUsers(userIds: string[]): Promise<Map<string, UserState>> {
    const { rows } = await this.q.query<Parameters<typeof toUserState>[0]>(
      'SELECT user_id, seq, min_valid_seq, epoch, scope FROM user_state WHERE user_id = ANY($1::text[]) ORDER BY user_id FOR UPDATE',
      [userIds],
    )
    return new Map(rows.map((r) => [r.user_id, toUserState(r)]))
  }

  /** Creates unknown devices (a REST writer's first push) and locks them all. */
  async lockDevices(keys: Array<{ userId: string; deviceId: string }>, now: number): Promise<Map<string, DeviceState>> {
    const { rows } = await this.q.query<{ user_id: string; id: string; last_mid: number; revoked_at: number | null }>(
      `INSERT INTO devices (user_id, id, created_at, last_seen)
         SELECT u, d, $3, $3 FROM unnest($1::text[], $2::text[]) AS k(u, d) ORDER BY u, d
       ON CONFLICT (user_id, id) DO UPDATE SET last_seen = EXCLUDED.last_seen
       RETURNING user_id, id, last_mid, revoked_at`,
      [keys.map((k) => k.userId), keys.map((k) => k.deviceId), now],
    )
    return new Map(
      rows.map((r) => [deviceKey(r.user_id, r.id), { userId: r.user_id, deviceId: r.id, lastMid: r.last_mid, revoked: r.revoked_at !== null }]),
    )
  }

  async lockRecords(keys: Array<{ userId: string; collection: string; id: string }>): Promise<Map<string, RecordRow>> {
    if (keys.length === 0) return new Map()
    const { rows } = await this.q.query<RecordRow>(
      `SELECT r.user_id, ${RECORD_COLUMNS.split(', ').map((c) => 'r.' + c).join(', ')}
         FROM records r JOIN unnest($1::text[], $2::text[], $3::text[]) AS k(u, c, i)
           ON r.user_id = k.u AND r.collection = k.c AND r.id = k.i
        ORDER BY r.user_id, r.collection, r.id FOR UPDATE OF r`,
      [keys.map((k) => k.userId), keys.map((k) => k.collection), keys.map((k) => k.id)],
    )
    return new Map(rows.map((r) => [recordKey(r.user_id, r.collection, r.id), r]))
  }

  /** Live records whose parent is one of `parents` (e.g. the messages of a conversation), oldest first. */
  /** Every child (live or in the bin) of the given parents, e.g. the messages of conversations, in creation order. */
  async lockChildren(userId: string, collection: string, parentIds: string[]): Promise<RecordRow[]> {
    if (parentIds.length === 0) return []
    const { rows } = await this.q.query<RecordRow>(
      `SELECT user_id, ${RECORD_COLUMNS} FROM records
        WHERE user_id = $1 AND parent_id = ANY($2::text[]) AND collection = $3 ORDER BY created_seq FOR UPDATE`,
      [userId, parentIds, collection],
    )
    return rows
  }

  async loadResults(keys: Array<{ userId: string; deviceId: string; mid: number }>): Promise<Map<string, Uint8Array>> {
    if (keys.length === 0) return new Map()
    const { rows } = await this.q.query<{ user_id: string; device_id: string; mid: number; result: Uint8Array }>(
      `SELECT o.user_id, o.device_id, o.mid, o.result FROM op_results o
         JOIN unnest($1::text[], $2::text[], $3::int8[]) AS k(u, d, m) ON o.user_id = k.u AND o.device_id = k.d AND o.mid = k.m`,
      [keys.map((k) => k.userId), keys.map((k) => k.deviceId), keys.map((k) => k.mid)],
    )
    return new Map(rows.map((r) => [midKey(r.user_id, r.device_id, r.mid), r.result]))
  }

  /** Writes a whole batch in one round trip: records, op results, device mids, user counters. */
  async write(batch: BatchWrite): Promise<void> {
    const r = batch.records
    const col = <K extends keyof RecordRow>(k: K) => r.map((row) => row[k])
    await this.q.query(
      `WITH rec AS (
         INSERT INTO records (user_id, ${RECORD_COLUMNS})
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::bytea[], $6::text[], $7::int8[], $8::int8[],
                              $9::int8[], $10::int8[], $11::text[], $12::text[], $13::text[], $23::int8[], $24::text[])
         ON CONFLICT (user_id, collection, id) DO UPDATE SET
           seq = EXCLUDED.seq, data = EXCLUDED.data, parent_id = EXCLUDED.parent_id, updated_at = EXCLUDED.updated_at,
           deleted_at = EXCLUDED.deleted_at, purge_at = EXCLUDED.purge_at, replaced_by = EXCLUDED.replaced_by,
           conflict_of = EXCLUDED.conflict_of, device_id = EXCLUDED.device_id, trashed_with = EXCLUDED.trashed_with
         RETURNING 1
       ), res AS (
         INSERT INTO op_results (user_id, device_id, mid, result)
         SELECT * FROM unnest($14::text[], $15::text[], $16::int8[], $17::bytea[])
         RETURNING 1
       ), dev AS (
         UPDATE devices d SET last_mid = k.m FROM unnest($18::text[], $19::text[], $20::int8[]) AS k(u, i, m)
          WHERE d.user_id = k.u AND d.id = k.i
         RETURNING 1
       )
       UPDATE user_state s SET seq = k.seq FROM unnest($21::text[], $22::int8[]) AS k(u, seq) WHERE s.user_id = k.u`,
      [
        col('user_id'), col('collection'), col('id'), col('seq'), col('data'), col('parent_id'), col('created_at'),
        col('updated_at'), col('deleted_at'), col('purge_at'), col('replaced_by'), col('conflict_of'), col('device_id'),
        batch.results.map((x) => x.userId), batch.results.map((x) => x.deviceId), batch.results.map((x) => x.mid),
        batch.results.map((x) => x.result),
        batch.devices.map((x) => x.userId), batch.devices.map((x) => x.deviceId), batch.devices.map((x) => x.lastMid),
        batch.users.map((x) => x.userId), batch.users.map((x) => x.seq),
        col('created_seq'), col('trashed_with'),
      ],
    )
  }
}

/** Reads and small writes outside the push path. */
export class SyncStore {
  constructor(readonly db: SqlClient) {}

  transaction<T>(fn: (tx: SyncTx) => Promise<T>): Promise<T> {
    return this.db.transaction((q) => fn(new SyncTx(q)))
  }

  /**
   * One page of the user's stream after `since`, read in one statement so rows and head come
   * from one snapshot. `collections` null means every collection. A page stops at `limit` rows
   * or once its records' data reach `maxBytes` (always at least one row), so a page of large
   * records never has to sit in memory whole; `cut` says the page ended early for either reason.
   */
  async pull(userId: string, since: number, limit: number, collections: string[] | null, maxBytes = DEFAULT_PAGE_BYTES): Promise<PullPage | undefined> {
    const { rows } = await this.db.query<RecordRow & { head: number; min_valid_seq: number; epoch: string; r_seq: number | null; running: number | null }>(
      `SELECT s.seq AS head, s.min_valid_seq, s.epoch, r.seq AS r_seq, r.*
         FROM user_state s
         LEFT JOIN LATERAL (
           SELECT * FROM (
             SELECT ${RECORD_COLUMNS}, sum(octet_length(data)) OVER (ORDER BY seq)::int8 AS running, octet_length(data) AS size
               FROM records
              WHERE user_id = s.user_id AND seq > $2 AND ($4::text[] IS NULL OR collection = ANY($4::text[]))
              ORDER BY seq LIMIT $3
           ) page WHERE running - size < $5
         ) r ON true
        WHERE s.user_id = $1`,
      [userId, since, limit, collections, maxBytes],
    )
    const first = rows[0]
    if (!first) return undefined
    const found = first.r_seq === null ? [] : rows
    const last = found.at(-1)
    return {
      head: first.head,
      minValidSeq: first.min_valid_seq,
      epoch: first.epoch,
      rows: found.map(({ head: _h, min_valid_seq: _m, epoch: _e, r_seq: _r, running: _run, size: _s, ...r }: any) => ({ ...r, user_id: userId })),
      cut: found.length === limit || (last !== undefined && (last.running ?? 0) >= maxBytes),
    }
  }

  async userState(userId: string): Promise<UserState | undefined> {
    const { rows } = await this.db.query<Parameters<typeof toUserState>[0]>(
      'SELECT user_id, seq, min_valid_seq, epoch, scope FROM user_state WHERE user_id = $1',
      [userId],
    )
    return rows[0] && toUserState(rows[0])
  }

  /** Replaces the user's sync scope (null: every scope key). */
  async setScope(userId: string, scope: string[] | null): Promise<void> {
    await this.db.query('UPDATE user_state SET scope = $2::text[] WHERE user_id = $1', [userId, scope])
  }

  /** Registers or refreshes a device at socket auth; returns false when the device was revoked. */
  async touchDevice(userId: string, deviceId: string, name: string | undefined, platform: string | undefined, now: number): Promise<boolean> {
    const { rows } = await this.db.query<{ revoked_at: number | null }>(
      `INSERT INTO devices (user_id, id, name, platform, created_at, last_seen) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (user_id, id) DO UPDATE SET last_seen = $5,
         name = COALESCE(EXCLUDED.name, devices.name), platform = COALESCE(EXCLUDED.platform, devices.platform)
       RETURNING revoked_at`,
      [userId, deviceId, name ?? null, platform ?? null, now],
    )
    return rows[0]?.revoked_at == null
  }

  /** Records the cursors devices acknowledged; never moves a cursor backwards. */
  async saveAcks(acks: Array<{ userId: string; deviceId: string; cursor: number }>, now: number): Promise<void> {
    if (acks.length === 0) return
    await this.db.query(
      `UPDATE devices d SET acked_cursor = GREATEST(d.acked_cursor, k.c), last_seen = $4
         FROM unnest($1::text[], $2::text[], $3::int8[]) AS k(u, i, c) WHERE d.user_id = k.u AND d.id = k.i`,
      [acks.map((a) => a.userId), acks.map((a) => a.deviceId), acks.map((a) => a.cursor), now],
    )
  }

  /** Live record counts and last update per collection, and the recycle bin's size. */
  async status(userId: string): Promise<{ collections: Record<string, { count: number; last_updated: number | null }>; trash: number }> {
    const { rows } = await this.db.query<{ collection: string; live: number; trash: number; last_updated: number | null }>(
      `SELECT collection, count(*) FILTER (WHERE deleted_at IS NULL)::int8 AS live,
              count(*) FILTER (WHERE deleted_at IS NOT NULL)::int8 AS trash,
              max(updated_at) FILTER (WHERE deleted_at IS NULL) AS last_updated
         FROM records WHERE user_id = $1 GROUP BY collection ORDER BY collection`,
      [userId],
    )
    const collections: Record<string, { count: number; last_updated: number | null }> = {}
    let trash = 0
    for (const r of rows) {
      collections[r.collection] = { count: r.live, last_updated: r.last_updated }
      trash += r.trash
    }
    return { collections, trash }
  }
}
