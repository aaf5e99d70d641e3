import type { SqlClient } from './sql-client.ts'

/** Statements of the recycle bin's purge (sync/purge.ts). */
export class PurgeStore {
  constructor(private readonly db: SqlClient) {}

  /** Users who have records whose time in the bin is over as of `now`, at most `limit`. */
  async usersWithExpired(now: number, limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ user_id: string }>('SELECT DISTINCT user_id FROM records WHERE purge_at <= $1 LIMIT $2', [now, limit])
    return rows.map((r) => r.user_id)
  }

  /**
   * Deletes the user's expired records in one short transaction holding the counter row, and
   * moves min_valid_seq past the newest seq removed. Returns how many went.
   */
  purgeUser(userId: string, now: number): Promise<number> {
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM user_state WHERE user_id = $1 FOR UPDATE', [userId])
      const { rows } = await tx.query<{ n: number }>(
        `WITH gone AS (DELETE FROM records WHERE user_id = $1 AND purge_at <= $2 RETURNING seq),
              moved AS (
                UPDATE user_state SET min_valid_seq = GREATEST(min_valid_seq, (SELECT max(seq) FROM gone))
                 WHERE user_id = $1 AND EXISTS (SELECT 1 FROM gone) RETURNING 1
              )
         SELECT count(*)::int8 AS n FROM gone`,
        [userId, now],
      )
      return rows[0]?.n ?? 0
    })
  }
}
