import { randomBytes, randomUUID } from 'node:crypto'
import type { z } from 'zod'
import { HubError } from '../../protocol/errors.ts'
import type { AdminUserView } from '../../protocol/rest.ts'
import type { SqlQueryable } from '../store/sql-client.ts'
import type { Role } from './roles.ts'
import type { UserStatus } from './user-status-cache.ts'

export type AdminUser = z.infer<typeof AdminUserView>

export interface UserRow {
  id: string
  username: string
  password_hash: string
  role: Role
  disabled: boolean
  created_at: number
}

const UNIQUE_VIOLATION = '23505'
const VIEW_COLUMNS = 'id, username, role, disabled, created_at'

/**
 * Creates a user and its sync counter row (seq 0, a fresh epoch, default scope). Run it inside a
 * transaction so a user never exists without its counter. A taken username (any letter case)
 * is HubError `invalid`.
 */
export async function insertUser(tx: SqlQueryable, user: { username: string; passwordHash: string; role: Role; now: number }): Promise<UserRow> {
  const id = randomUUID()
  try {
    await tx.query('INSERT INTO users (id, username, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)', [
      id,
      user.username,
      user.passwordHash,
      user.role,
      user.now,
    ])
  } catch (err) {
    if ((err as { code?: unknown })?.code === UNIQUE_VIOLATION) throw new HubError('invalid', 'username is already taken')
    throw err
  }
  await tx.query('INSERT INTO user_state (user_id, seq, epoch, scope) VALUES ($1, 0, $2, NULL)', [id, randomBytes(9).toString('base64url')])
  return { id, username: user.username, password_hash: user.passwordHash, role: user.role, disabled: false, created_at: user.now }
}

/** Looks a user up by name, ignoring letter case (the unique index is on lower(username)). */
export async function findUserByName(db: SqlQueryable, username: string): Promise<UserRow | undefined> {
  const { rows } = await db.query<UserRow>(
    'SELECT id, username, password_hash, role, disabled, created_at FROM users WHERE lower(username) = lower($1)',
    [username],
  )
  return rows[0]
}

export async function findUserView(db: SqlQueryable, id: string): Promise<AdminUser | undefined> {
  const { rows } = await db.query<AdminUser>(`SELECT ${VIEW_COLUMNS} FROM users WHERE id = $1`, [id])
  return rows[0]
}

export async function loadUserStatus(db: SqlQueryable, id: string): Promise<UserStatus | undefined> {
  const { rows } = await db.query<UserStatus>('SELECT username, role, disabled FROM users WHERE id = $1', [id])
  return rows[0]
}

/** One page of users in lowercase-username order, after the username `after`. */
export async function listUsers(db: SqlQueryable, page: { limit: number; after?: string }): Promise<{ items: AdminUser[]; next?: string }> {
  const { rows } = await db.query<AdminUser>(
    `SELECT ${VIEW_COLUMNS} FROM users WHERE $1::text IS NULL OR lower(username) > lower($1::text) ORDER BY lower(username) LIMIT $2`,
    [page.after ?? null, page.limit + 1],
  )
  const items = rows.slice(0, page.limit)
  return rows.length > page.limit ? { items, next: items.at(-1)!.username } : { items }
}

/** Applies an admin's change; undefined when the user does not exist. */
export async function updateUser(db: SqlQueryable, id: string, patch: { disabled?: boolean; role?: Role }): Promise<AdminUser | undefined> {
  const { rows } = await db.query<AdminUser>(
    `UPDATE users SET disabled = COALESCE($2, disabled), role = COALESCE($3, role) WHERE id = $1 RETURNING ${VIEW_COLUMNS}`,
    [id, patch.disabled ?? null, patch.role ?? null],
  )
  return rows[0]
}

export async function setPasswordHash(db: SqlQueryable, id: string, passwordHash: string): Promise<void> {
  await db.query('UPDATE users SET password_hash = $2 WHERE id = $1', [id, passwordHash])
}
