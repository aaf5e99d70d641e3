/**
 * The SDK under faults, over real sockets to real hub processes (uWebSockets.js on node 1, ws on
 * node 2, Postgres and Redis), with a TCP proxy in front of each node: connections cut in the
 * middle of a frame, WebSocket upgrades refused while plain HTTP passes (the REST fallback and
 * the way back), the path down entirely, a hub SIGKILLed and restarted, a node drained with
 * SIGTERM, and tokens that expire while a device sleeps. In each: every pushed op is applied
 * exactly once (the user's head counts one change per op: a second application of these puts
 * would add a conflict copy), and the other device's handler sees every change once, in order.
 */
import t, { type Test } from 'tap'
import type { Change } from '../../protocol/records.ts'
import { MemoryStorage, SyncClient, type Clock, type Status, type SyncClientOptions } from '../../src/client/node.ts'
import { startProcCluster, waitUntil, type ProcCluster, type ProcUser } from '../helpers/processes.ts'
import { startTcpProxy, type TcpProxy } from '../../scripts/tcp-proxy.ts'

const PASSWORD = 'correct horse battery'

interface Dev {
  name: string
  client: SyncClient
  seqs: number[]
  ids: Map<number, string>
  statuses: Status[]
  closes: number[]
  sentVia: Set<string>
  problems: string[]
}

function device(t: Test, user: ProcUser, name: string, url: string | string[], extra: Partial<SyncClientOptions> = {}): Dev {
  const d: Dev = { name, client: undefined as never, seqs: [], ids: new Map(), statuses: [], closes: [], sentVia: new Set(), problems: [] }
  d.client = new SyncClient({
    url,
    auth: { username: user.username, password: PASSWORD },
    device: { id: name },
    storage: new MemoryStorage(),
    reconnect: { baseMs: 100, maxMs: 1000 },
    probe: { baseMs: 200, maxMs: 1000 },
    pollWaitSec: 5,
    handshakeTimeoutMs: 3000,
    ...extra,
    onChanges: (b) => {
      if (b.kind !== 'changes') return
      for (const c of b.changes as Change[]) {
        const last = d.seqs.at(-1) ?? 0
        if (c.seq <= last) d.problems.push(`seq ${c.seq} after ${last}`)
        d.seqs.push(c.seq)
        d.ids.set(c.seq, c.id)
      }
    },
  })
  d.client.on('status', (s) => d.statuses.push(s))
  d.client.on('connection', (e) => e.event === 'close' && d.closes.push(e.code))
  d.client.on('sent', (e) => d.sentVia.add(e.via))
  d.client.on('error', (e) => e.fatal && d.problems.push(`fatal ${e.code}: ${e.message}`))
  t.teardown(() => d.client.stop())
  return d
}

/** Pushes `count` settings puts (ids `${prefix}-k`) at about `perSec`; resolves with their ids once all are acked. */
async function pushAll(d: Dev, prefix: string, count: number, perSec: number, during?: (k: number) => void | Promise<void>): Promise<string[]> {
  const results: Array<Promise<unknown>> = []
  const ids: string[] = []
  for (let k = 1; k <= count; k++) {
    const id = `${prefix}-${k}`
    ids.push(id)
    results.push(d.client.push({ op: 'put', collection: 'settings', id, data: { value: k } }))
    await during?.(k)
    await new Promise((r) => setTimeout(r, 1000 / perSec))
  }
  await Promise.all(results)
  return ids
}

