import pg from 'pg'
import type { SqlClient, SqlQueryable } from './sql-client.ts'
import { HubError } from '../../protocol/errors.ts'

/**
 * Sequence numbers and times are int8; they stay well inside 2^53, so they come back as numbers.
 * Set per pool, not in pg's process-wide type registry: other pg clients in the process keep theirs.
 */
const TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
}

/** Connection errors and server shutdowns mean "the database is down": retryable, nothing applied. */
const UNAVAILABLE: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08006', '08001', '08003', '08004'])

export function toStoreError(err: unknown): unknown {
  const code = (err as { code?: string })?.code
  if (err instanceof HubError) return err
  if ((code && UNAVAILABLE.has(code)) || /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect/i.test(String((err as Error)?.message))) {
    return new HubError('unavailable', 'database unavailable, nothing was applied; retry later')
  }
  return err
}

/** A stable name per distinct statement text (the hub has a few dozen), for one pool's connections. */
function statementNamer(): (text: string) => string {
  const names = new Map<string, string>()
  return (text) => {
    let name = names.get(text)
    if (!name) names.set(text, (name = `synchub_${names.size + 1}`))
    return name
  }
}

/**
 * The URL with our session settings added to whatever `options` it already carries (a
 * search_path, say), so every connection starts with them, before its first query. Named
 * statements would otherwise settle on a generic plan built while the tables were young (a
 * sequential scan of records): each execution is planned for its values. Measured on the bench
 * at 5,000 pushes/s, when the group-commit write was still such a statement, generic plans took
 * Postgres from ~65% to ~100% of a core and doubled p99. That write now keeps a plan of its own,
 * one that no statistics can turn into a scan (migration 0006).
 */
function withSessionSettings(url: string): string {
  const parsed = new URL(url)
  const options = [parsed.searchParams.get('options'), '-c plan_cache_mode=force_custom_plan'].filter(Boolean).join(' ')
  parsed.searchParams.set('options', options)
  return parsed.toString()
}

export interface PostgresOptions {
  url: string
  /** Pool size; group commit keeps the number of busy connections small. */
  max?: number
}

export function createPostgresClient(opts: PostgresOptions): SqlClient {
  // Connections, once opened, stay open (pg-pool would close one idle for 10 s). Postgres
  // stalls while backends exit: measured on the bench, the connections a burst of reads had
  // opened closed together 10 s later and held every push for up to 120 ms. Keeping them also
  // keeps each connection's prepared statements. The pool's size is the bound either way.
  const pool = new pg.Pool({ connectionString: withSessionSettings(opts.url), max: opts.max ?? 10, connectionTimeoutMillis: 5000, idleTimeoutMillis: 0, types: TYPES })
  const statementName = statementNamer()
  // An idle client losing its connection must not crash the process; the next query reconnects.
  pool.on('error', () => {})
  const run = async <T>(q: pg.Pool | pg.PoolClient, text: string, params?: unknown[]) => {
    try {
      // Parameterised statements are named, so each connection parses and plans them once.
      const query = params ? { name: statementName(text), text, values: params } : text
      return (await q.query(query as pg.QueryConfig)) as unknown as { rows: T[] }
    } catch (err) {
      throw toStoreError(err)
    }
  }
  const queryable = (q: pg.Pool | pg.PoolClient): SqlQueryable => ({
    query: (text, params) => run(q, text, params),
    exec: async (script) => void (await run(q, script)),
  })
  return {
    kind: 'postgres',
    ...queryable(pool),
    async transaction(fn) {
      let client: pg.PoolClient
      try {
        client = await pool.connect()
      } catch (err) {
        throw toStoreError(err)
      }
      const tx = queryable(client)
      let broken = false
      try {
        await tx.query('BEGIN')
        const result = await fn(tx)
        await tx.query('COMMIT')
        return result
      } catch (err) {
        try {
          await client.query('ROLLBACK')
        } catch {
          broken = true
        }
        throw toStoreError(err)
      } finally {
        client.release(broken)
      }
    },
    async withAdvisoryLock(key, fn) {
      const client = await pool.connect().catch((err) => {
        throw toStoreError(err)
      })
      const db = queryable(client)
      try {
        await db.query('SELECT pg_advisory_lock($1)', [key])
        try {
          return await fn(db)
        } finally {
          await db.query('SELECT pg_advisory_unlock($1)', [key])
        }
      } finally {
        client.release()
      }
    },
    reserved: (connections) => createPostgresClient({ url: opts.url, max: connections }),
    close: () => pool.end(),
  }
}
