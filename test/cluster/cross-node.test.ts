import t from 'tap'
import { collect, messagePut } from '../helpers/hub.ts'
import { startCluster } from '../helpers/cluster.ts'

t.test('devices on different nodes get every change exactly once, in seq order', async (t) => {
  const cluster = await startCluster(t, 3)
  if (!cluster) return
  const alice = await cluster.nodes[0]!.newUser()
  const bob = await cluster.nodes[1]!.newUser()
  const devices = await Promise.all([0, 1, 2].map((i) => cluster.connect(i, alice.token, `alice-${i}`)))
  const bobDevice = await cluster.connect(2, bob.token, 'bob-2')
  const seen = devices.map(collect)
  const bobSeen = collect(bobDevice)
  for (const d of [...devices, bobDevice]) await d.subscribe(0)

  // Every node's device pushes at once, many times: one seq order, seen alike everywhere.
  const perDevice = 40
  await Promise.all(devices.map((d, i) => Promise.all(Array.from({ length: perDevice }, (_, k) => d.push([messagePut(k + 1, `${i}-${k}`)])))))
  await bobDevice.push([messagePut(1, 'bob-only')])
  const total = perDevice * devices.length
  await Promise.all(seen.map((s) => s.waitFor(() => s.seqs().length === total, 15_000)))
  const expected = Array.from({ length: total }, (_, i) => i + 1)
  for (const [i, s] of seen.entries()) {
    t.same(s.seqs(), expected, `node ${i}: every seq once, in order`)
    t.same(s.gaps, [], `node ${i}: frames chain`)
  }
  const order = (i: number) => seen[i]!.frames.flatMap((f) => f.items.map((c: any) => c.id))
  t.same(order(1), order(0), 'the same order on every node')
  t.same(order(2), order(0))
  await bobSeen.waitFor(() => bobSeen.seqs().length === 1)
  t.notOk(seen.some((s) => s.frames.some((f) => f.items.some((c: any) => c.id === 'bob-only'))), 'another user’s change reaches none of alice’s devices')
})

t.test('disabling a user on one node closes its sockets on every node', async (t) => {
  const cluster = await startCluster(t, 2, { SYNCHUB_ADMIN_USERNAME: 'root', SYNCHUB_ADMIN_PASSWORD: 'tidal-orbit-marmalade' })
  if (!cluster) return
  const admin = await cluster.nodes[0]!.admin('root', 'tidal-orbit-marmalade')
  const alice = await cluster.nodes[0]!.newUser()
  const onZero = await cluster.connect(0, alice.token, 'phone')
  const onOne = await cluster.connect(1, alice.token, 'pc')
  await admin.call('PATCH', `/v1/admin/users/${alice.id}`, { disabled: true })
  // Only the control event closes a socket with 4403 here (tokens live 15 minutes): it reached both nodes.
  t.same(await Promise.all([onZero.closed(), onOne.closed()]), [4403, 4403], 'both closed with 4403')
})

t.test('devices: online state and node across the cluster; revoking closes sockets on every node', async (t) => {
  const cluster = await startCluster(t, 2)
  if (!cluster) return
  const alice = await cluster.nodes[0]!.newUser()
  const onZero = await cluster.connect(0, alice.token, 'phone')
  const onOne = await cluster.connect(1, alice.token, 'phone')
  const pc = await cluster.connect(1, alice.token, 'pc')
  await pc.push([messagePut(1, 'm1')])
  pc.ack(1)
  await pc.close()
  const list = async () => (await alice.rest.call('GET', '/v1/devices')).items as any[]
  // pc's socket is gone: presence updates at once, the ack is written within a second.

  let devices: any[] = []
  const deadline = Date.now() + 5000
  do devices = await list()
  while (Date.now() < deadline && (devices.find((d) => d.id === 'pc')?.acked_cursor !== 1 || devices.find((d) => d.id === 'pc')?.online))
  const phone = devices.find((d) => d.id === 'phone')
  t.match(phone, { online: true, revoked: false }, 'the phone is online')
  t.same([...phone.nodes].sort(), ['node0', 'node1'], 'on both nodes, as its two sockets are')
  t.match(devices.find((d) => d.id === 'pc'), { online: false, acked_cursor: 1, last_mid: 1 }, 'the pc is offline, with its last ack')

  const bye: any[] = []
  onZero.on('bye', (f) => bye.push(f))
  onOne.on('bye', (f) => bye.push(f))
  const res = await fetch(`${cluster.nodes[1]!.url}/v1/devices/phone`, { method: 'DELETE', headers: { authorization: `Bearer ${alice.token}` } })
  t.equal(res.status, 204)
  t.same(await Promise.all([onZero.closed(), onOne.closed()]), [4403, 4403], 'both sockets closed 4403, on the node that revoked and the other')
  t.match(bye, [{ reason: 'revoked' }, { reason: 'revoked' }])
  await t.rejects(cluster.connect(0, alice.token, 'phone'), { code: 'forbidden' }, 'the revoked device cannot come back')
  const missing = await fetch(`${cluster.nodes[0]!.url}/v1/devices/nope`, { method: 'DELETE', headers: { authorization: `Bearer ${alice.token}` } })
  t.equal(missing.status, 404)
})

