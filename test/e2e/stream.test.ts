import { randomUUID } from 'node:crypto'
import t from 'tap'
import type { Test } from 'tap'
import { collect, eachHub, HUB_VARIANTS, messagePut, waitUntil, type TestHub } from '../helpers/hub.ts'

t.test('devices of one user stay in sync, exactly once and in order', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const bob = await h.newUser()
    const [phone, pc, tablet] = await Promise.all([alice.connect('phone'), alice.connect('pc'), alice.connect('tablet')])
    const bobPhone = await bob.connect('bob-phone')
    const seen = [phone, pc, tablet].map(collect)
    const bobSeen = collect(bobPhone)
    for (const c of [phone, pc, tablet, bobPhone]) t.equal(await c.subscribe(0), 0, 'empty account syncs at cursor 0')

    const order: string[] = []
    phone.on('changes', () => order.push('changes'))
    phone.on('ack', () => order.push('ack'))
    const ack = await phone.push([messagePut(1, 'm1')])
    t.same(order, ['changes', 'ack'], 'a live pusher gets its own change, then the ack')
    t.same(ack.results, [{ ok: true, seq: 1, id: 'm1' }], 'push acked with its seq')
    t.equal(ack.cursor, 1)
    await Promise.all(seen.map((s) => s.waitFor(() => s.seqs().length === 1)))
    for (const s of seen) {
      const item = s.frames[0].items[0]
      t.match(item, { seq: 1, rev: 1, collection: 'messages', id: 'm1', device_id: 'phone', data: { content: 'hello', role: 'user' } })
      t.same([s.frames[0].from, s.frames[0].to], [0, 1])
    }
    t.equal(seen[0]!.frames.length, 1, 'the pusher gets its own change too')

    await bobPhone.push([messagePut(1, 'b1')])
    await bobSeen.waitFor(() => bobSeen.seqs().length === 1)
    t.equal(bobSeen.frames[0].items[0].id, 'b1')
    t.notOk(bobSeen.frames.some((f) => f.items.some((i: any) => i.id === 'm1')), 'bob never sees alice’s change')
    t.equal(seen[1]!.frames.length, 1, 'alice never sees bob’s change')
    const bobPull = await bob.rest.pull()
    t.same(bobPull.items.map((i: any) => i.id), ['b1'], 'bob pulls only his own records')
    for (const s of seen) t.same(s.gaps, [], 'no cursor gaps')
  })
})

t.test('live changes carry the data as stored: the same values a pull returns, in MessagePack and JSON', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const [phone, pc, browser] = await Promise.all([alice.connect('phone'), alice.connect('pc'), alice.connect('browser', { encoding: 'json' })])
    const seen = [pc, browser].map(collect)
    for (const c of [phone, pc, browser]) await c.subscribe(0)
    const data = {
      conversation_id: 'c1', role: 'assistant', content: 'héllo ✓ "quoted" \\ ',
      tokens: 2 ** 40, delta: -(2 ** 33), score: 1.5, none: null, meta: { tags: ['a', { deep: [1, 2, { x: true }] }], empty: {} }, list: [],
    }
    await phone.push([{ op: 'put', mid: 1, collection: 'messages', id: 'm1', data }])
    await phone.push([{ op: 'put', mid: 2, collection: 'settings', id: 'theme', data: { value: { dark: true, size: 2 ** 35 } } }])
    await Promise.all(seen.map((s) => s.waitFor(() => s.seqs().length === 2)))
    const pulled = (await alice.rest.pull()).items
    t.same(pulled.map((i: any) => i.data), [data, { value: { dark: true, size: 2 ** 35 } }], 'the pull returns what was pushed')
    for (const [name, s] of [['msgpack', seen[0]!], ['json', seen[1]!]] as const) {
      const live = s.frames.flatMap((f) => f.items)
      t.same(live, pulled, `${name}: each live change equals the pulled one, sync fields and data`)
    }
  })
})

t.test('a device that was offline resumes from its cursor with exactly what it missed', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const phone = await alice.connect('phone')
    let pc = await alice.connect('pc')
    await phone.subscribe(0)
    const pcSeen = collect(pc)
    await pc.subscribe(0)
    await phone.push([messagePut(1, 'm1'), messagePut(2, 'm2')])
    await pcSeen.waitFor(() => pcSeen.seqs().length === 2)
    const cursor = pc.cursor
    t.equal(cursor, 2)
    pc.kill()
    await pc.closed()

    for (let mid = 3; mid <= 7; mid++) await phone.push([messagePut(mid, `m${mid}`)])
    pc = await alice.connect('pc')
    const resumed = collect(pc)
    const synced = await pc.subscribe(cursor)
    t.equal(synced, 7, 'synced at the newest seq')
    t.same(resumed.seqs(), [3, 4, 5, 6, 7], 'exactly the missed changes, in order')
    t.equal(resumed.frames[0].from, 2, 'the first frame continues from the old cursor')

    await phone.push([messagePut(8, 'm8')])
    await resumed.waitFor(() => resumed.seqs().length === 6)
    t.same(resumed.seqs(), [3, 4, 5, 6, 7, 8], 'then live changes, no duplicate')
    t.same(resumed.gaps, [])

    const rest = await alice.rest.pull({ since: 2 })
    t.same(rest.items.map((i: any) => i.seq), [3, 4, 5, 6, 7, 8], 'REST pull serves the same stream')
    t.equal(rest.cursor, 8)
    t.equal(rest.more, false)
    const paged = await alice.rest.pull({ since: 0, limit: 3 })
    t.same([paged.items.map((i: any) => i.seq), paged.cursor, paged.more], [[1, 2, 3], 3, true], 'pull pages by limit')
  })
})

