import { spawn } from 'node:child_process'
import t from 'tap'
import pg from 'pg'
import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.ts'
import { KeyBox } from '../../src/crypto/key-box.ts'
import { startHub } from '../../src/hub.ts'
import { loadConfig } from '../../src/ops/config.ts'
import { createLogger } from '../../src/ops/logger.ts'
import { rotateKeys, type RotateProgress } from '../../src/ops/rotate-keys.ts'
import { RestClient } from '../../src/client/rest-client.ts'
import { migrate } from '../../src/store/migrate.ts'
import { createPgliteClient } from '../../src/store/pglite.ts'
import { CollectionRegistry } from '../../src/sync/collections.ts'
import { RecordCodec } from '../../src/sync/record-codec.ts'
import { RecordDataStore } from '../../src/store/record-data-store.ts'
import { freshPostgresSchema, postgresAvailable } from '../helpers/services.ts'

const OLD = 'old-secret-0123456789-abcdefghijklmnopq'
const NEW = 'new-secret-0123456789-abcdefghijklmnopq'
const registry = new CollectionRegistry()
const keysRule = registry.get('provider_keys')!

t.test('rotateKeys reseals every value under the current kid in batches, seqs untouched, idempotent', async (t) => {
  const db = await createPgliteClient()
  t.teardown(() => db.close())
  await migrate(db)
  const oldBox = new KeyBox(OLD)
  const insert = (user: string, collection: string, id: string, seq: number, data: Record<string, unknown>) =>
    db.query(
      `INSERT INTO records (user_id, collection, id, seq, data, created_at, updated_at, created_seq) VALUES ($1, $2, $3, $4, $5, 1, 2, $4)`,
      [user, collection, id, seq, encodeMsgpack(data)],
    )
  const plain = new Map<string, string>()
  let seq = 0
  for (const user of ['u1', 'u2']) {
    for (const id of ['a', 'b', 'c']) {
      const key = `sk-${user}-${id}`
      plain.set(`${user}/${id}`, key)
      await insert(user, 'provider_keys', id, ++seq, new RecordCodec(registry, oldBox).seal(keysRule, { provider: 'p', key }))
    }
  }
  await insert('u2', 'provider_keys', 'legacy', ++seq, { provider: 'p', key: 'sk-legacy' }) // stored before encryption
  plain.set('u2/legacy', 'sk-legacy')
  await insert('u1', 'conversations', 'c1', ++seq, { title: 'untouched' })
  const before = await db.query<{ user_id: string; id: string; seq: number; updated_at: number }>('SELECT user_id, id, seq, updated_at FROM records ORDER BY seq')

  const box = new KeyBox(NEW, OLD)
  const progress: RotateProgress[] = []
  const first = await rotateKeys(new RecordDataStore(db), { codec: new RecordCodec(registry, box), batchSize: 2, onProgress: (p) => progress.push(p) })
  t.same(first, { checked: 7, resealed: 7 }, 'every provider key, the legacy one included')
  t.same(progress.map((p) => p.checked), [2, 4, 6, 7], 'one batch at a time')

  const { rows } = await db.query<{ user_id: string; collection: string; id: string; data: Uint8Array }>('SELECT user_id, collection, id, data FROM records')
  const current = new KeyBox(NEW) // the previous secret is no longer needed
  for (const row of rows) {
    const data = decodeMsgpack(row.data) as Record<string, unknown>
    if (row.collection !== 'provider_keys') {
      t.same(data, { title: 'untouched' }, 'other collections are left alone')
      continue
    }
    t.equal(KeyBox.kidOf(data.key), box.kid, `${row.user_id}/${row.id} is under the current kid`)
    t.equal(new RecordCodec(registry, current).open(keysRule, data).key, plain.get(`${row.user_id}/${row.id}`), 'and opens to the same plaintext')
  }
  const after = await db.query('SELECT user_id, id, seq, updated_at FROM records ORDER BY seq')
  t.same(after.rows, before.rows, 'seqs and updated_at unchanged: devices see nothing')

  t.same(await rotateKeys(new RecordDataStore(db), { codec: new RecordCodec(registry, box), batchSize: 2 }), { checked: 7, resealed: 0 }, 'a second run reseals nothing')
  await t.rejects(rotateKeys(new RecordDataStore(db), { codec: new RecordCodec(registry, new KeyBox('third-secret-0123456789-abcdefghijklm')) }), /provider_keys\/a of user u1: sealed under key id/, 'a key it cannot open stops it, naming the record')
})

