import type { SqlClient } from '../store/sql-client.ts'

/**
 * Removes records whose time in the recycle bin is over, user by user, one short transaction
 * each. The user's min_valid_seq moves past the newest seq removed: a device whose cursor is
 * older never saw those deletions, so it can no longer be served a correct stream and is told
 * to reset (`cursor_purged`). Safe to run on every node at once: the counter row is locked.
 */
export async function purgeExpired(db: SqlClient, now: number, maxUsers = 1000): Promise<{ users: number; records: number }> {
  const { rows: users } = await db.query<{ user_id: string }>(
    'SELECT DISTINCT user_id FROM records WHERE purge_at <= $1 LIMIT $2',
    [now, maxUsers],
  )
  let records = 0
  for (const { user_id } of users) {
    records += await db.transaction(async (tx) => {
      await tx.query('SELECT 1 FROM user_state WHERE user_id = $1 FOR UPDATE', [user_id])
      const { rows } = await tx.query<{ n: number; top: number | null }>(
        `WITH gone AS (DELETE FROM records WHERE user_id = $1 AND purge_at <= $2 RETURNING seq),
              moved AS (
                UPDATE user_state SET min_valid_seq = GREATEST(min_valid_seq, (SELECT max(seq) FROM gone))
                 WHERE user_id = $1 AND EXISTS (SELECT 1 FROM gone) RETURNING 1
              )
         SELECT count(*)::int8 AS n, max(seq) AS top FROM gone`,
        [user_id, now],
      )
      return rows[0]?.n ?? 0
    })
  }
  return { users: users.length, records }
}
