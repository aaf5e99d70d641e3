import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import type { SqlClient } from './sql-client.ts'

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url))
/** Advisory lock key held while migrating, so hub nodes starting together apply each file once. */
const MIGRATION_LOCK = 0x5_1c_4b_00

export interface Migration {
  version: number
  name: string
  sql: string
}

export function listMigrations(dir = MIGRATIONS_DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d+_[\w-]+\.sql$/.test(f))
    .sort()
    .map((file) => ({ version: Number(file.split('_')[0]), name: file, sql: readFileSync(join(dir, file), 'utf8') }))
}

/** Applies every migration not yet recorded, each in its own transaction. Returns the names applied. */
export async function migrate(db: SqlClient, dir?: string): Promise<string[]> {
  return db.withAdvisoryLock(MIGRATION_LOCK, async (conn) => {
    await conn.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at int8 NOT NULL)',
    )
    const { rows } = await conn.query<{ version: number }>('SELECT version FROM schema_migrations')
    const done = new Set(rows.map((r) => Number(r.version)))
    const applied: string[] = []
    for (const m of listMigrations(dir)) {
      if (done.has(m.version)) continue
      await conn.query('BEGIN')
      try {
        await conn.exec(m.sql)
        await conn.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [m.version, m.name, Date.now()])
        await conn.query('COMMIT')
      } catch (err) {
        await conn.query('ROLLBACK')
        throw new Error(`migration ${m.name} failed: ${(err as Error).message}`)
      }
      applied.push(m.name)
    }
    return applied
  })
}
