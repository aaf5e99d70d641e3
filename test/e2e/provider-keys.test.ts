import { randomBytes, randomUUID } from 'node:crypto'
import t from 'tap'
import pg from 'pg'
import { Redis } from 'ioredis'
import { decodeMsgpack } from '../../protocol/codec.ts'
import { startHub } from '../../src/hub.ts'
import { loadConfig } from '../../src/ops/config.ts'
import { createLogger } from '../../src/ops/logger.ts'
import { RestClient } from '../../src/client/rest-client.ts'
import { SyncClient } from '../../src/client/socket-client.ts'
import { collect, eachHub, TEST_SECRET, waitUntil } from '../helpers/hub.ts'
import { startCluster } from '../helpers/cluster.ts'
import { freshPostgresSchema, postgresAvailable, redisAvailable, TEST_REDIS_URL } from '../helpers/services.ts'

const canary = () => `sk-canary-${randomBytes(16).toString('hex')}`
const keyPut = (mid: number, id: string, key: string, provider = 'openai', base?: number) => ({
  op: 'put' as const,
  mid,
  collection: 'provider_keys',
  id,
  data: { provider, key },
  ...(base !== undefined ? { base } : {}),
})

t.test('the owner’s devices get the plaintext key; the store holds only sealed bytes', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const secret = canary()
    const [phone, pc] = await Promise.all([alice.connect('phone'), alice.connect('pc')])
    const seen = collect(pc)
    await pc.subscribe(0)

    const created = await phone.push([keyPut(1, 'k1', secret)])
    const rev = (created.results[0] as any).seq as number
    await seen.waitFor(() => seen.seqs().includes(rev))
    t.match(seen.frames[0].items[0], { collection: 'provider_keys', id: 'k1', data: { provider: 'openai', key: secret } }, 'live: plaintext to the other device')

    const stored = await h.hub.store.db.query<{ data: Uint8Array }>("SELECT data FROM records WHERE collection = 'provider_keys'")
    t.equal(stored.rows.length, 1)
    t.notOk(Buffer.from(stored.rows[0]!.data).includes(secret), 'the stored bytes do not hold the key')
    t.match(decodeMsgpack(stored.rows[0]!.data), { provider: 'openai', key: /^enc:v1:/ }, 'the key is stored sealed; other fields as sent')

    const pulled = await alice.rest.pull()
    t.match(pulled.items, [{ id: 'k1', data: { key: secret } }], 'pull opens it')
    const late = await alice.connect('tablet')
    const lateSeen = collect(late)
    await late.subscribe(0)
    await lateSeen.waitFor(() => lateSeen.seqs().includes(rev))
    t.equal(lateSeen.frames[0].items[0].data.key, secret, 'backlog opens it')

    // Trash and restore rebuild the change from the stored row: still plaintext.
    const del = await phone.push([{ op: 'del', mid: 2, collection: 'provider_keys', id: 'k1' }])
    const restore = await phone.push([{ op: 'restore', mid: 3, collection: 'provider_keys', id: 'k1' }])
    const restoredSeq = (restore.results[0] as any).seq as number
    await seen.waitFor(() => seen.seqs().includes(restoredSeq))
    const items = seen.frames.flatMap((f) => f.items)
    t.match(items.find((i: any) => i.seq === (del.results[0] as any).seq), { deleted_at: Number, data: { key: secret } }, 'deleted: plaintext')
    t.match(items.find((i: any) => i.seq === restoredSeq), { data: { key: secret } }, 'restored: plaintext')

    // An update and a conflict copy are sealed the same way.
    const rotated = canary()
    const updated = await phone.push([keyPut(4, 'k1', rotated, 'openai', restoredSeq), keyPut(5, 'k1', 'stale copy', 'openai', rev)])
    t.match(updated.results, [{ ok: true }, { ok: true, copy: String }])
    const after = await alice.rest.pull()
    t.same(after.items.map((i: any) => i.data.key).sort(), [rotated, 'stale copy'].sort())
    const rows = await h.hub.store.db.query<{ data: Uint8Array }>("SELECT data FROM records WHERE collection = 'provider_keys'")
    for (const row of rows.rows) {
      t.match(decodeMsgpack(row.data), { key: /^enc:v1:/ })
      for (const plain of [secret, rotated, 'stale copy']) t.notOk(Buffer.from(row.data).includes(plain), 'no plaintext at rest')
    }

    const bob = await h.newUser()
    t.same((await bob.rest.pull()).items, [], 'another user sees nothing')
    t.equal(
      (await phone.push([{ op: 'put', mid: 6, collection: 'provider_keys', id: 'k2', data: { provider: 'openai', key: 42 } }])).results[0]!.ok,
      false,
      'the plaintext is still checked against the schema',
    )
  })
})

