import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import pg from 'pg'
import { freshPostgresSchema, postgresAvailable } from '../helpers/services.ts'

const BIN = new URL('../../bin/synchub.js', import.meta.url).pathname
const SECRET = 'cli-test-secret-0123456789-abcdefghij'

/** Runs the real `synchub` command in a child process. */
function synchub(args: string[], env: Record<string, string>, input?: string) {
  const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH!, LOG_LEVEL: 'warn', ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  if (input !== undefined) child.stdin.end(input)
  const exited = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1))))
  return { child, exited, output: () => out }
}

t.test('an unknown command or a bad environment exits 2 and says why', async (t) => {
  const unknown = synchub(['frobnicate'], { SYNCHUB_DATA_DIR: 'memory://' })
  t.equal(await unknown.exited, 2)
  t.match(unknown.output(), /unknown command frobnicate/)
  const bad = synchub(['serve'], { PORT: 'x', SYNCHUB_TRANSPORT: 'nope' })
  t.equal(await bad.exited, 2)
  t.match(bad.output(), /PORT/)
  t.match(bad.output(), /SYNCHUB_TRANSPORT/, 'every problem, not just the first')
})

t.test('serve on the embedded default, then drain on SIGTERM', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'synchub-cli-'))
  const port = 20000 + Math.floor(Math.random() * 20000)
  const hub = synchub(['serve'], { SYNCHUB_DATA_DIR: dir, PORT: String(port), HOST: '127.0.0.1', SYNCHUB_REGISTRATION: 'open' })
  t.teardown(() => void hub.child.kill('SIGKILL'))
  const base = `http://127.0.0.1:${port}`
  // One probe at a time; a hub that exits or never gets ready fails with what it printed.
  let exitCode: number | undefined
  void hub.exited.then((code) => (exitCode = code))
  const deadline = Date.now() + 120_000
  let ready = false
  while (!ready && exitCode === undefined && Date.now() < deadline) {
    ready = await fetch(`${base}/readyz`).then((r) => r.ok, () => false)
    if (!ready) await new Promise((r) => setTimeout(r, 100))
  }
  if (!ready) return void t.fail(`the hub did not get ready (exit ${exitCode ?? 'none'}): ${hub.output()}`)
  const reg = await fetch(`${base}/v1/auth/register`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'ada', password: 'correct horse' }) })
  t.equal(reg.status, 201, 'registration works out of the box with open registration')
  hub.child.kill('SIGTERM')
  t.equal(await hub.exited, 0, 'exits cleanly after draining')
  t.match(hub.output(), /generated one in/, 'warned that it generated a secret')
})

t.test('migrate and create-admin against Postgres', async (t) => {
  if (!(await postgresAvailable())) return void t.skip('Postgres is not running', () => {})
  const schema = await freshPostgresSchema()
  t.teardown(() => schema.drop())
  const env = { DATABASE_URL: schema.url, SYNCHUB_SECRET: SECRET }
  const first = synchub(['migrate'], env)
  t.equal(await first.exited, 0)
  t.match(first.output(), /applied: 0001_init\.sql/)
  const again = synchub(['migrate'], env)
  t.equal(await again.exited, 0)
  t.match(again.output(), /schema is up to date/, 'a second run applies nothing')

  const admin = synchub(['create-admin', 'root'], env, 'tidal-orbit-marmalade\n')
  t.equal(await admin.exited, 0, admin.output())
  const client = new pg.Client({ connectionString: schema.url })
  await client.connect()
  const { rows } = await client.query("SELECT username, role, password_hash FROM users WHERE username = 'root'")
  await client.end()
  t.equal(rows.length, 1)
  t.equal(rows[0].role, 'admin')
  t.notMatch(rows[0].password_hash, /tidal-orbit-marmalade/, 'the password is stored hashed')
  const short = synchub(['create-admin', 'root'], env, 'short\n')
  t.equal(await short.exited, 2, 'a short password is refused')
})