const BIN = new URL('../../bin/synchub.js', import.meta.url).pathname

function synchub(args: string[], env: Record<string, string>): Promise<{ code: number; output: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH!, LOG_LEVEL: 'warn', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (d) => (output += d))
  child.stderr.on('data', (d) => (output += d))
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code: code ?? 1, output })))
}

/** Starts a hub on the database, runs fn against it, stops it. */
async function withHub<T>(env: Record<string, string>, fn: (url: string) => Promise<T>): Promise<T> {
  const config = loadConfig({ HOST: '127.0.0.1', PORT: '0', SYNCHUB_REGISTRATION: 'open', SYNCHUB_TRANSPORT: 'ws', ...env })
  const hub = await startHub(config, createLogger('silent'))
  try {
    return await fn(hub.url)
  } finally {
    await hub.stop('shutdown')
  }
}

t.test('synchub rotate-keys after a secret rotation, against Postgres', async (t) => {
  if (!(await postgresAvailable())) return void t.skip('Postgres is not running', () => {})
  const schema = await freshPostgresSchema()
  t.teardown(() => schema.drop())
  const login = async (url: string) => {
    const rest = new RestClient(url, undefined, 'laptop')
    await rest.login('dana', 'correct horse battery')
    return rest
  }
  const pushed = await withHub({ DATABASE_URL: schema.url, SYNCHUB_SECRET: OLD }, async (url) => {
    await new RestClient(url).register('dana', 'correct horse battery')
    const rest = await login(url)
    return rest.push([{ op: 'put', mid: 1, collection: 'provider_keys', id: 'k1', data: { provider: 'openai', key: 'sk-dana' } }])
  })
  const stored = async () => {
    const client = new pg.Client({ connectionString: schema.url })
    await client.connect()
    const { rows } = await client.query<{ seq: string; data: Uint8Array }>("SELECT seq, data FROM records WHERE collection = 'provider_keys'")
    await client.end()
    return rows.map((r) => ({ seq: Number(r.seq), kid: KeyBox.kidOf((decodeMsgpack(r.data) as any).key) }))
  }
  t.same(await stored(), [{ seq: pushed.cursor, kid: new KeyBox(OLD).kid }])

  const rotatedEnv = { DATABASE_URL: schema.url, SYNCHUB_SECRET: NEW, SYNCHUB_SECRET_PREVIOUS: OLD }
  const readable = await withHub(rotatedEnv, async (url) => (await (await login(url)).pull()).items[0].data.key)
  t.equal(readable, 'sk-dana', 'with the previous secret configured the hub still opens old values')

  const run = await synchub(['rotate-keys'], rotatedEnv)
  t.equal(run.code, 0, 'exits 0', { output: run.output })
  t.match(run.output, /provider_keys: 1 checked, 1 re-encrypted/, 'progress')
  t.match(run.output, new RegExp(`done: 1 of 1 records re-encrypted under key id ${new KeyBox(NEW).kid}`), 'total')
  t.same(await stored(), [{ seq: pushed.cursor, kid: new KeyBox(NEW).kid }], 'moved to the current kid, same seq')
  const again = await synchub(['rotate-keys'], rotatedEnv)
  t.match(again.output, /done: 0 of 1 records re-encrypted/, 'idempotent')

  const key = await withHub({ DATABASE_URL: schema.url, SYNCHUB_SECRET: NEW }, async (url) => (await (await login(url)).pull()).items[0].data.key)
  t.equal(key, 'sk-dana', 'the previous secret can go')
  const wrong = await synchub(['rotate-keys'], { DATABASE_URL: schema.url, SYNCHUB_SECRET: 'third-secret-0123456789-abcdefghijklm' })
  t.equal(wrong.code, 1)
  t.match(wrong.output, /rotate-keys stopped .*provider_keys\/k1 of user .*neither SYNCHUB_SECRET's nor SYNCHUB_SECRET_PREVIOUS's/, 'a missing secret is named, not a stack trace')
})
