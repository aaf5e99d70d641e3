import { randomBytes, randomUUID } from 'node:crypto'
import type { z } from 'zod'
import type { AdminUserView, Role as RoleSchema } from '../../protocol/rest.ts'
import type { SqlQueryable } from './sql-client.ts'

type Role = z.infer<typeof RoleSchema>
export type AdminUser = z.infer<typeof AdminUserView>

export interface UserRow {
  id: string
  username: string
  password_hash: string
  role: Role
  disabled: boolean
  created_at: number
}

/** What verifying a token needs to know about its user now (not when the token was signed). */
export interface UserStatus {
  username: string
  role: Role
  disabled: boolean
}

const UNIQUE_VIOLATION = '23505'
const VIEW_COLUMNS = 'id, username, role, disabled, created_at'

/** The users table (accounts), and each new user's sync counter row. */
export class UserStore {
  constructor(private readonly q: SqlQueryable) {}

  /**
   * Creates a user and its sync counter row (seq 0, a fresh epoch, default scope). Run it inside
   * a transaction so a user never exists without its counter. Undefined when the username is
   * taken (any letter case); the transaction is then unusable and must roll back.
   */
  async insert(user: { username: string; passwordHash: string; role: Role; now: number }): Promise<UserRow | undefined> {
    const id = randomUUID()
    try {
      await this.q.query('INSERT INTO users (id, username, password_hash, role, created_at) VALUES ($1, $2, $3, $4, $5)', [
        id,
        user.username,
        user.passwordHash,
        user.role,
        user.now,
      ])
    } catch (err) {
      if ((err as { code?: unknown })?.code === UNIQUE_VIOLATION) return undefined
      throw err
    }
    await this.q.query('INSERT INTO user_state (user_id, seq, epoch, scope) VALUES ($1, 0, $2, NULL)', [id, randomBytes(9).toString('base64url')])
    return { id, username: user.username, password_hash: user.passwordHash, role: user.role, disabled: false, created_at: user.now }
  }

  /** Looks a user up by name, ignoring letter case (the unique index is on lower(username)). */
  async findByName(username: string): Promise<UserRow | undefined> {
    const { rows } = await this.q.query<UserRow>(
      'SELECT id, username, password_hash, role, disabled, created_at FROM users WHERE lower(username) = lower($1)',
      [username],
    )
    return rows[0]
  }

  async view(id: string): Promise<AdminUser | undefined> {
    const { rows } = await this.q.query<AdminUser>(`SELECT ${VIEW_COLUMNS} FROM users WHERE id = $1`, [id])
    return rows[0]
  }

  async status(id: string): Promise<UserStatus | undefined> {
    const { rows } = await this.q.query<UserStatus>('SELECT username, role, disabled FROM users WHERE id = $1', [id])
    return rows[0]
  }

  /** One page of users in lowercase-username order, after the username `after`. */
  async list(page: { limit: number; after?: string }): Promise<{ items: AdminUser[]; next?: string }> {
    const { rows } = await this.q.query<AdminUser>(
      `SELECT ${VIEW_COLUMNS} FROM users WHERE $1::text IS NULL OR lower(username) > lower($1::text) ORDER BY lower(username) LIMIT $2`,
      [page.after ?? null, page.limit + 1],
    )
    const items = rows.slice(0, page.limit)
    return rows.length > page.limit ? { items, next: items.at(-1)!.username } : { items }
  }

  /** Applies an admin's change; undefined when the user does not exist. */
  async update(id: string, patch: { disabled?: boolean; role?: Role }): Promise<AdminUser | undefined> {
    const { rows } = await this.q.query<AdminUser>(
      `UPDATE users SET disabled = COALESCE($2, disabled), role = COALESCE($3, role) WHERE id = $1 RETURNING ${VIEW_COLUMNS}`,
      [id, patch.disabled ?? null, patch.role ?? null],
    )
    return rows[0]
  }

  async setPasswordHash(id: string, passwordHash: string): Promise<void> {
    await this.q.query('UPDATE users SET password_hash = $2 WHERE id = $1', [id, passwordHash])
  }
}
