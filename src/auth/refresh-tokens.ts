import { randomUUID } from 'node:crypto'
import type { SqlClient, SqlQueryable } from '../store/sql-client.ts'
import type { Role } from './roles.ts'
import { hashRefreshToken, newRefreshToken } from './tokens.ts'

export type RotateOutcome =
  | { ok: true; token: string; user: { id: string; username: string; role: Role } }
  | { ok: false; reason: 'unknown' | 'expired' | 'revoked' | 'reused' | 'disabled' }

interface Presented {
  user_id: string
  family: string
  device_id: string | null
  expires_at: number
  used_at: number | null
  revoked_at: number | null
  username: string
  role: Role
  disabled: boolean
}

/**
 * Refresh-token families in the refresh_tokens table. A login starts a family; every refresh
 * marks the presented token used and adds its successor to the family. Presenting a used token
 * means a copy leaked (or a client replayed one): the whole family is revoked.
 */
export class RefreshTokens {
  constructor(
    private readonly db: SqlClient,
    private readonly ttlSec: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts a new family (login); returns the plaintext token, which is never stored. */
  issue(userId: string, deviceId?: string, db: SqlQueryable = this.db): Promise<string> {
    return this.insert(db, userId, randomUUID(), deviceId ?? null)
  }

  /** Swaps a valid token for its successor; on reuse revokes the family (committed, then reported). */
  rotate(token: string): Promise<RotateOutcome> {
    const hash = hashRefreshToken(token)
    return this.db.transaction(async (tx): Promise<RotateOutcome> => {
      const now = this.now()
      const { rows } = await tx.query<Presented>(
        `SELECT t.user_id, t.family, t.device_id, t.expires_at, t.used_at, t.revoked_at, u.username, u.role, u.disabled
           FROM refresh_tokens t JOIN users u ON u.id = t.user_id
          WHERE t.token_hash = $1 FOR UPDATE OF t`,
        [hash],
      )
      const row = rows[0]
      if (!row) return { ok: false, reason: 'unknown' }
      if (row.revoked_at !== null) return { ok: false, reason: 'revoked' }
      if (row.used_at !== null) {
        await this.revokeFamilyIn(tx, row.user_id, row.family, now)
        return { ok: false, reason: 'reused' }
      }
      if (row.expires_at <= now) return { ok: false, reason: 'expired' }
      if (row.disabled) return { ok: false, reason: 'disabled' }
      await tx.query('UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1', [hash, now])
      const next = await this.insert(tx, row.user_id, row.family, row.device_id)
      return { ok: true, token: next, user: { id: row.user_id, username: row.username, role: row.role } }
    })
  }

  /** Revokes the family the token belongs to (logout). False when the token is unknown. */
  async revokeFamilyOf(token: string): Promise<boolean> {
    const { rows } = await this.db.query<{ user_id: string; family: string }>(
      'SELECT user_id, family FROM refresh_tokens WHERE token_hash = $1',
      [hashRefreshToken(token)],
    )
    const row = rows[0]
    if (!row) return false
    await this.revokeFamilyIn(this.db, row.user_id, row.family, this.now())
    return true
  }

  /** Revokes every live token of a user (disabled accounts must log in again once re-enabled). */
  async revokeUser(userId: string): Promise<void> {
    await this.db.query('UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL', [userId, this.now()])
  }

  /** Deletes expired rows (rotation adds one per refresh); an expired token is refused either way. */
  async pruneExpired(): Promise<number> {
    const { rows } = await this.db.query<{ n: number }>(
      'WITH gone AS (DELETE FROM refresh_tokens WHERE expires_at <= $1 RETURNING 1) SELECT count(*)::int8 AS n FROM gone',
      [this.now()],
    )
    return rows[0]?.n ?? 0
  }

  private async revokeFamilyIn(db: SqlQueryable, userId: string, family: string, now: number): Promise<void> {
    await db.query('UPDATE refresh_tokens SET revoked_at = $3 WHERE user_id = $1 AND family = $2 AND revoked_at IS NULL', [userId, family, now])
  }

  private async insert(db: SqlQueryable, userId: string, family: string, deviceId: string | null): Promise<string> {
    const token = newRefreshToken()
    const now = this.now()
    await db.query(
      'INSERT INTO refresh_tokens (user_id, token_hash, family, device_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [userId, hashRefreshToken(token), family, deviceId, now, now + this.ttlSec * 1000],
    )
    return token
  }
}
