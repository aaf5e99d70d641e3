import type { Logger } from 'pino'
import type { Config } from '../ops/config.ts'
import { migrate } from '../store/migrate.ts'
import { openStore } from '../store/open.ts'
import type { SqlClient } from '../store/sql-client.ts'

export interface Database {
  db: SqlClient
  /** Connections of their own for group commits (one per lane). */
  commitDb: SqlClient
  /** Parallel group commits: one for the single-connection embedded store. */
  lanes: number
  close(): Promise<void>
}

/** Opens the store (or takes the one given), applies pending migrations, reserves the commit connections. */
export async function openDatabase(config: Config, log: Logger, given?: SqlClient): Promise<Database> {
  const db = given ?? (await openStore(config))
  try {
    const applied = await migrate(db)
    if (applied.length > 0) log.info({ applied }, 'migrations applied')
  } catch (err) {
    await db.close()
    throw err
  }
  const lanes = db.kind === 'pglite' ? 1 : config.commitLanes
  // One connection per lane, apart from the pool: no burst of reads (devices catching up after
  // a node died, exports, REST pulls) can make a commit wait for a connection.
  const commitDb = db.reserved(lanes)
  return {
    db,
    commitDb,
    lanes,
    async close() {
      await commitDb.close()
      await db.close()
    },
  }
}