t.test('backlog and live changes merge without gap or duplicate while pushes keep coming', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const writer = await alice.connect('writer')
    let mid = 0
    for (let i = 0; i < 300; i++) await writer.push([messagePut(++mid, `m${mid}`)])
    // Keep pushing while a second device subscribes from 0 and reads the backlog.
    const pushing = (async () => {
      for (let i = 0; i < 100; i++) await writer.push([messagePut(++mid, `m${mid}`)])
    })()
    const reader = await alice.connect('reader', {})
    const seen = collect(reader)
    await reader.subscribe(0)
    await pushing
    await seen.waitFor(() => seen.seqs().length === 400)
    t.same(seen.seqs(), Array.from({ length: 400 }, (_, i) => i + 1), 'every seq once, in order')
    t.same(seen.gaps, [], 'each frame starts where the previous ended')
  })
})

/** Three devices of a user push rounds of messages at once; every device sees every seq once, in order. */
async function concurrentPushes(t: Test, h: TestHub): Promise<void> {
  const alice = await h.newUser()
  const devices = await Promise.all(['a', 'b', 'c'].map((d) => alice.connect(d)))
  const seen = devices.map(collect)
  for (const d of devices) await d.subscribe(0)
  const rounds = 20
  const perRound = 5
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      devices.map((d, i) =>
        Promise.all(
          Array.from({ length: perRound }, (_, k) => {
            const mid = round * perRound + k + 1
            return d.push([messagePut(mid, `${i}-${mid}`)])
          }),
        ),
      ),
    )
  }
  const total = rounds * perRound * devices.length
  await Promise.all(seen.map((s) => s.waitFor(() => s.seqs().length === total)))
  const expected = Array.from({ length: total }, (_, i) => i + 1)
  for (const s of seen) {
    t.same(s.seqs(), expected, 'gapless and strictly increasing on every device')
    t.same(s.gaps, [])
  }
  t.same(seen[0]!.frames.flatMap((f) => f.items.map((i: any) => i.id)), seen[2]!.frames.flatMap((f) => f.items.map((i: any) => i.id)), 'same order everywhere')
  const pulled = await alice.rest.pull({ limit: 10000 })
  t.same(pulled.items.map((i: any) => i.seq), expected, 'REST pull agrees with the sockets')
}

t.test('concurrent pushes from several devices never leave a seq gap or reorder', async (t) => {
  eachHub(t, concurrentPushes)
})

t.test('with several commit lanes, each of several users pushing at once keeps a gapless order', async (t) => {
  // One lane is the default; an operator may set more, and then users' batches commit in parallel.
  eachHub(t, async (t, h) => {
    await Promise.all([1, 2, 3, 4].map((n) => t.test(`user ${n}`, (t) => concurrentPushes(t, h))))
  }, { env: { SYNCHUB_COMMIT_LANES: '4' }, variants: HUB_VARIANTS.filter((v) => v.store === 'postgres') })
})

t.test('long-poll wakes on a commit', async (t) => {
  // On a manual clock a long-poll's wait never runs out unless the test moves time: a pull that
  // returns woke on the commit.
  eachHub(
    t,
    async (t, h) => {
      const alice = await h.newUser()
      const first = await alice.rest.pull({ since: 0 })
      t.same([first.items, first.cursor, typeof first.epoch], [[], 0, 'string'])
      // The socket first: its token's expiry is a timer on the same clock.
      const phone = await alice.connect('phone')
      const timers = h.clock.pending
      const polling = alice.rest.pull({ since: 0, wait: 20 })
      await waitUntil(() => h.clock.pending > timers) // the pull is waiting
      await phone.push([messagePut(1, randomUUID())])
      const woke = await polling
      t.equal(woke.items.length, 1, 'the waiting pull returns the new change, its wait not run out')
      t.equal(h.clock.pending, timers, 'and its timer is gone')

      const waiting = alice.rest.pull({ since: 1, wait: 0.3 })
      await waitUntil(() => h.clock.pending > timers)
      await h.clock.advance(300)
      const empty = await waiting
      t.same(empty.items, [], 'a wait with no commit ends empty when it runs out')
      t.equal(empty.cursor, 1)
    },
    { clock: 'manual' },
  )
})

t.test('REST push follows the same rules and reaches sockets', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const phone = await alice.connect('phone')
    const seen = collect(phone)
    await phone.subscribe(0)
    const res = await alice.rest.push([{ op: 'put', mid: 1, collection: 'conversations', id: 'c1', data: { title: 'Trip' } }])
    t.same(res, { cursor: 1, results: [{ ok: true, seq: 1, id: 'c1' }] })
    await seen.waitFor(() => seen.seqs().length === 1)
    t.equal(seen.frames[0].items[0].device_id, 'rest-device')
    const replay = await alice.rest.push([{ op: 'put', mid: 1, collection: 'conversations', id: 'c1', data: { title: 'Trip' } }])
    t.same(replay.results, [{ ok: true, seq: 1, id: 'c1', dup: true }], 'a replay over REST returns the first answer')
    const noDevice = await fetch(h.url + '/v1/sync/push', {
      method: 'POST',
      headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ ops: [] }),
    })
    t.equal(noDevice.status, 400)
    t.equal((await noDevice.json()).error.code, 'invalid')
    const status = await alice.rest.status()
    t.match(status, { cursor: 1, collections: { conversations: { count: 1 } }, trash: 0 })
  })
})
