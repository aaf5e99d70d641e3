import { createPgliteClient } from '../../src/store/pglite.ts'
import { createPostgresClient } from '../../src/store/postgres.ts'
import { migrate } from '../../src/store/migrate.ts'
import type { SqlClient } from '../../src/store/sql-client.ts'
import { freshPostgresSchema, postgresAvailable } from '../helpers/services.ts'

export interface AuthStore {
  name: 'postgres' | 'pglite'
  /** A migrated, empty database and how to throw it away. */
  open(): Promise<{ db: SqlClient; close(): Promise<void> }>
}

/** The auth suites run unchanged against both stores. */
export const AUTH_STORES: AuthStore[] = [
  {
    name: 'postgres',
    async open() {
      const schema = await freshPostgresSchema()
      const db = createPostgresClient({ url: schema.url, max: 4 })
      await migrate(db)
      return { db, close: async () => (await db.close(), await schema.drop()) }
    },
  },
  {
    name: 'pglite',
    async open() {
      const db = await createPgliteClient()
      await migrate(db)
      return { db, close: () => db.close() }
    },
  },
]

/** Why a store's suite is skipped, or false to run it. Postgres may be absent only outside CI. */
export async function skipReason(store: AuthStore): Promise<string | false> {
  if (store.name !== 'postgres') return false
  return (await postgresAvailable()) ? false : 'Postgres is not running (start it, or set CI=true to make this a failure)'
}

/** A clock the test moves by hand, for expiry and cache TTLs. */
export function manualClock(start = Date.now()) {
  let t = start
  return { now: () => t, advance: (ms: number) => void (t += ms) }
}
