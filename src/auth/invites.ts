import { randomBytes } from 'node:crypto'
import type { z } from 'zod'
import { HubError } from '../../protocol/errors.ts'
import type { AdminInviteView, InviteView } from '../../protocol/rest.ts'
import type { SqlQueryable } from '../store/sql-client.ts'
import type { Role } from './roles.ts'

export type Invite = z.infer<typeof InviteView>
export type AdminInvite = z.infer<typeof AdminInviteView>

/** Invite codes are bearer secrets: 128 random bits, base64url. */
export async function createInvite(db: SqlQueryable, invite: { role: Role; createdBy: string | null; now: number; expiresInSec: number }): Promise<Invite> {
  const code = randomBytes(16).toString('base64url')
  const expiresAt = invite.now + invite.expiresInSec * 1000
  await db.query('INSERT INTO invites (code, role, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)', [
    code,
    invite.role,
    invite.createdBy,
    invite.now,
    expiresAt,
  ])
  return { code, role: invite.role, expires_at: expiresAt }
}

/**
 * Locks an invite for the registering transaction and checks it is usable; returns its role.
 * The row lock makes two registrations racing on one code take turns, so only one uses it.
 */
export async function claimInvite(tx: SqlQueryable, code: string, now: number): Promise<Role> {
  const { rows } = await tx.query<{ role: Role; expires_at: number; used_at: number | null }>(
    'SELECT role, expires_at, used_at FROM invites WHERE code = $1 FOR UPDATE',
    [code],
  )
  const invite = rows[0]
  if (!invite) throw new HubError('forbidden', 'invite is not valid')
  if (invite.used_at !== null) throw new HubError('forbidden', 'invite has already been used')
  if (invite.expires_at <= now) throw new HubError('forbidden', 'invite has expired')
  return invite.role
}

/** Marks a claimed invite used, in the same transaction that created the user. */
export async function markInviteUsed(tx: SqlQueryable, code: string, userId: string, now: number): Promise<void> {
  await tx.query('UPDATE invites SET used_by = $2, used_at = $3 WHERE code = $1', [code, userId, now])
}

/** The newest invites first, used and expired ones included (an audit view for admins). */
export async function listInvites(db: SqlQueryable, limit = 1000): Promise<AdminInvite[]> {
  const { rows } = await db.query<AdminInvite>(
    'SELECT code, role, expires_at, created_at, created_by, used_by, used_at FROM invites ORDER BY created_at DESC, code LIMIT $1',
    [limit],
  )
  return rows
}
