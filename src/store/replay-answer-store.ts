import type { SqlClient } from './sql-client.ts'

/** A device and the range of its stored first answers (op_results) that may go. */
export interface PrunableDevice {
  user_id: string
  id: string
  /** Answers up to this mid may go. */
  upto: number
  /** The device's oldest stored answer, null when it has none. */
  low: number | null
}

/** Statements of the replay window's prune (sync/replay-window.ts). */
export class ReplayAnswerStore {
  constructor(private readonly db: SqlClient) {}

  /**
   * One page of devices in key order after `after`, each with the mids it may drop: all but its
   * latest `keep` (every one for a revoked device, which never pushes again).
   */
  async devicesAfter(after: { user: string; device: string }, keep: number, limit: number): Promise<PrunableDevice[]> {
    const { rows } = await this.db.query<PrunableDevice>(
      `SELECT d.user_id, d.id, CASE WHEN d.revoked_at IS NULL THEN d.last_mid - $3 ELSE d.last_mid END AS upto,
              (SELECT min(o.mid) FROM op_results o WHERE o.user_id = d.user_id AND o.device_id = d.id) AS low
         FROM devices d
        WHERE (d.user_id, d.id) > ($1, $2)
        ORDER BY d.user_id, d.id
        LIMIT $4`,
      [after.user, after.device, keep, limit],
    )
    return rows
  }

  /** Deletes the device's answers with mids in [from, to]; returns how many went. */
  async deleteAnswers(userId: string, deviceId: string, from: number, to: number): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      `WITH gone AS (DELETE FROM op_results WHERE user_id = $1 AND device_id = $2 AND mid >= $3 AND mid <= $4 RETURNING 1)
       SELECT count(*)::int8 AS n FROM gone`,
      [userId, deviceId, from, to],
    )
    return rows[0]?.n ?? 0
  }
}
