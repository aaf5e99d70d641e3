/**
 * The browser build in real Chromium (Debian's chromium, driven by playwright-core): a page
 * loads dist/browser/synchub-client.js, runs the storage contract suite on IndexedDB, then
 * syncs through the IndexedDB adapter with a hub process: it receives changes pushed from Node,
 * survives the hub restarting, and keeps an op pushed while the hub is unreachable (across a
 * page reload) until the hub acks it. The page is served from the same origin as the hub (a
 * small server in front of it, as a reverse proxy would be), so REST needs no CORS.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createServer, request, type Server } from 'node:http'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { build } from 'esbuild'
import { MemoryStorage, SyncClient } from '../../src/client/node.ts'
import { startProcCluster, waitUntil } from '../helpers/processes.ts'

const ROOT = new URL('../../', import.meta.url).pathname
const CHROMIUM = '/usr/bin/chromium'
const BUNDLE = `${ROOT}dist/browser/synchub-client.js`

const PAGE = `<!doctype html><meta charset="utf-8"><title>synchub browser test</title>
<script type="module">
  import * as sdk from '/synchub-client.js'
  import { STORAGE_CASES } from '/contract.js'
  window.sdk = sdk
  window.STORAGE_CASES = STORAGE_CASES
  window.ready = true
</script>`

/** Serves the page and the bundles, and passes everything else (HTTP and upgrades) to the hub; `blocked` cuts the hub off. */
async function pageServer(hubPort: number, contract: string) {
  const upgraded = new Set<Socket>()
  const state = { blocked: false }
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE)
    if (path === '/synchub-client.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(readFileSync(BUNDLE))
    if (path === '/contract.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(contract)
    if (state.blocked) return res.socket?.destroy()
    const up = request({ host: '127.0.0.1', port: hubPort, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    up.on('error', () => res.socket?.destroy())
    req.pipe(up)
  })
  server.on('upgrade', (req, socket, head) => {
    if (state.blocked) return socket.destroy()
    const up = connect(hubPort, '127.0.0.1', () => {
      up.write(`${req.method} ${req.url} HTTP/1.1\r\n${Object.entries(req.headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`)
      up.write(head)
      socket.pipe(up).pipe(socket)
    })
    upgraded.add(socket as Socket)
    const gone = () => (up.destroy(), socket.destroy(), upgraded.delete(socket as Socket))
    up.on('error', gone).on('close', gone)
    socket.on('error', gone).on('close', gone)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    block(on: boolean) {
      state.blocked = on
      if (on) for (const s of upgraded) s.destroy()
    },
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  }
}

t.test('the SDK in Chromium, on IndexedDB', async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) throw new Error(`CI needs ${CHROMIUM} (.ci/run installs Debian's chromium)`)
    return void t.skip(`${CHROMIUM} is not installed (apt-get install -y chromium)`, () => {})
  }
  t.ok(existsSync(BUNDLE), 'the browser bundle was built (npm run build)')
  t.notMatch(readFileSync(BUNDLE, 'utf8'), /from\s*["']node:|require\(["']node:/, 'it imports nothing from node:')
  const c = await startProcCluster(t, { nodes: 1 })
  if (!c) return
  const hub = c.nodes[0]!
  const contract = (await build({ entryPoints: [`${ROOT}test/client/storage-contract.ts`], bundle: true, format: 'esm', platform: 'browser', write: false })).outputFiles[0]!.text
  const site = await pageServer(hub.port, contract)
  t.teardown(() => site.close())

  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  })
  t.teardown(() => browser.close())
  const page = await (await browser.newContext()).newPage()
  // tsx compiles this file keeping function names (esbuild's __name helper), which the
  // functions handed to page.evaluate then call in the page: give the page that helper.
  await page.addInitScript({ content: 'window.__name = (f) => f' })
  const pageErrors: string[] = []
  page.on('pageerror', (e) => pageErrors.push(e.message))
  const open = async () => {
    await page.goto(site.url)
    await page.waitForFunction(() => (window as any).ready === true)
  }
  await open()

  await t.test('the storage contract suite passes on IndexedDB', async (t) => {
    const results: Array<{ name: string; failures: string[]; asserts: number }> = await page.evaluate(async () => {
      const w = window as any
      const out = []
      for (const [name, run] of Object.entries(w.STORAGE_CASES) as Array<[string, any]>) {
        const failures: string[] = []
        let asserts = 0
        // Deep equality as tap's same(): key order does not count.
        const canon = (v: unknown): string =>
          Array.isArray(v) ? `[${v.map(canon).join(',')}]` : v && typeof v === 'object' ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon((v as any)[k])}`).join(',')}}` : JSON.stringify(v)
        const same = (a: unknown, b: unknown, m: string) => (asserts++, canon(a) === canon(b) || failures.push(`${m}: ${canon(a)} ≠ ${canon(b)}`))
        const ok = (v: unknown, m: string) => (asserts++, v || failures.push(m))
        const factory = {
          async fresh() {
            const db = `contract-${name}-${Math.random()}`
            return { adapter: new w.sdk.IndexedDbStorage(db), reopen: () => new w.sdk.IndexedDbStorage(db) }
          },
        }
        try {
          await run(factory, { same, ok })
        } catch (e) {
          failures.push(`threw: ${(e as Error).message}`)
        }
        out.push({ name, failures, asserts })
      }
      return out
    })
    t.ok(results.length >= 7, `${results.length} cases ran`)
    for (const r of results) t.same(r.failures, [], `${r.name} (${r.asserts} assertions)`)
  })

  const user = await c.newUser()
  const pusher = new SyncClient({ url: hub.url, auth: { username: user.username, password: 'correct horse battery' }, storage: new MemoryStorage(), device: { id: 'node-pusher' }, reconnect: { baseMs: 100, maxMs: 1000 } })
  const nodeSeen: string[] = []
  const nodeReader = new SyncClient({
    url: hub.url,
    auth: { username: user.username, password: 'correct horse battery' },
    reconnect: { baseMs: 100, maxMs: 1000 },
    onChanges: (b) => void nodeSeen.push(...b.changes.map((x) => x.id)),
  })
  t.teardown(async () => {
    await pusher.stop()
    await nodeReader.stop()
  })
  await Promise.all([pusher.start(), nodeReader.start()])
  const push = (id: string) => pusher.push({ op: 'put', collection: 'settings', id, data: { value: id } })

  const startInPage = () =>
    page.evaluate(
      async ({ username, password }) => {
        const w = window as any
        w.seen = []
        w.client = new w.sdk.SyncClient({
          url: location.origin,
          auth: { username, password },
          device: { name: 'chromium', platform: 'web' },
          storage: new w.sdk.IndexedDbStorage('synchub-device'),
          view: true,
          reconnect: { baseMs: 100, maxMs: 1000 },
          probe: { baseMs: 200, maxMs: 1000 },
          pollWaitSec: 3,
          onChanges: (b: any) => {
            if (b.kind === 'changes') for (const c of b.changes) w.seen.push(c.seq)
          },
        })
        await w.client.start()
      },
      { username: user.username, password: 'correct horse battery' },
    )
  const pageState = () => page.evaluate(() => ({ seen: (window as any).seen as number[], status: (window as any).client.status as string, outbox: (window as any).client.outbox as number, cursor: (window as any).client.cursor as number }))
  const until = async (pred: (s: Awaited<ReturnType<typeof pageState>>) => boolean, ms = 15_000) => {
    const deadline = Date.now() + ms
    for (;;) {
      const s = await pageState()
      if (pred(s)) return s
      if (Date.now() > deadline) throw new Error(`page state not reached: ${JSON.stringify(s).slice(0, 300)}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  await t.test('receives changes pushed from Node', async (t) => {
    await startInPage()
    await until((s) => s.status === 'live')
    for (let i = 1; i <= 10; i++) await push(`n${i}`)
    const s = await until((s) => s.seen.length === 10)
    t.same(s.seen, Array.from({ length: 10 }, (_, i) => i + 1), 'seq 1..10, once, in order')
    t.equal(await page.evaluate(() => (window as any).client.collection('settings').get('n3')?.data.value), 'n3', 'in the local view')
  })

  await t.test('survives the hub restarting', async (t) => {
    await hub.restart()
    for (let i = 11; i <= 15; i++) await push(`n${i}`)
    const s = await until((s) => s.seen.length === 15 && s.status === 'live', 30_000)
    t.same(s.seen, Array.from({ length: 15 }, (_, i) => i + 1), 'every change once, in order, across the restart')
  })

  await t.test('an op pushed while the hub is unreachable waits in IndexedDB, across a reload, until it is acked', async (t) => {
    site.block(true)
    await until((s) => s.status === 'offline' || s.status === 'polling')
    const pending = await page.evaluate(() => {
      const w = window as any
      w.offlineResult = undefined
      w.client.push({ op: 'put', collection: 'settings', id: 'from-the-browser', data: { value: 'offline' } }).then((r: unknown) => (w.offlineResult = r))
      return new Promise((r) => setTimeout(() => r({ outbox: w.client.outbox, result: w.offlineResult }), 500))
    })
    t.same(pending, { outbox: 1, result: undefined }, 'waiting in the outbox, not settled')
    await open() // the page reloads: the op is only in IndexedDB now
    await startInPage()
    t.equal((await pageState()).outbox, 1, 'the reloaded page found it in IndexedDB')
    t.notOk(nodeSeen.includes('from-the-browser'), 'the hub has not seen it')
    site.block(false)
    await until((s) => s.outbox === 0 && s.status === 'live', 30_000)
    await waitUntil(() => nodeSeen.includes('from-the-browser'), 15_000)
    t.pass('acked, and delivered to the Node device')
    t.equal(nodeSeen.filter((id) => id === 'from-the-browser').length, 1, 'once')
  })
  t.same(pageErrors, [], 'no uncaught errors in the page')
})
