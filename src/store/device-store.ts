import type { SqlClient } from './sql-client.ts'

export interface DeviceRow {
  id: string
  name: string | null
  platform: string | null
  created_at: number
  last_seen: number
  acked_cursor: number
  last_mid: number
  revoked_at: number | null
}

/** A user's devices: the list behind GET /v1/devices, and revocation. */
export class DeviceStore {
  constructor(private readonly db: SqlClient) {}

  async list(userId: string): Promise<DeviceRow[]> {
    const { rows } = await this.db.query<DeviceRow>(
      `SELECT id, name, platform, created_at, last_seen, acked_cursor, last_mid, revoked_at
         FROM devices WHERE user_id = $1 ORDER BY last_seen DESC, id`,
      [userId],
    )
    return rows
  }

  /**
   * Revokes a device for good: its sockets are refused from now on, and so are the refresh
   * tokens issued to it. Returns false when the user has no such device.
   */
  async revoke(userId: string, deviceId: string, now: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string }>(
        'UPDATE devices SET revoked_at = COALESCE(revoked_at, $3) WHERE user_id = $1 AND id = $2 RETURNING id',
        [userId, deviceId, now],
      )
      if (rows.length === 0) return false
      await tx.query('UPDATE refresh_tokens SET revoked_at = $3 WHERE user_id = $1 AND device_id = $2 AND revoked_at IS NULL', [userId, deviceId, now])
      return true
    })
  }
}