t.test('another node gets the key as a poke and reads it, opened, from the store', async (t) => {
  const cluster = await startCluster(t, 2)
  if (!cluster) return
  const alice = await cluster.nodes[0]!.newUser()
  const phone = await cluster.connect(0, alice.token, 'phone')
  const pc = await cluster.connect(1, alice.token, 'pc')
  const seen = collect(pc)
  await pc.subscribe(0)
  const secret = canary()
  const ack = await phone.push([keyPut(1, 'k1', secret)])
  await seen.waitFor(() => pc.cursor === ack.cursor)
  t.match(seen.frames.flatMap((f) => f.items), [{ id: 'k1', data: { key: secret } }], 'plaintext on the other node')
  t.same(seen.gaps, [])
})

/** Every text-like and bytea value in every table of a Postgres schema. */
async function dumpSchema(url: string): Promise<{ tables: string[]; values: Array<{ where: string; value: Buffer | string }> }> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    const schema = (await client.query<{ s: string }>('SELECT current_schema() AS s')).rows[0]!.s
    const { rows: columns } = await client.query<{ table_name: string; column_name: string; data_type: string }>(
      `SELECT c.table_name, c.column_name, c.data_type FROM information_schema.columns c
         JOIN information_schema.tables tb ON tb.table_schema = c.table_schema AND tb.table_name = c.table_name
        WHERE c.table_schema = $1 AND tb.table_type = 'BASE TABLE'
          AND c.data_type IN ('text', 'bytea', 'character varying', 'character', 'ARRAY', 'json', 'jsonb')`,
      [schema],
    )
    const values: Array<{ where: string; value: Buffer | string }> = []
    for (const c of columns) {
      const expr = c.data_type === 'bytea' ? `"${c.column_name}"` : `"${c.column_name}"::text`
      const { rows } = await client.query(`SELECT ${expr} AS v FROM "${schema}"."${c.table_name}" WHERE "${c.column_name}" IS NOT NULL`)
      for (const r of rows) values.push({ where: `${c.table_name}.${c.column_name}`, value: r.v })
    }
    return { tables: [...new Set(columns.map((c) => c.table_name))], values }
  } finally {
    await client.end()
  }
}

