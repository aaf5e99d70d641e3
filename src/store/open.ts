import { createPgliteClient } from './pglite.ts'
import { createPostgresClient } from './postgres.ts'
import type { SqlClient } from './sql-client.ts'

/** Postgres when DATABASE_URL is set, else the embedded PGlite in the data directory. */
export async function openStore(config: { databaseUrl?: string; databasePoolSize: number; dataDir: string }): Promise<SqlClient> {
  if (config.databaseUrl) return createPostgresClient({ url: config.databaseUrl, max: config.databasePoolSize })
  return createPgliteClient(config.dataDir.startsWith('memory://') ? undefined : `${config.dataDir.replace(/\/$/, '')}/pglite`)
}
