import t from 'tap'
import { collect, eachHub } from '../helpers/hub.ts'

const conversation = (mid: number, id: string, title = 'chat') => ({ op: 'put' as const, mid, collection: 'conversations', id, data: { title } })
const message = (mid: number, id: string, role: string, content: string, conv = 'c1') => ({
  op: 'put' as const,
  mid,
  collection: 'messages',
  id,
  data: { conversation_id: conv, role, content },
})

/** Records by id as a REST pull shows them now. */
async function state(rest: { pull(q?: object): Promise<any> }): Promise<Map<string, any>> {
  const page = await rest.pull({ limit: 10000 })
  return new Map(page.items.map((i: any) => [i.id, i]))
}

t.test('regen replaces the last reply in one commit, one frame; anything else is refused', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const phone = await alice.connect('phone')
    const pc = await alice.connect('pc')
    const seen = collect(pc)
    await pc.subscribe(0)
    await phone.push([conversation(1, 'c1'), message(2, 'u1', 'user', 'hi'), message(3, 'a1', 'assistant', 'hello')])
    await seen.waitFor(() => seen.seqs().length === 3)

    const regen = (mid: number, old: string, id: string, data: Record<string, unknown> = { conversation_id: 'c1', role: 'assistant', content: 'hello again' }) =>
      phone.push([{ op: 'regen', mid, conversation: 'c1', old, message: { id, data } }])
    t.match((await regen(4, 'u1', 'x')).results[0], { ok: false, code: 'invalid', message: /not the newest/ }, 'only the newest message')
    await phone.push([message(5, 'u2', 'user', 'again?')])
    t.match((await regen(6, 'u2', 'x')).results[0], { ok: false, code: 'invalid', message: /not an assistant reply/ }, 'only an assistant reply')
    await phone.push([message(7, 'a2', 'assistant', 'sure')])
    t.match((await regen(8, 'a2', 'x', { conversation_id: 'other', role: 'assistant', content: 'x' })).results[0], { ok: false, code: 'invalid' }, 'the new message must be in the conversation')
    t.match((await phone.push([{ op: 'regen', mid: 9, conversation: 'nope', old: 'a2', message: { id: 'x', data: {} } }])).results[0], { ok: false, code: 'not_found' })
    const before = seen.frames.length
    const ok = await regen(10, 'a2', 'a3')
    t.match(ok.results[0], { ok: true, id: 'a3' })
    await seen.waitFor(() => seen.frames.length === before + 1)
    const frame = seen.frames.at(-1)
    t.equal(frame.items.length, 2, 'both halves of the regen travel in one frame')
    t.match(frame.items[0], { id: 'a2', replaced_by: 'a3', deleted_at: Number, purge_at: Number })
    t.match(frame.items[1], { id: 'a3', data: { content: 'hello again' } })
    t.equal((ok.results[0] as any).seq, frame.items[1].seq, 'the result seq is the new message’s')
    const replay = await regen(10, 'a2', 'a3')
    t.match(replay.results[0], { ok: true, id: 'a3', dup: true }, 'a replay answers the first answer')
    const now = await state(alice.rest)
    t.equal(now.get('a2').replaced_by, 'a3')
    t.equal(now.get('u1').deleted_at, undefined, 'refused regens touched nothing')
  })
})

t.test('fork copies the history up to a message into a new conversation; the source is untouched', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const phone = await alice.connect('phone')
    const pc = await alice.connect('pc')
    const seen = collect(pc)
    await pc.subscribe(0)
    await phone.push([
      conversation(1, 'c1', 'source'),
      message(2, 'm1', 'user', 'one'),
      message(3, 'm2', 'assistant', 'two'),
      message(4, 'm3', 'user', 'three'),
      conversation(5, 'c2', 'other'),
      message(6, 'o1', 'user', 'elsewhere', 'c2'),
    ])
    await phone.push([{ op: 'del', mid: 7, collection: 'messages', id: 'm1' }])
    await seen.waitFor(() => seen.seqs().length === 7)
    const before = seen.frames.length
    const sourceBefore = await state(alice.rest)

    const wrong = await phone.push([{ op: 'fork', mid: 8, from: { conversation: 'c1', message: 'o1' }, conversation: { id: 'f0', data: { title: 'bad' } } }])
    t.match(wrong.results[0], { ok: false, code: 'invalid', message: /does not belong/ }, 'a message of another conversation is refused')
    const ok = await phone.push([{ op: 'fork', mid: 9, from: { conversation: 'c1', message: 'm2' }, conversation: { id: 'f1', data: { title: 'branch' } } }])
    t.match(ok.results[0], { ok: true, id: 'f1' })
    await seen.waitFor(() => seen.frames.length === before + 1)
    const items = seen.frames.at(-1).items
    t.equal(items.length, 2, 'the conversation and its one live copy in one frame (m1 is in the bin, m3 is after the fork)')
    t.match(items[0], { collection: 'conversations', id: 'f1', data: { title: 'branch', parent_conversation_id: 'c1', fork_from_message_id: 'm2' } })
    t.match(items[1], { collection: 'messages', data: { conversation_id: 'f1', forked_from: 'm2', content: 'two', role: 'assistant' } })
    t.not(items[1].id, 'm2', 'copies get new ids')
    const after = await state(alice.rest)
    for (const id of ['c1', 'm1', 'm2', 'm3']) t.same(after.get(id), sourceBefore.get(id), `source record ${id} untouched`)
    t.equal(after.has('f0'), false, 'the refused fork created nothing')
  })
})

t.test('clear, and deleting a conversation, take its messages to the bin; restore brings back only those', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const phone = await alice.connect('phone')
    const seen = collect(phone)
    await phone.subscribe(0)
    await phone.push([conversation(1, 'c1'), message(2, 'm1', 'user', 'a'), message(3, 'm2', 'assistant', 'b'), message(4, 'm3', 'user', 'c')])
    await phone.push([{ op: 'del', mid: 5, collection: 'messages', id: 'm1' }])
    await seen.waitFor(() => seen.seqs().length === 5)

    const before = seen.frames.length
    await phone.push([{ op: 'del', mid: 6, collection: 'conversations', id: 'c1' }])
    await seen.waitFor(() => seen.frames.length === before + 1)
    t.same(seen.frames.at(-1).items.map((i: any) => i.id), ['m2', 'm3', 'c1'], 'the conversation and its live messages go in one frame')
    let now = await state(alice.rest)
    t.ok(['c1', 'm1', 'm2', 'm3'].every((id) => now.get(id).deleted_at), 'all in the bin')

    await phone.push([{ op: 'restore', mid: 7, collection: 'conversations', id: 'c1' }])
    now = await state(alice.rest)
    t.equal(now.get('c1').deleted_at, undefined, 'the conversation is back')
    t.equal(now.get('m2').deleted_at, undefined, 'with the messages that went with it')
    t.equal(now.get('m3').deleted_at, undefined)
    t.type(now.get('m1').deleted_at, 'number', 'a message deleted on its own before stays in the bin')

    const clear = await phone.push([{ op: 'clear', mid: 8, conversation: 'c1' }])
    t.match(clear.results[0], { ok: true, id: 'c1' })
    now = await state(alice.rest)
    t.equal(now.get('c1').deleted_at, undefined, 'clear keeps the conversation')
    t.ok(['m2', 'm3'].every((id) => now.get(id).deleted_at), 'and bins its messages')
    t.match((await phone.push([{ op: 'clear', mid: 9, conversation: 'missing' }])).results[0], { ok: false, code: 'not_found' })
  })
})
