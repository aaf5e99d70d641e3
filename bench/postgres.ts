import pg from 'pg'
import { onCleanup } from './cleanup.ts'
import type { StepPreparation } from './scenarios/types.ts'

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
  const { rows } = await withClient(BENCH_DATABASE_URL, (client) =>
    client.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE application_name = $1`, [appName]),
  )
  return rows.map((r) => r.pid)
}

/** At most this many segments are reserved ahead (1 GiB at 16 MiB, Postgres's default max_wal_size). */
const MAX_SEGMENTS_AHEAD = 64

/**
 * Makes sure the server holds recycled WAL segments for `bytes` more WAL, as a server under
 * sustained load does: each checkpoint renames spent segments for reuse, as many as the WAL
 * written between checkpoints. A server that sat idle keeps only a few (min_wal_size), so a
 * burst makes the backend that crosses into each next segment create and zero-fill a new 16 MiB
 * file while it holds the WAL write lock, stalling every commit (up to 68 ms on a fresh cluster
 * here), one every ~2 s at 5,000 pushes/s. Switching through empty segments and then
 * checkpointing leaves that many recycled ahead. Needs superuser (pg_switch_wal, CHECKPOINT).
 */
export async function reserveWal(bytes: number, url = BENCH_DATABASE_URL): Promise<StepPreparation> {
  const started = performance.now()
  try {
    return await withClient(url, async (client) => {
      const before = await segmentsAhead(client)
      const want = Math.min(MAX_SEGMENTS_AHEAD, Math.ceil(bytes / before.segmentBytes) + 1)
      if (before.ahead >= want) return { ok: true, detail: `${before.ahead} recycled WAL segments ahead (${want} needed)` }
      // pg_switch_wal only leaves a segment that holds some WAL: write a tiny record first.
      for (let i = before.ahead; i < want; i++) await client.query(`SELECT pg_logical_emit_message(false, 'synchub-bench', ''); SELECT pg_switch_wal()`)
      await client.query('CHECKPOINT')
      const after = await segmentsAhead(client)
      const took = Math.round(performance.now() - started)
      return { ok: true, detail: `${after.ahead} recycled WAL segments ahead (${want} needed; were ${before.ahead}; ${took} ms)` }
    })
  } catch (err) {
    return { ok: false, detail: `WAL segments not reserved: ${(err as Error).message}` }
  }
}

async function segmentsAhead(client: pg.Client): Promise<{ ahead: number; segmentBytes: number }> {
  const { rows } = await client.query<{ ahead: number; segment_bytes: string }>(
    `SELECT (SELECT count(*)::int FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$' AND name > pg_walfile_name(pg_current_wal_lsn())) AS ahead,
            (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size') AS segment_bytes`,
  )
  return { ahead: rows[0]!.ahead, segmentBytes: Number(rows[0]!.segment_bytes) }
}

async function query(sql: string): Promise<void> {
  await withClient(BENCH_DATABASE_URL, (client) => client.query(sql))
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 })
  await client.connect()
  try {
    return await fn(client)
  } finally {
    await client.end()
  }
}
