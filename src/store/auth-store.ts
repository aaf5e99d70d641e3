import { InviteStore } from './invite-store.ts'
import { RefreshTokenStore } from './refresh-token-store.ts'
import type { SqlClient, SqlQueryable } from './sql-client.ts'
import { UserStore } from './user-store.ts'

/** The auth tables' statements, on one connection or inside one transaction. */
export interface AuthTables {
  users: UserStore
  invites: InviteStore
  refreshTokens: RefreshTokenStore
}

const tablesOn = (q: SqlQueryable): AuthTables => ({ users: new UserStore(q), invites: new InviteStore(q), refreshTokens: new RefreshTokenStore(q) })

/** Accounts, invites and refresh tokens: what the auth service reads and writes. */
export class AuthStore implements AuthTables {
  readonly users: UserStore
  readonly invites: InviteStore
  readonly refreshTokens: RefreshTokenStore

  constructor(private readonly db: SqlClient) {
    ;({ users: this.users, invites: this.invites, refreshTokens: this.refreshTokens } = tablesOn(db))
  }

  /** Runs fn in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: AuthTables) => Promise<T>): Promise<T> {
    return this.db.transaction((q) => fn(tablesOn(q)))
  }
}