/** Exactly once: one change per op at the hub, and `readers` saw 1..head once, in order, with every id. */
async function assertExactlyOnce(t: Test, c: ProcCluster, user: ProcUser, ids: string[], readers: Dev[]): Promise<void> {
  const node = c.nodes.findIndex((n) => n.running)
  // A token of its own: the user's first one may have expired (short-lived tokens below).
  const login = await c.rest(node, 'POST', '/v1/auth/login', { body: { username: user.username, password: PASSWORD } })
  const status = await c.rest(node, 'GET', '/v1/sync/status', { user: { ...user, token: login.json.access_token } })
  const head = status.json.cursor
  t.equal(head, ids.length, `one change per op: head ${head} for ${ids.length} ops`)
  for (const r of readers) {
    await waitUntil(() => r.seqs.length >= head, 20_000).catch(() => {})
    t.same(r.problems, [], `${r.name}: no duplicate, nothing out of order`)
    t.same(r.seqs, Array.from({ length: head }, (_, i) => i + 1), `${r.name}: every change once, in order`)
    t.same(new Set(r.ids.values()), new Set(ids), `${r.name}: every op's change`)
  }
}

t.test('faults between the SDK and real hub processes', async (t) => {
  const c = await startProcCluster(t, { nodes: 2 })
  if (!c) return
  const proxies: TcpProxy[] = []
  t.teardown(() => Promise.all(proxies.map((p) => p.close())))
  for (const n of c.nodes) proxies.push(await startTcpProxy({ port: n.port }))
  const [p0, p1] = proxies as [TcpProxy, TcpProxy]

  await t.test('connections cut in the middle of frames, again and again', async (t) => {
    const user = await c.newUser()
    const a = device(t, user, 'cut-a', p0.url)
    const b = device(t, user, 'cut-b', p1.url)
    await Promise.all([a.client.start(), b.client.start()])
    await Promise.all([a.client.whenSynced(), b.client.whenSynced()])
    const ids = await pushAll(a, 'cut', 120, 80, (k) => {
      if (k % 15 === 0) {
        p0.cut({ midFrame: true })
        p1.cut({ midFrame: true })
      }
    })
    t.ok(p0.stats.cuts + p1.stats.cuts >= 8, `connections were cut (${p0.stats.cuts + p1.stats.cuts})`)
    await assertExactlyOnce(t, c, user, ids, [b, a])
  })

  await t.test('upgrades refused while HTTP passes: REST polling, then back to the socket', async (t) => {
    const user = await c.newUser()
    p0.refuseUpgrades = true
    p1.refuseUpgrades = true
    const a = device(t, user, 'rest-a', p0.url)
    const b = device(t, user, 'rest-b', p1.url)
    await Promise.all([a.client.start(), b.client.start()])
    await waitUntil(() => a.client.status === 'polling' && b.client.status === 'polling', 10_000)
    t.pass('both poll over REST')
    const first = await pushAll(a, 'rest', 30, 50)
    await waitUntil(() => b.seqs.length === 30, 10_000)
    t.ok(a.sentVia.has('rest') && !a.sentVia.has('socket'), 'the outbox went over POST /v1/sync/push')
    p0.refuseUpgrades = false
    p1.refuseUpgrades = false
    await waitUntil(() => a.client.status === 'live' && b.client.status === 'live', 10_000)
    t.pass('both are back on the socket (the probe got through)')
    const second = await pushAll(a, 'back', 30, 50)
    t.ok(a.sentVia.has('socket'), 'and push over it')
    t.ok(p0.stats.refusedUpgrades + p1.stats.refusedUpgrades >= 2, 'upgrades were refused')
    await assertExactlyOnce(t, c, user, [...first, ...second], [b, a])
  })

  await t.test('the path down entirely: pushes wait in the outbox, then flush', async (t) => {
    const user = await c.newUser()
    const a = device(t, user, 'down-a', p0.url)
    const b = device(t, user, 'down-b', p1.url)
    await Promise.all([a.client.start(), b.client.start()])
    await Promise.all([a.client.whenSynced(), b.client.whenSynced()])
    await p0.down()
    let settled = 0
    const offline = Array.from({ length: 25 }, (_, i) => a.client.push({ op: 'put', collection: 'settings', id: `down-${i + 1}`, data: { value: i } }).then(() => settled++))
    await waitUntil(() => a.client.status === 'offline' || a.client.status === 'polling', 10_000)
    await new Promise((r) => setTimeout(r, 1000))
    t.equal(settled, 0, 'nothing settled while the hub cannot be reached (and nothing rejected)')
    t.equal(a.client.outbox, 25, 'the ops wait in the outbox')
    await p0.up()
    await Promise.all(offline)
    t.equal(settled, 25, 'every push resolved once the path was back')
    await assertExactlyOnce(t, c, user, Array.from({ length: 25 }, (_, i) => `down-${i + 1}`), [b, a])
  })

  await t.test('a hub SIGKILLed and restarted while pushing', async (t) => {
    const user = await c.newUser()
    const node = c.nodes[0]!
    const a = device(t, user, 'kill-a', node.url)
    const b = device(t, user, 'kill-b', node.url)
    await Promise.all([a.client.start(), b.client.start()])
    await Promise.all([a.client.whenSynced(), b.client.whenSynced()])
    let restarted: Promise<void> | undefined
    const ids = await pushAll(a, 'kill', 60, 60, (k) => {
      if (k === 20) {
        node.kill('SIGKILL')
        restarted = node.exited.then(() => node.restart())
      }
    })
    await restarted
    t.ok(b.closes.includes(1006), 'the socket dropped')
    await assertExactlyOnce(t, c, user, ids, [b, a])
  })

  await t.test('a node drained with SIGTERM: devices move to the other node', async (t) => {
    const user = await c.newUser()
    const urls = c.nodes.map((n) => n.url)
    const a = device(t, user, 'drain-a', urls)
    const b = device(t, user, 'drain-b', urls)
    await Promise.all([a.client.start(), b.client.start()])
    await Promise.all([a.client.whenSynced(), b.client.whenSynced()])
    const victim = c.nodes[0]!
    let stopped: Promise<unknown> | undefined
    const ids = await pushAll(a, 'drain', 60, 60, (k) => {
      if (k === 20) stopped = victim.stop()
    })
    await stopped
    t.ok(a.closes.includes(1012) && b.closes.includes(1012), 'both were told to leave (1012)')
    t.equal(a.client.status, 'live', 'and are live elsewhere')
    await assertExactlyOnce(t, c, user, ids, [b, a])
    await victim.restart()
  })
})