t.test('logout refuses the access token on every node; login is rate-limited cluster-wide', async (t) => {
  const cluster = await startCluster(t, 2, { SYNCHUB_AUTH_RATE_USER: '3' })
  if (!cluster) return
  const alice = await cluster.nodes[0]!.newUser()
  const tokens = await alice.rest.login(alice.username, alice.password)
  const me = (i: number) => fetch(`${cluster.nodes[i]!.url}/v1/auth/me`, { headers: { authorization: `Bearer ${tokens.access_token}` } })
  t.equal((await me(1)).status, 200)
  const out = await fetch(`${cluster.nodes[0]!.url}/v1/auth/logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens.access_token}` },
    body: JSON.stringify({ refresh_token: tokens.refresh_token }),
  })
  t.equal(out.status, 204)
  t.equal((await me(1)).status, 401, 'the other node refuses the logged-out token')

  // newUser logged in once and the login above was a second: one more on another node is the third.
  const login = (i: number, password: string) =>
    fetch(`${cluster.nodes[i]!.url}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: alice.username, password }) })
  t.equal((await login(1, 'wrong password')).status, 401)
  const limited = await login(0, alice.password)
  t.equal(limited.status, 429, 'the fourth attempt on any node is refused')
  t.match(await limited.json(), { error: { code: 'rate_limited' } })
  t.ok(Number(limited.headers.get('retry-after')) >= 1, 'with Retry-After')
})

t.test('what a node remembers of a user never hides another node’s write', async (t) => {
  const cluster = await startCluster(t, 2)
  if (!cluster) return
  const alice = await cluster.nodes[0]!.newUser()
  const phone = await cluster.connect(0, alice.token, 'phone')
  const pc = await cluster.connect(1, alice.token, 'pc')
  const seen = collect(phone)
  await phone.subscribe(0)
  t.match(await pc.push([messagePut(1, 'x', 'c1', 'from the pc')]), { results: [{ ok: true, seq: 1 }] })
  // Node 0 reads alice's counter for this push and remembers it, and the phone's mid.
  t.match(await phone.push([messagePut(1, 'm1')]), { results: [{ ok: true, seq: 2 }] })
  // The phone's put of 'x' looks like a create to node 0, and the counter has not moved since
  // node 0 wrote: only the write's check for the record itself finds 'x' stored.
  const clash = await phone.push([messagePut(2, 'x', 'c1', 'from the phone')])
  t.match(clash, { results: [{ ok: false, code: 'immutable' }] }, 'the stored message is found, not overwritten')
  // Node 1 writes behind node 0's back: the next create from node 0 must not reuse seq 3.
  t.match(await pc.push([messagePut(2, 'm2')]), { results: [{ ok: true, seq: 3 }] })
  t.match(await phone.push([messagePut(3, 'm3')]), { results: [{ ok: true, seq: 4 }] }, 'the next create takes the next seq')
  await seen.waitFor(() => seen.seqs().length === 4)
  t.same(seen.seqs(), [1, 2, 3, 4], 'one gapless stream')
  const pulled = await alice.rest.call('GET', '/v1/sync/pull?since=0')
  t.same(pulled.items.find((c: any) => c.id === 'x').data.content, 'from the pc', 'x kept the pc’s content')
})
