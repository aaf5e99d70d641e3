/**
 * The package as a user installs it: `synchub/client` and `synchub/protocol` from plain Node ESM
 * (no tsx, no loader), and their type declarations from a TypeScript project of the user's.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'

const ROOT = new URL('../../', import.meta.url).pathname
// A clean environment: no loader of the test runner's may help.
const env = { PATH: process.env.PATH, HOME: process.env.HOME }

t.test('a plain Node ESM program imports the client and the protocol from the build', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'synchub-consumer-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'node_modules'))
  symlinkSync(ROOT, join(dir, 'node_modules', 'synchub'))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }))
  writeFileSync(
    join(dir, 'main.js'),
    `import { SyncClient, FileStorage, MemoryStorage, IndexedDbStorage, HubError } from 'synchub/client'
import { PROTOCOL_VERSION, Op } from 'synchub/protocol'
const client = new SyncClient({ url: 'http://127.0.0.1:9', auth: { getToken: async () => 't' }, storage: new MemoryStorage() })
let refused
try { await client.push({ op: 'put', collection: 'Bad Name', id: 'x', data: {} }) } catch (e) { refused = e instanceof HubError && e.code }
await client.stop()
console.log(JSON.stringify({ file: typeof FileStorage, idb: typeof IndexedDbStorage, version: PROTOCOL_VERSION, op: Op.safeParse({ op: 'del', mid: 1, collection: 'settings', id: 'a' }).success, refused, status: client.status }))
`,
  )
  const run = spawnSync(process.execPath, ['main.js'], { cwd: dir, env, encoding: 'utf8', timeout: 20_000 })
  t.equal(run.status, 0, run.stderr)
  t.same(JSON.parse(run.stdout), { file: 'function', idb: 'function', version: 1, op: true, refused: 'invalid', status: 'stopped' })
  const browser = spawnSync(process.execPath, ['--conditions=browser', '-e', "import('synchub/client').then((m) => console.log('FileStorage' in m, typeof m.SyncClient))"], { cwd: dir, env, encoding: 'utf8' })
  t.equal(browser.stdout.trim(), 'false function', 'the browser condition gets the browser entry (no file storage)')

  // The declarations: a user's strict NodeNext project type-checks against them.
  writeFileSync(
    join(dir, 'app.ts'),
    `import { SyncClient, FileStorage, type ChangeBatch } from 'synchub/client'
const client = new SyncClient({ url: 'http://hub', auth: { username: 'ada', password: 'pw' }, storage: new FileStorage('state'), view: true, onChanges: (b: ChangeBatch) => void b.changes.length })
const title: string = client.collection('conversations').get('c1')?.data.title ?? ''
const role: 'user' | 'assistant' | 'system' | 'tool' | undefined = client.collection('messages').get('m1')?.data.role
export const done: Promise<unknown> = client.push({ op: 'put', collection: 'messages', id: 'm', data: { conversation_id: 'c', role: 'user', content: title + role } })
`,
  )
  writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false, types: [] }, files: ['app.ts'] }))
  const { default: compiler } = await import(new URL('../../node_modules/typescript/lib/getExePath.js', import.meta.url).href)
  const tsc = spawnSync(compiler(), ['-p', dir], { cwd: dir, env, encoding: 'utf8' })
  t.equal(tsc.status, 0, `the user's project type-checks: ${tsc.stdout}${tsc.stderr}`)
})
