import { randomBytes } from 'node:crypto'
import type { z } from 'zod'
import { HubError } from '../../protocol/errors.ts'
import type { InviteView } from '../../protocol/rest.ts'
import type { InviteStore } from '../store/invite-store.ts'
import type { Role } from './roles.ts'

export type Invite = z.infer<typeof InviteView>

/** Invite codes are bearer secrets: 128 random bits, base64url. */
export async function createInvite(invites: InviteStore, invite: { role: Role; createdBy: string | null; now: number; expiresInSec: number }): Promise<Invite> {
  const code = randomBytes(16).toString('base64url')
  const expiresAt = invite.now + invite.expiresInSec * 1000
  await invites.insert({ code, role: invite.role, createdBy: invite.createdBy, createdAt: invite.now, expiresAt })
  return { code, role: invite.role, expires_at: expiresAt }
}

/**
 * Locks an invite for the registering transaction and checks it is usable; returns its role.
 * The row lock makes two registrations racing on one code take turns, so only one uses it.
 */
export async function claimInvite(invites: InviteStore, code: string, now: number): Promise<Role> {
  const invite = await invites.lock(code)
  if (!invite) throw new HubError('forbidden', 'invite is not valid')
  if (invite.used_at !== null) throw new HubError('forbidden', 'invite has already been used')
  if (invite.expires_at <= now) throw new HubError('forbidden', 'invite has expired')
  return invite.role
}
