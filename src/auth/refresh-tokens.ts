import { randomUUID } from 'node:crypto'
import type { AuthStore, AuthTables } from '../store/auth-store.ts'
import type { Role } from './roles.ts'
import { hashRefreshToken, newRefreshToken } from './tokens.ts'

export type RotateOutcome =
  | { ok: true; token: string; user: { id: string; username: string; role: Role } }
  | { ok: false; reason: 'unknown' | 'expired' | 'revoked' | 'reused' | 'disabled' }

/**
 * Refresh-token families. A login starts a family; every refresh marks the presented token used
 * and adds its successor to the family. Presenting a used token means a copy leaked (or a
 * client replayed one): the whole family is revoked.
 */
export class RefreshTokens {
  constructor(
    private readonly store: AuthStore,
    private readonly ttlSec: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Starts a new family (login); returns the plaintext token, which is never stored. */
  issue(userId: string, deviceId?: string, tables: AuthTables = this.store): Promise<string> {
    return this.insert(tables, userId, randomUUID(), deviceId ?? null)
  }

  /** Swaps a valid token for its successor; on reuse revokes the family (committed, then reported). */
  rotate(token: string): Promise<RotateOutcome> {
    const hash = hashRefreshToken(token)
    return this.store.transaction(async (tx): Promise<RotateOutcome> => {
      const now = this.now()
      const row = await tx.refreshTokens.lockPresented(hash)
      if (!row) return { ok: false, reason: 'unknown' }
      if (row.revoked_at !== null) return { ok: false, reason: 'revoked' }
      if (row.used_at !== null) {
        await tx.refreshTokens.revokeFamily(row.user_id, row.family, now)
        return { ok: false, reason: 'reused' }
      }
      if (row.expires_at <= now) return { ok: false, reason: 'expired' }
      if (row.disabled) return { ok: false, reason: 'disabled' }
      await tx.refreshTokens.markUsed(hash, now)
      const next = await this.insert(tx, row.user_id, row.family, row.device_id)
      return { ok: true, token: next, user: { id: row.user_id, username: row.username, role: row.role } }
    })
  }

  /** Revokes the family the token belongs to (logout). False when the token is unknown. */
  async revokeFamilyOf(token: string): Promise<boolean> {
    const row = await this.store.refreshTokens.familyOf(hashRefreshToken(token))
    if (!row) return false
    await this.store.refreshTokens.revokeFamily(row.user_id, row.family, this.now())
    return true
  }

  /** Revokes every live token of a user (disabled accounts must log in again once re-enabled). */
  revokeUser(userId: string): Promise<void> {
    return this.store.refreshTokens.revokeUser(userId, this.now())
  }

  /** Deletes expired rows (rotation adds one per refresh); an expired token is refused either way. */
  pruneExpired(): Promise<number> {
    return this.store.refreshTokens.pruneExpired(this.now())
  }

  private async insert(tables: AuthTables, userId: string, family: string, deviceId: string | null): Promise<string> {
    const token = newRefreshToken()
    const now = this.now()
    await tables.refreshTokens.insert({ userId, hash: hashRefreshToken(token), family, deviceId, createdAt: now, expiresAt: now + this.ttlSec * 1000 })
    return token
  }
}