t.test('tokens that expire while the device sleeps: bye token_expired, a fresh token, no loss', async (t) => {
  // Tokens live 6 s: the awake device renews a quarter of that (1.5 s) before the end, room
  // enough for a loaded machine's round trip; the sleepy one would renew 45 s late.
  const c = await startProcCluster(t, { nodes: 1, env: { SYNCHUB_ACCESS_TTL: '6' } })
  if (!c) return
  const user = await c.newUser()
  // A device whose timers run ten times late (a laptop asleep): its in-band refresh comes after
  // the token expired, so the hub ends the socket and the client must get a new token.
  const sleepy: Clock = {
    now: () => Date.now(),
    setTimeout: (fn, ms) => setTimeout(fn, ms >= 1000 ? ms * 10 : ms),
    clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  }
  const a = device(t, user, 'sleepy-a', c.nodes[0]!.url, { clock: sleepy })
  const b = device(t, user, 'awake-b', c.nodes[0]!.url)
  const byes: string[] = []
  a.client.on('connection', (e) => e.event === 'close' && e.bye && byes.push(e.bye.reason))
  await Promise.all([a.client.start(), b.client.start()])
  await Promise.all([a.client.whenSynced(), b.client.whenSynced()])
  const ids = await pushAll(a, 'sleep', 72, 8)
  t.ok(byes.includes('token_expired'), `the hub said token_expired (${byes.join(', ')})`)
  t.ok(a.closes.includes(4401), 'and closed 4401')
  t.same(b.closes, [], 'the awake device refreshed in band and kept its socket')
  await assertExactlyOnce(t, c, user, ids, [b, a])
})
