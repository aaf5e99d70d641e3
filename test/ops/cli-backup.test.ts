import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { startTestHub, TEST_SECRET, waitUntil } from '../helpers/hub.ts'
import { freshPostgresSchema, postgresAvailable, redisAvailable, TEST_REDIS_URL } from '../helpers/services.ts'

const BIN = new URL('../../bin/synchub.js', import.meta.url).pathname

/** Runs the real `synchub` command in a child process; stdout and stderr apart (stdout may be the backup). */
function synchub(args: string[], env: Record<string, string>, input?: string) {
  const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH!, LOG_LEVEL: 'warn', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  if (input !== undefined) child.stdin.end(input)
  else child.stdin.end()
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))))
  return { exited, stdout: () => out, stderr: () => err }
}

const records = (text: string) =>
  text
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l))
    .slice(1, -1)
    .map(({ rev: _rev, order: _order, ...r }) => r)
    .sort((a, b) => `${a.collection}/${a.id}`.localeCompare(`${b.collection}/${b.id}`))

t.test('synchub export and import against the database, with progress, told to running hubs through Redis', async (t) => {
  if (!(await postgresAvailable())) return void t.skip('Postgres is not running', () => {})
  const redis = await redisAvailable()
  const schema = await freshPostgresSchema()
  const prefix = `cli-backup-${Date.now().toString(36)}`
  const env: Record<string, string> = {
    DATABASE_URL: schema.url,
    SYNCHUB_SECRET: TEST_SECRET,
    SYNCHUB_REDIS_PREFIX: prefix,
    ...(redis ? { REDIS_URL: TEST_REDIS_URL } : {}),
  }
  const h = await startTestHub({ name: 'postgres+ws', store: 'postgres', transport: 'ws' }, env)
  t.teardown(async () => {
    await h.stop()
    await schema.drop()
  })
  const alice = await h.newUser()
  const bob = await h.newUser()
  const key = 'sk-cli-canary-0123456789'
  await alice.rest.push([
    { op: 'put', mid: 1, collection: 'conversations', id: 'c1', data: { title: 'hello' } },
    { op: 'put', mid: 2, collection: 'messages', id: 'm1', data: { conversation_id: 'c1', role: 'user', content: 'hi' } },
    { op: 'put', mid: 3, collection: 'provider_keys', id: 'k1', data: { provider: 'openai', key } },
    { op: 'put', mid: 4, collection: 'settings', id: 'theme', data: { value: 'dark' } },
    { op: 'del', mid: 5, collection: 'settings', id: 'theme' },
  ])

  const dir = mkdtempSync(join(tmpdir(), 'synchub-backup-'))
  const file = join(dir, 'alice.ndjson')
  const exported = synchub(['export', '--user', alice.username, '--out', file], env)
  t.equal(await exported.exited, 0, 'exits 0', { stderr: exported.stderr() })
  t.match(exported.stderr(), /exported \[#+\] 4\/4 records/, 'progress on stderr, with a bar')
  t.equal(statSync(file).mode & 0o777, 0o600, 'the file (it holds keys in plaintext) is private')
  const text = readFileSync(file, 'utf8')
  const rest = await fetch(`${h.url}/v1/export`, { headers: { authorization: `Bearer ${alice.token}` } })
  t.same(records(text), records(await rest.text()), 'the same records as GET /v1/export')
  t.match(records(text).find((r) => r.id === 'k1'), { data: { key } })

  const toStdout = synchub(['export', '--user', alice.username, '--scopes', 'chat.history'], env)
  t.equal(await toStdout.exited, 0)
  t.same(records(toStdout.stdout()).map((r) => r.id), ['c1', 'm1'], 'standard output by default, --scopes narrows')

  const pc = await bob.connect('pc')
  const resets: any[] = []
  pc.on('reset', (f) => resets.push(f))
  await pc.subscribe(0)
  const merged = synchub(['import', '--user', bob.username, file], env)
  t.equal(await merged.exited, 0, 'exits 0', { stderr: merged.stderr() })
  t.same(JSON.parse(merged.stdout()), { imported: 4, copies: 0, skipped: 0, trashed: 0, cursor: 4, epoch: pc.auth.epoch }, 'the result on stdout')
  t.match(merged.stderr(), /checked \[#+\] 4\/4 records/)
  t.match(merged.stderr(), /written \[#+\] 4\/4 records/)
  const bobs = await fetch(`${h.url}/v1/export`, { headers: { authorization: `Bearer ${bob.token}` } })
  t.same(records(await bobs.text()), records(text), 'bob now holds alice’s records')
  if (redis) {
    await waitUntil(() => pc.cursor === 4)
    t.pass('a running hub delivered the import live (told through Redis)')
  }

  const overwrite = synchub(['import', '--user', bob.username, '--mode', 'overwrite', '--scopes', 'chat.history', '-'], env, text)
  t.equal(await overwrite.exited, 0, 'exits 0', { stderr: overwrite.stderr() })
  const result = JSON.parse(overwrite.stdout())
  t.match(result, { imported: 2, skipped: 2, trashed: 0 }, 'standard input, narrowed to chat.history')
  t.not(result.epoch, pc.auth.epoch)
  if (redis) {
    await waitUntil(() => resets.length === 1)
    t.same(resets[0], { t: 'reset', reason: 'epoch_changed', epoch: result.epoch }, 'devices on running hubs are reset')
  }

  const truncated = join(dir, 'truncated.ndjson')
  writeFileSync(truncated, text.split('\n').slice(0, 3).join('\n') + '\n')
  const refused = synchub(['import', '--user', bob.username, truncated], env)
  t.equal(await refused.exited, 1)
  t.match(refused.stderr(), /refused \(backup_truncated\).*nothing was changed/)
  t.notMatch(refused.stderr() + refused.stdout(), key, 'no key in the output')
  t.match(await bob.rest.status(), { cursor: result.cursor }, 'nothing changed')

  const noUser = synchub(['export'], env)
  t.equal(await noUser.exited, 2)
  t.match(noUser.stderr(), /--user <name> is required/)
  const unknown = synchub(['import', '--user', 'nobody-here', file], env)
  t.equal(await unknown.exited, 2)
  t.match(unknown.stderr(), /no user named nobody-here/)
  const badMode = synchub(['import', '--user', bob.username, '--mode', 'replace', file], env)
  t.equal(await badMode.exited, 2)
  t.match(badMode.stderr(), /--mode must be merge or overwrite/)
})
