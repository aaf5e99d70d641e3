import type { SqlClient } from '../store/sql-client.ts'

/**
 * Drops the first answers (op_results) a replay can no longer need: all but each device's latest
 * `keep` mids, and every answer of a revoked device, which never pushes again. A replay of an
 * older mid is still recognised by the device's last_mid and answers `{ok:true, dup:true}`, as
 * PROTOCOL.md allows; what goes is only the copy of the first answer. Without this the table
 * grows by one row per op for good.
 *
 * Walks the devices in key order, a page at a time, and deletes in short statements of at most
 * `chunk` mids each, so no transaction holds many rows. Safe on every node at once: a delete of
 * rows already gone deletes nothing.
 */
export async function pruneReplayAnswers(db: SqlClient, keep: number, opts: { page?: number; chunk?: number } = {}): Promise<{ devices: number; answers: number }> {
  const page = opts.page ?? 1000
  const chunk = opts.chunk ?? 5000
  let after = { user: '', device: '' }
  let devices = 0
  let answers = 0
  for (;;) {
    const { rows } = await db.query<{ user_id: string; id: string; upto: number; low: number | null }>(
      `SELECT d.user_id, d.id, CASE WHEN d.revoked_at IS NULL THEN d.last_mid - $3 ELSE d.last_mid END AS upto,
              (SELECT min(o.mid) FROM op_results o WHERE o.user_id = d.user_id AND o.device_id = d.id) AS low
         FROM devices d
        WHERE (d.user_id, d.id) > ($1, $2)
        ORDER BY d.user_id, d.id
        LIMIT $4`,
      [after.user, after.device, keep, page],
    )
    for (const d of rows) {
      if (d.low === null || d.low > d.upto) continue
      devices++
      for (let from = d.low; from <= d.upto; from += chunk) {
        const { rows: gone } = await db.query<{ n: number }>(
          `WITH gone AS (DELETE FROM op_results WHERE user_id = $1 AND device_id = $2 AND mid >= $3 AND mid <= $4 RETURNING 1)
           SELECT count(*)::int8 AS n FROM gone`,
          [d.user_id, d.id, from, Math.min(from + chunk - 1, d.upto)],
        )
        answers += gone[0]?.n ?? 0
      }
    }
    if (rows.length < page) return { devices, answers }
    const last = rows.at(-1)!
    after = { user: last.user_id, device: last.id }
  }
}
