import pg from 'pg'
import { onCleanup } from './cleanup.ts'

export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

/**
 * A fresh schema reached through the URL's search_path (as test/helpers/services.ts does), dropped
 * by `drop()` or, if the run is interrupted, by the cleanup hooks.
 */
export async function freshSchema(): Promise<{ url: string; schema: string; drop(): Promise<void>; serverPids(): Promise<number[]> }> {
  const schema = `bench_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  await query(`CREATE SCHEMA ${schema}`)
  const url = new URL(BENCH_DATABASE_URL)
  url.searchParams.set('options', `-c search_path=${schema}`)
  // Tags the hub's connections, so its backends' CPU can be told from other users of this server.
  url.searchParams.set('application_name', schema)
  let dropped: Promise<void> | undefined
  const drop = () => (dropped ??= query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(unregister))
  const unregister = onCleanup({ async: drop })
  return { url: url.toString(), schema, drop, serverPids: () => serverPids(schema) }
}

/**
 * Backends of the connections tagged `appName`. Postgres's own background processes (WAL writer,
 * checkpointer) serve every client of the server, so they stay out (in "other CPU").
 */
async function serverPids(appName: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: BENCH_DATABASE_URL, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    const { rows } = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = $1`,
      [appName],
    )
    return rows.map((r) => r.pid)
  } finally {
    await client.end()
  }
}

async function query(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: BENCH_DATABASE_URL, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}
