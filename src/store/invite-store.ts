import type { z } from 'zod'
import type { AdminInviteView, Role as RoleSchema } from '../../protocol/rest.ts'
import type { SqlQueryable } from './sql-client.ts'

type Role = z.infer<typeof RoleSchema>
export type AdminInvite = z.infer<typeof AdminInviteView>

/** The invites table: codes an admin hands out, each usable once before it expires. */
export class InviteStore {
  constructor(private readonly q: SqlQueryable) {}

  async insert(invite: { code: string; role: Role; createdBy: string | null; createdAt: number; expiresAt: number }): Promise<void> {
    await this.q.query('INSERT INTO invites (code, role, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [
      invite.code,
      invite.role,
      invite.createdBy,
      invite.createdAt,
      invite.expiresAt,
    ])
  }

  /**
   * The invite, its row locked for the registering transaction: two registrations racing on one
   * code take turns, so only one uses it.
   */
  async lock(code: string): Promise<{ role: Role; expires_at: number; used_at: number | null } | undefined> {
    const { rows } = await this.q.query<{ role: Role; expires_at: number; used_at: number | null }>(
      'SELECT role, expires_at, used_at FROM invites WHERE code = $1 FOR UPDATE',
      [code],
    )
    return rows[0]
  }

  async markUsed(code: string, userId: string, now: number): Promise<void> {
    await this.q.query('UPDATE invites SET used_by = $2, used_at = $3 WHERE code = $1', [code, userId, now])
  }

  /** The newest invites first, used and expired ones included (an audit view for admins). */
  async list(limit: number): Promise<AdminInvite[]> {
    const { rows } = await this.q.query<AdminInvite>(
      'SELECT code, role, expires_at, created_at, created_by, used_by, used_at FROM invites ORDER BY created_at DESC, code LIMIT $1',
      [limit],
    )
    return rows
  }
}
