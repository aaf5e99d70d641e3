import type { SqlClient } from './sql-client.ts'
import { PushStore } from './push-store.ts'
import { deviceKey, recordOf, type RecordRow, type UserState } from './rows.ts'

/** Which part of a user's stream one page holds. */
export interface PageQuery {
  /** The page starts after this seq. */
  since: number
  /** At most this many rows. */
  limit: number
  /** Only these collections; null or absent: every collection. */
  collections?: string[] | null
  /** The page stops once its records' data reach this many bytes (always at least one row). */
  maxBytes?: number
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

/** The user's stream and state: reads and small writes, and (`push`) the group-commit statements. */
export class SyncStore {
  readonly push: PushStore

  /** `commitDb`: where group commits run (connections reserved for them); the same client by default. */
  constructor(
    readonly db: SqlClient,
    readonly commitDb: SqlClient = db,
  ) {
    this.push = new PushStore(commitDb)
  }

  /** Runs fn with the push statements inside one transaction on the commit connections. */
  pushInTransaction<T>(fn: (push: PushStore) => Promise<T>): Promise<T> {
    return this.commitDb.transaction((q) => fn(new PushStore(q)))
  }

  /**
   * One page of the user's stream after `since`, read in one statement so rows and head come
   * from one snapshot. `collections` null means every collection. A page stops at `limit` rows
   * or once its records' data reach `maxBytes` (always at least one row), so a page of large
   * records never has to sit in memory whole; `cut` says the page ended early for either reason.
   */
  async pull(userId: string, q: PageQuery): Promise<PullPage | undefined> {
    const { since, limit, collections = null, maxBytes = DEFAULT_PAGE_BYTES } = q
    // A function (migration 0004) so the plan walks the seq index whatever the statistics say.
    const { rows } = await this.db.query<RecordRow & { head: number; min_valid_seq: number; epoch: string; r_seq: number | null; running: number | null }>(
      'SELECT * FROM synchub_pull_page($1, $2, $3, $4::text[], $5)',
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
      rows: found.map((r) => recordOf(r, userId)),
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

  /** Where each user's stream stands (its newest seq), in one statement; users without a stream are left out. */
  async heads(userIds: string[]): Promise<Map<string, number>> {
    if (userIds.length === 0) return new Map()
    const { rows } = await this.db.query<{ user_id: string; seq: number }>('SELECT user_id, seq FROM user_state WHERE user_id = ANY($1::text[])', [userIds])
    return new Map(rows.map((r) => [r.user_id, r.seq]))
  }

  /** Replaces the user's sync scope (null: every scope key). */
  async setScope(userId: string, scope: string[] | null): Promise<void> {
    await this.db.query('UPDATE user_state SET scope = $2::text[] WHERE user_id = $1', [userId, scope])
  }

  /** Registers or refreshes a device at socket auth; returns false when the device was revoked. */
  async touchDevice(device: { userId: string; id: string; name?: string; platform?: string; now: number }): Promise<boolean> {
    const { rows } = await this.db.query<{ revoked_at: number | null }>(
      `INSERT INTO devices (user_id, id, name, platform, created_at, last_seen) VALUES ($1, $2, $3, $4, $5, $5)
       ON CONFLICT (user_id, id) DO UPDATE SET last_seen = $5,
         name = COALESCE(EXCLUDED.name, devices.name), platform = COALESCE(EXCLUDED.platform, devices.platform)
       RETURNING revoked_at`,
      [device.userId, device.id, device.name ?? null, device.platform ?? null, device.now],
    )
    return rows[0]?.revoked_at == null
  }

  /**
   * Records the cursors devices acknowledged; never moves a cursor backwards. Group commits
   * update the same rows: a row one of them holds is skipped rather than waited for (waiting
   * would hold the rows already taken and make later commits queue behind it). Resolves with
   * the acks not written: rows that were busy, or gone.
   */
  async saveAcks<A extends { userId: string; deviceId: string; cursor: number }>(acks: A[], now: number): Promise<A[]> {
    if (acks.length === 0) return []
    const { rows } = await this.db.query<{ user_id: string; id: string }>(
      `WITH locked AS MATERIALIZED (
         SELECT d.user_id, d.id, k.c FROM devices d
           JOIN unnest($1::text[], $2::text[], $3::int8[]) AS k(u, i, c) ON d.user_id = k.u AND d.id = k.i
            FOR UPDATE OF d SKIP LOCKED
       )
       UPDATE devices d SET acked_cursor = GREATEST(d.acked_cursor, l.c), last_seen = $4
         FROM locked l WHERE d.user_id = l.user_id AND d.id = l.id
       RETURNING d.user_id, d.id`,
      [acks.map((a) => a.userId), acks.map((a) => a.deviceId), acks.map((a) => a.cursor), now],
    )
    const written = new Set(rows.map((r) => deviceKey(r.user_id, r.id)))
    return acks.filter((a) => !written.has(deviceKey(a.userId, a.deviceId)))
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
