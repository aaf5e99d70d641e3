/**
 * `synchub tail`, `synchub push` and `synchub help` end to end: the compiled command
 * (bin/synchub.js) as a user runs it, against a hub on each transport. A `push` SIGKILLed in the
 * middle and rerun with the same arguments and --state enqueues only what it had not, and the
 * hub applies every message once; a `tail` stopped with a signal and rerun goes on after the
 * last line it printed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { eachHub, waitUntil, type TestHub, type TestUser } from '../helpers/hub.ts'

const BIN = new URL('../../bin/synchub.js', import.meta.url).pathname

interface Proc {
  child: ChildProcess
  lines: string[]
  stderr: string[]
  exit: Promise<number | null>
}

function run(args: string[], user?: TestUser): Proc {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME }
  if (user) Object.assign(env, { SYNCHUB_USERNAME: user.username, SYNCHUB_PASSWORD: user.password })
  const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  const p: Proc = { child, lines: [], stderr: [], exit: new Promise((r) => child.once('exit', (code) => r(code))) }
  let rest = ''
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (rest + d).split('\n')
    rest = parts.pop()!
    p.lines.push(...parts)
  })
  child.stderr!.setEncoding('utf8').on('data', (d: string) => p.stderr.push(...d.split('\n').filter(Boolean)))
  return p
}

async function headOf(h: TestHub, u: TestUser): Promise<number> {
  return (await (await fetch(`${h.url}/v1/sync/status`, { headers: { authorization: `Bearer ${u.token}` } })).json()).cursor
}

t.test('synchub help lists every command', async (t) => {
  const help = spawnSync(process.execPath, [BIN, 'help'], { encoding: 'utf8' })
  t.equal(help.status, 0)
  for (const c of ['serve', 'migrate', 'create-admin', 'rotate-keys', 'purge', 'export', 'import', 'tail', 'push', 'help']) t.match(help.stdout, new RegExp(`^\\s+${c}\\b`, 'm'), c)
})

t.test('client commands refuse what they cannot use: credentials only from the environment', async (t) => {
  const noCreds = spawnSync(process.execPath, [BIN, 'tail', '--url', 'http://127.0.0.1:9', '--device', 'd', '--state', '/tmp/x'], { encoding: 'utf8', env: { PATH: process.env.PATH } })
  t.equal(noCreds.status, 2)
  t.match(noCreds.stderr, /SYNCHUB_USERNAME and SYNCHUB_PASSWORD/)
  const flag = spawnSync(process.execPath, [BIN, 'push', '--url', 'http://h', '--device', 'd', '--state', '/tmp/x', '--password', 'p'], { encoding: 'utf8' })
  t.equal(flag.status, 2, 'no --password flag')
  const url = spawnSync(process.execPath, [BIN, 'tail', '--url', 'localhost:8080', '--device', 'd', '--state', '/tmp/x'], { encoding: 'utf8', env: { PATH: process.env.PATH, SYNCHUB_USERNAME: 'u', SYNCHUB_PASSWORD: 'p' } })
  t.equal(url.status, 2)
  t.match(url.stderr, /base URL/)
})

eachHub(
  t,
  async (t, h) => {
    const u = await h.newUser()
    const dir = mkdtempSync(join(tmpdir(), 'synchub-cli-'))
    const procs: Proc[] = []
    t.teardown(() => {
      for (const p of procs) p.child.kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    })
    const start = (args: string[]) => {
      const p = run(args, u)
      procs.push(p)
      return p
    }
    const tailArgs = ['tail', '--url', h.url, '--device', 'laptop', '--state', join(dir, 'tail')]
    const pushArgs = (count: number, extra: string[] = []) => ['push', '--url', h.url, '--device', 'phone', '--state', join(dir, 'push'), '--conversation', 'c1', '--count', String(count), ...extra]

    await t.test('tail prints each change of a push run once, in order; stopped and rerun, it goes on after its last line', async (t) => {
      const tail = start(tailArgs)
      await waitUntil(() => tail.stderr.some((l) => /: live$/.test(l)), 15_000)
      const push = start(pushArgs(30, ['--rate', '300']))
      t.equal(await push.exit, 0, 'push exits 0 once every message is acked')
      await waitUntil(() => tail.lines.length === 31, 15_000)
      const changes = tail.lines.map((l) => JSON.parse(l))
      t.same(changes.map((c) => c.seq), Array.from({ length: 31 }, (_, i) => i + 1), 'seq 1..31, once each, in order')
      t.match(changes[0], { collection: 'conversations', id: 'c1', data: { title: 'c1' } }, 'the conversation it created first')
      t.match(changes[1], { collection: 'messages', id: 'phone-1', data: { conversation_id: 'c1', role: 'user' }, device_id: 'phone', rev: 2 }, 'then P-1 …, each a whole Change')
      tail.child.kill('SIGTERM')
      t.equal(await tail.exit, 0, 'SIGTERM: tail saves its cursor and exits 0')

      const more = start(pushArgs(35))
      t.equal(await more.exit, 0)
      t.ok(more.stderr.some((l) => /phone-31 … phone-35 \(30 were enqueued by an earlier run\)/.test(l)), 'the rerun enqueues only phone-31 … phone-35')
      const again = start(tailArgs)
      await waitUntil(() => again.lines.length === 5, 15_000)
      t.same(again.lines.map((l) => JSON.parse(l).seq), [32, 33, 34, 35, 36], 'the restarted tail prints what came after its last line')
      again.child.kill('SIGINT')
      t.equal(await again.exit, 0, 'SIGINT: exit 0')
    })

    await t.test('a push SIGKILLed at any moment and rerun enqueues only the rest; the hub applies each message once', async (t) => {
      const state = join(dir, 'killed')
      const args = ['push', '--url', h.url, '--device', 'bot', '--state', state, '--conversation', 'c2', '--count', '150', '--rate', '150', '--prefix', 'k']
      const before = await headOf(h, u)
      for (const killAt of [25, 70]) {
        const p = start(args)
        // SIGKILL once about `killAt` messages are in: wherever the run is then (enqueuing,
        // waiting for acks, writing its state).
        for (let i = 0; i < 300 && (await headOf(h, u)) - before < killAt; i++) await new Promise((r) => setTimeout(r, 20))
        p.child.kill('SIGKILL')
        await p.exit
      }
      const last = start(args)
      t.equal(await last.exit, 0, 'the third run finishes and exits 0')
      t.ok(last.stderr.some((l) => /were enqueued by an earlier run/.test(l)), 'it knew what the killed runs had enqueued')
      const pulled = await (await fetch(`${h.url}/v1/sync/pull?since=${before}&limit=10000`, { headers: { authorization: `Bearer ${u.token}` } })).json()
      const ids = pulled.items.filter((c: { collection: string }) => c.collection === 'messages').map((c: { id: string }) => c.id)
      t.equal(ids.length, 150, 'one change per message')
      t.same(new Set(ids), new Set(Array.from({ length: 150 }, (_, i) => `k-${i + 1}`)), 'k-1 … k-150, each once')
      const devices = await (await fetch(`${h.url}/v1/devices`, { headers: { authorization: `Bearer ${u.token}` } })).json()
      t.equal(devices.items.find((d: { id: string }) => d.id === 'bot')?.last_mid, 151, 'the device used 151 mids: the conversation and 150 messages, none enqueued twice')
    })
  },
  { variants: [{ name: 'pglite+uws', store: 'pglite', transport: 'uws' }, { name: 'pglite+ws', store: 'pglite', transport: 'ws' }] },
)
