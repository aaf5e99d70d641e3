import t from 'tap'
import { createPostgresClient } from '../../src/store/postgres.ts'
import { postgresAvailable, TEST_DATABASE_URL } from '../helpers/services.ts'

/** The backend pids serving `n` queries that run at once, so each holds its own connection. */
async function backends(db: ReturnType<typeof createPostgresClient>, n: number): Promise<number[]> {
  const answers = await Promise.all(
    Array.from({ length: n }, () => db.query<{ pid: number }>('SELECT pg_backend_pid() AS pid FROM pg_sleep(0.2)')),
  )
  return answers.map((a) => a.rows[0]!.pid).sort((a, b) => a - b)
}

t.test('postgres: connections a burst opened stay open while idle', async (t) => {
  if (!(await postgresAvailable())) return void t.skip('Postgres is not running', () => {})
  const db = createPostgresClient({ url: TEST_DATABASE_URL, max: 4 })
  t.teardown(() => db.close())

  const burst = await backends(db, 4)
  t.equal(new Set(burst).size, 4, 'the burst opened four connections')
  // pg-pool's default closes a connection idle for 10 s; closing backends stalls Postgres.
  await new Promise((resolve) => setTimeout(resolve, 11_000))
  t.same(await backends(db, 4), burst, 'the next burst runs on the same four backends')
})
