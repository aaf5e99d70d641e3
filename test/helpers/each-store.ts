import t, { type Test } from 'tap'
import { migrate } from '../../src/store/migrate.ts'
import { createPgliteClient } from '../../src/store/pglite.ts'
import { createPostgresClient } from '../../src/store/postgres.ts'
import type { SqlClient } from '../../src/store/sql-client.ts'
import { freshPostgresSchema, postgresAvailable } from './services.ts'

const stores: Array<{ name: 'postgres' | 'pglite'; open(): Promise<{ db: SqlClient; close(): Promise<void> }> }> = [
  {
    name: 'postgres',
    async open() {
      const schema = await freshPostgresSchema()
      const db = createPostgresClient({ url: schema.url, max: 3 })
      return { db, close: async () => (await db.close(), await schema.drop()) }
    },
  },
  {
    name: 'pglite',
    async open() {
      const db = await createPgliteClient()
      return { db, close: () => db.close() }
    },
  },
]

/**
 * Runs `suite` as one subtest per store, the real Postgres (a fresh schema) and the embedded
 * PGlite, each migrated and closed afterwards. Without a Postgres server the Postgres subtest
 * skips, saying so (`.ci/run` makes sure there is one).
 */
export function eachStore(suite: (t: Test, db: SqlClient) => Promise<void>): void {
  for (const store of stores) {
    t.test(store.name, async (t) => {
      if (store.name === 'postgres' && !(await postgresAvailable())) return void t.skip('Postgres is not running', () => {})
      const { db, close } = await store.open()
      t.teardown(close)
      await migrate(db)
      await suite(t, db)
    })
  }
}
