import t from 'tap'
import { collect, eachHub, messagePut } from '../helpers/hub.ts'

const conv = (mid: number, id: string, title: string, base?: number) => ({
  op: 'put' as const,
  mid,
  collection: 'conversations',
  id,
  data: { title },
  ...(base !== undefined ? { base } : {}),
})

t.test('mid: replays answer dup with the first answer, gaps are refused, refusals use up their mid', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const phone = await alice.connect('phone')
    const seen = collect(phone)
    await phone.subscribe(0)
    const first = await phone.push([conv(1, 'c1', 'one'), { op: 'put', mid: 2, collection: 'nope', id: 'x', data: {} }, conv(3, 'c2', 'two')])
    t.same(first.results[0], { ok: true, seq: 1, id: 'c1' })
    t.match(first.results[1], { ok: false, code: 'invalid' }, 'unknown collection refused')
    t.same(first.results[2], { ok: true, seq: 2, id: 'c2' }, 'a refused op does not block the next one')

    const replay = await phone.push([conv(1, 'c1', 'one'), { op: 'put', mid: 2, collection: 'nope', id: 'x', data: {} }, conv(3, 'c2', 'two')])
    t.same(replay.results[0], { ok: true, seq: 1, id: 'c1', dup: true })
    t.match(replay.results[1], { ok: false, code: 'invalid', dup: true }, 'a replayed refusal is refused again, with dup')
    t.same(replay.results[2], { ok: true, seq: 2, id: 'c2', dup: true })
    t.equal(replay.cursor, 2, 'nothing applied twice')

    const gap = await phone.push([conv(6, 'c3', 'three')])
    t.match(gap.results[0], { ok: false, code: 'out_of_order' })
    const next = await phone.push([conv(4, 'c3', 'three')])
    t.same(next.results[0], { ok: true, seq: 3, id: 'c3' }, 'the skipped mid was not used up')
    await seen.waitFor(() => seen.seqs().length === 3)
    t.same(seen.seqs(), [1, 2, 3], 'replays delivered nothing')

    // The same counter runs across sockets and REST for one device.
    const rest = await alice.rest.push([conv(1, 'r1', 'rest')])
    t.same(rest.results[0], { ok: true, seq: 4, id: 'r1' }, 'another device has its own mids')
  })
})

t.test('conflicts keep both versions; deletes go to the recycle bin', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((d) => alice.connect(d)))
    const seenByC = collect(c!)
    await c!.subscribe(0)
    const created = await a!.push([conv(1, 'c1', 'original')])
    const rev1 = (created.results[0] as any).seq as number
    const updated = await b!.push([conv(1, 'c1', 'from b', rev1)])
    t.same(updated.results[0], { ok: true, seq: rev1 + 1, id: 'c1' }, 'put on the current rev updates')
    const stale = await c!.push([conv(1, 'c1', 'from c', rev1)])
    const r = stale.results[0] as any
    t.equal(r.ok, true)
    t.type(r.copy, 'string', 'a stale base becomes a copy')
    t.not(r.copy, 'c1')
    const blind = await c!.push([conv(2, 'c1', 'blind create')])
    t.type((blind.results[0] as any).copy, 'string', 'a put without base on an existing id is stale too')

    const pulled = await alice.rest.pull()
    const byId = new Map<string, any>(pulled.items.map((i: any) => [i.id, i]))
    t.equal(byId.get('c1').data.title, 'from b', 'the stored version stays (the cloud wins)')
    t.match(byId.get(r.copy), { conflict_of: 'c1', data: { title: 'from c' } }, 'the client version is kept as a copy')
    const replay = await c!.push([conv(1, 'c1', 'from c', rev1)])
    t.same(replay.results[0], { ...r, dup: true }, 'a replay returns the same copy id')
    const after = await alice.rest.pull()
    t.equal(after.items.filter((i: any) => i.conflict_of === 'c1').length, 2, 'no second copy from the replay')

    // Recycle bin.
    const del = await a!.push([{ op: 'del', mid: 2, collection: 'conversations', id: 'c1' }])
    const delSeq = (del.results[0] as any).seq as number
    await seenByC.waitFor(() => seenByC.seqs().includes(delSeq))
    const deleted = seenByC.frames.flatMap((f) => f.items).find((i: any) => i.seq === delSeq)
    t.ok(deleted.deleted_at > 0, 'deleted_at set')
    t.equal(deleted.purge_at - deleted.deleted_at, 7 * 24 * 3600 * 1000, 'purge in 7 days')
    t.equal(deleted.data.title, 'from b', 'data kept in the bin')
    const again = await a!.push([{ op: 'del', mid: 3, collection: 'conversations', id: 'c1' }])
    t.same(again.results[0], { ok: true, seq: delSeq, id: 'c1' }, 'deleting a deleted record is a no-op')
    const editDeleted = await b!.push([conv(2, 'c1', 'edit after delete', delSeq)])
    t.match(editDeleted.results[0], { ok: false, code: 'not_found' }, 'a put on a record in the bin is refused')
    const offline = await b!.push([conv(3, 'c1', 'offline edit', rev1 + 1)])
    t.type((offline.results[0] as any).copy, 'string', 'an offline edit of a deleted record becomes a copy')
    const restored = await a!.push([{ op: 'restore', mid: 4, collection: 'conversations', id: 'c1' }])
    t.equal(restored.results[0]!.ok, true)
    const status = await alice.rest.status()
    t.equal(status.trash, 0, 'the bin is empty after restore')
    const restoreLive = await a!.push([{ op: 'restore', mid: 5, collection: 'conversations', id: 'c1' }])
    t.same(restoreLive.results[0], { ok: true, seq: (restored.results[0] as any).seq, id: 'c1' }, 'restoring a live record is a no-op')
    const missing = await a!.push([{ op: 'del', mid: 6, collection: 'conversations', id: 'ghost' }])
    t.match(missing.results[0], { ok: false, code: 'not_found' })
  })
})

t.test('messages are immutable except their status fields', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const phone = await alice.connect('phone')
    const created = await phone.push([messagePut(1, 'm1', 'c1', 'hi')])
    const rev = (created.results[0] as any).seq as number
    const edit = await phone.push([messagePut(2, 'm1', 'c1', 'edited')])
    t.match(edit.results[0], { ok: false, code: 'immutable' })
    const status = await phone.push([
      { op: 'put', mid: 3, collection: 'messages', id: 'm1', data: { conversation_id: 'c1', role: 'user', content: 'hi', status: 'delivered', delivered_at: 5 } },
    ])
    t.same(status.results[0], { ok: true, seq: rev + 1, id: 'm1' }, 'status change applied without a base')
    const invalid = await phone.push([{ op: 'put', mid: 4, collection: 'messages', id: 'm2', data: { conversation_id: 'c1', role: 'robot', content: 'x' } }])
    t.match(invalid.results[0], { ok: false, code: 'invalid' }, 'schema-invalid message refused')
    const pulled = await alice.rest.pull()
    t.same(pulled.items.map((i: any) => [i.id, i.data.content, i.data.status]), [['m1', 'hi', 'delivered']], 'nothing refused was stored')
  })
})
