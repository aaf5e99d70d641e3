import pg from 'pg'
import { Redis } from 'ioredis'

/** Where the test Postgres lives; CI sets nothing and uses the machine's server. */
export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

let pgUp: Promise<boolean> | undefined
/** True when Postgres answers. Under CI its absence is a failure, never a skip. */
export function postgresAvailable(): Promise<boolean> {
  return (pgUp ??= (async () => {
    const client = new pg.Client({ connectionString: TEST_DATABASE_URL, connectionTimeoutMillis: 2000 })
    try {
      await client.connect()
      await client.end()
      return true
    } catch (err) {
      if (process.env.CI) throw new Error(`CI requires Postgres at ${TEST_DATABASE_URL}: ${(err as Error).message}`)
      return false
    }
  })())
}

/**
 * A fresh, empty schema in the test database, reached through the URL's search_path, so every
 * suite (and every hub in it) starts from nothing without creating databases.
 */
export async function freshPostgresSchema(): Promise<{ url: string; drop(): Promise<void> }> {
  const schema = `t_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL })
  await admin.connect()
  await admin.query(`CREATE SCHEMA ${schema}`)
  await admin.end()
  const url = new URL(TEST_DATABASE_URL)
  url.searchParams.set('options', `-c search_path=${schema}`)
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: TEST_DATABASE_URL })
      await c.connect()
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
      await c.end()
    },
  }
}

/** True when Redis answers. Under CI its absence is a failure, never a skip. */
export async function redisAvailable(): Promise<boolean> {
  const r = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  r.on('error', () => {})
  try {
    await r.connect()
    await r.ping()
    return true
  } catch (err) {
    if (process.env.CI) throw new Error(`CI requires Redis at ${TEST_REDIS_URL}`)
    return false
  } finally {
    r.disconnect()
  }
}
