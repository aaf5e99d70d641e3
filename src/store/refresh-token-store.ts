import type { z } from 'zod'
import type { Role as RoleSchema } from '../../protocol/rest.ts'
import type { SqlQueryable } from './sql-client.ts'

type Role = z.infer<typeof RoleSchema>

/** A presented refresh token's row, with what the rotation needs of its user. */
export interface PresentedToken {
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

/** The refresh_tokens table: only hashes of the tokens, grouped in families (one per login). */
export class RefreshTokenStore {
  constructor(private readonly q: SqlQueryable) {}

  async insert(token: { userId: string; hash: string; family: string; deviceId: string | null; createdAt: number; expiresAt: number }): Promise<void> {
    await this.q.query(
      'INSERT INTO refresh_tokens (user_id, token_hash, family, device_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [token.userId, token.hash, token.family, token.deviceId, token.createdAt, token.expiresAt],
    )
  }

  /** The token's row, locked for the rotating transaction, joined with its user. */
  async lockPresented(hash: string): Promise<PresentedToken | undefined> {
    const { rows } = await this.q.query<PresentedToken>(
      `SELECT t.user_id, t.family, t.device_id, t.expires_at, t.used_at, t.revoked_at, u.username, u.role, u.disabled
         FROM refresh_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.token_hash = $1 FOR UPDATE OF t`,
      [hash],
    )
    return rows[0]
  }

  async markUsed(hash: string, now: number): Promise<void> {
    await this.q.query('UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1', [hash, now])
  }

  async familyOf(hash: string): Promise<{ user_id: string; family: string } | undefined> {
    const { rows } = await this.q.query<{ user_id: string; family: string }>('SELECT user_id, family FROM refresh_tokens WHERE token_hash = $1', [hash])
    return rows[0]
  }

  async revokeFamily(userId: string, family: string, now: number): Promise<void> {
    await this.q.query('UPDATE refresh_tokens SET revoked_at = $3 WHERE user_id = $1 AND family = $2 AND revoked_at IS NULL', [userId, family, now])
  }

  async revokeUser(userId: string, now: number): Promise<void> {
    await this.q.query('UPDATE refresh_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL', [userId, now])
  }

  /** Deletes rows expired as of `now`; returns how many. */
  async pruneExpired(now: number): Promise<number> {
    const { rows } = await this.q.query<{ n: number }>(
      'WITH gone AS (DELETE FROM refresh_tokens WHERE expires_at <= $1 RETURNING 1) SELECT count(*)::int8 AS n FROM gone',
      [now],
    )
    return rows[0]?.n ?? 0
  }
}
