import t from 'tap'
import pg from 'pg'
import { reserveWal } from '../postgres.ts'
import { postgresAvailable, TEST_DATABASE_URL } from '../../test/helpers/services.ts'

const SEGMENT = 16 * 1024 * 1024

/** reserveWal needs a superuser; CI's is one, so there a missing one fails instead of skipping. */
async function superuser(): Promise<boolean> {
  if (!(await postgresAvailable())) return false
  const client = new pg.Client({ connectionString: TEST_DATABASE_URL })
  await client.connect()
  try {
    const { rows } = await client.query<{ rolsuper: boolean }>(`SELECT rolsuper FROM pg_roles WHERE rolname = current_user`)
    if (!rows[0]?.rolsuper && process.env.CI) throw new Error(`CI requires a superuser at ${TEST_DATABASE_URL}`)
    return rows[0]?.rolsuper === true
  } finally {
    await client.end()
  }
}

async function segmentsAhead(url: string): Promise<number> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const { rows } = await client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$' AND name > pg_walfile_name(pg_current_wal_lsn())`,
    )
    return rows[0]!.n
  } finally {
    await client.end()
  }
}

t.test('reserveWal leaves recycled WAL segments ahead for the WAL asked for, and says how many', async (t) => {
  if (!(await superuser())) return void t.skip('no Postgres superuser at TEST_DATABASE_URL', () => {})
  const said = await reserveWal(3 * SEGMENT, TEST_DATABASE_URL)
  t.equal(said.ok, true, said.detail)
  const reported = Number(/^(\d+) recycled WAL segments ahead/.exec(said.detail)?.[1])
  t.ok(reported >= 4, `reports at least the 4 segments 3 segments' worth of WAL needs: ${said.detail}`)
  t.ok((await segmentsAhead(TEST_DATABASE_URL)) >= 4, 'and the server holds them')
  const again = await reserveWal(3 * SEGMENT, TEST_DATABASE_URL)
  t.match(again, { ok: true, detail: /^\d+ recycled WAL segments ahead \(4 needed\)$/ }, 'a second call finds them there and switches nothing')
})

t.test('reserveWal answers why, instead of throwing, when the role may not switch segments', async (t) => {
  if (!(await superuser())) return void t.skip('no Postgres superuser at TEST_DATABASE_URL', () => {})
  const role = `wal_probe_${Math.random().toString(36).slice(2, 8)}`
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL })
  await admin.connect()
  await admin.query(`CREATE ROLE ${role} LOGIN`)
  t.teardown(async () => {
    await admin.query(`DROP ROLE IF EXISTS ${role}`)
    await admin.end()
  })
  const url = new URL(TEST_DATABASE_URL)
  url.username = role
  t.match(await reserveWal(100 * SEGMENT, url.toString()), { ok: false, detail: /^WAL segments not reserved: .*permission denied/ })
})