t.test('canary: a provider key never reaches Postgres, Redis, the logs or the admin view', async (t) => {
  if (!(await postgresAvailable())) return void t.skip('Postgres is not running', () => {})
  if (!(await redisAvailable())) return void t.skip('Redis is not running', () => {})
  const secret = canary()
  const marker = `visible-${randomUUID()}` // a non-secret value: proves each search sees what is stored and sent
  const prefix = `canary-${randomUUID().slice(0, 8)}`

  // Every command any client sends Redis from now on, hub included.
  const monitored: string[] = []
  const redis = new Redis(TEST_REDIS_URL)
  const monitor = await redis.monitor()
  monitor.on('monitor', (_time: string, args: string[]) => monitored.push(args.join(' ')))
  t.teardown(() => {
    monitor.disconnect()
    redis.disconnect()
  })

  const logLines: string[] = []
  const schema = await freshPostgresSchema()
  t.teardown(() => schema.drop())
  const admin = { username: 'root', password: 'root-password-123' }
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    DATABASE_URL: schema.url,
    REDIS_URL: TEST_REDIS_URL,
    SYNCHUB_REDIS_PREFIX: prefix,
    SYNCHUB_SECRET: TEST_SECRET,
    SYNCHUB_REGISTRATION: 'open',
    SYNCHUB_TRANSPORT: 'ws',
    SYNCHUB_ADMIN_USERNAME: admin.username,
    SYNCHUB_ADMIN_PASSWORD: admin.password,
    LOG_LEVEL: 'trace',
  })
  const hub = await startHub(config, createLogger(config.logLevel, { write: (line: string) => void logLines.push(line) }))
  let stopped = false
  t.teardown(() => (stopped ? undefined : hub.stop('shutdown')))
  const wsUrl = hub.url.replace(/^http/, 'ws') + '/v1/ws'

  const rest = new RestClient(hub.url, undefined, 'rest-device')
  const { user } = await rest.register('carol', 'correct horse battery')
  const tokens = await rest.login('carol', 'correct horse battery')
  const [phone, pc] = await Promise.all(['phone', 'pc'].map((id) => SyncClient.connect(wsUrl, { token: tokens.access_token, device: { id } })))
  t.teardown(() => [phone, pc].forEach((c) => c!.kill()))
  const seen = collect(pc!)
  await pc!.subscribe(0)

  const ack = await phone!.push([
    { op: 'put', mid: 1, collection: 'provider_keys', id: 'k1', data: { provider: marker, key: secret } },
    { op: 'del', mid: 2, collection: 'provider_keys', id: 'k1' },
    { op: 'restore', mid: 3, collection: 'provider_keys', id: 'k1' },
  ])
  const conv = await phone!.push([{ op: 'put', mid: 4, collection: 'conversations', id: 'c1', data: { title: marker } }])
  await seen.waitFor(() => pc!.cursor === conv.cursor)
  const received = seen.frames.flatMap((f) => f.items)
  t.match(received[0], { collection: 'provider_keys', data: { provider: marker, key: secret } }, 'the other device received the plaintext key')
  t.equal(received.filter((i: any) => i.data.key === secret).length, 3, 'put, del and restore all carried it')
  t.match((await rest.pull()).items, [{ data: { key: secret } }, { data: { title: marker } }], 'so does a REST pull')

  const adminRest = new RestClient(hub.url)
  await adminRest.login(admin.username, admin.password)
  const users = JSON.stringify(await adminRest.call('GET', '/v1/admin/users'))
  t.match(users, 'carol', 'the admin view lists the user')
  t.notOk(users.includes(secret), 'admin view: no key')
  t.notOk(users.includes('enc:v1:'), 'admin view: no sealed key either')

  // Give Redis a moment to report the last commands, then stop everything that could still write.
  await waitUntil(() => monitored.some((m) => m.includes(marker) && /^publish/i.test(m)), 5000)
  await hub.stop('shutdown')
  stopped = true

  const channel = `${prefix}:u:${user.id}`
  const publishes = monitored.filter((m) => /^publish /i.test(m) && m.includes(channel))
  t.equal(publishes.length, 2, 'both commits were published to Redis')
  t.notOk(publishes[0]!.includes(marker), 'the provider-key commit went out as a poke: not even its non-secret fields')
  t.ok(publishes[1]!.includes(marker), 'the conversation commit carried its changes (MONITOR sees payloads)')
  t.notOk(monitored.some((m) => m.includes(secret)), `Redis: the canary is in none of ${monitored.length} commands`)

  const dump = await dumpSchema(schema.url)
  t.ok(dump.tables.includes('records') && dump.tables.includes('op_results'), `dumped ${dump.tables.length} tables`)
  t.ok(dump.values.some((v) => Buffer.from(v.value).includes(marker)), 'Postgres: the dump sees record data')
  const hits = dump.values.filter((v) => Buffer.from(v.value).includes(secret)).map((v) => v.where)
  t.same(hits, [], `Postgres: the canary is in none of ${dump.values.length} values`)

  t.ok(logLines.some((l) => l.includes('synchub listening')), `logs: ${logLines.length} lines captured`)
  t.notOk(logLines.some((l) => l.includes(secret)), 'logs: the canary is in none of them')
  t.equal(ack.results.every((r) => r.ok), true)
})
