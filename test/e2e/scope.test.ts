import t from 'tap'
import { collect, eachHub, waitUntil } from '../helpers/hub.ts'

t.test('one scope for all devices: narrowing stops syncing, widening backfills, nothing is deleted', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const scope = (keys?: string[]) =>
      keys ? alice.rest.call('PUT', '/v1/sync/scope', { scope: keys }) : alice.rest.call('GET', '/v1/sync/scope')
    t.same((await scope()).scope, ['chat.history', 'characters.cards', 'characters.per_settings', 'providers.config', 'providers.keys', 'user.text_inputs', 'user.settings'], 'every key by default')
    await t.rejects(scope(['chat.history', 'no.such']), { code: 'invalid', message: /no\.such/ }, 'unknown keys are refused')

    const phone = await alice.connect('phone')
    await phone.push([
      { op: 'put', mid: 1, collection: 'conversations', id: 'c1', data: { title: 't' } },
      { op: 'put', mid: 2, collection: 'settings', id: 'theme', data: { value: 'dark' } },
    ])
    const pc = await alice.connect('pc')
    const pcSeen = collect(pc)
    const scopes: any[] = []
    const backfills: any[] = []
    pc.on('scope', (f) => scopes.push(f))
    pc.on('backfill', (f) => backfills.push(f))

    t.same(await scope(['chat.history']), { scope: ['chat.history'] })
    const refused = await phone.push([{ op: 'put', mid: 3, collection: 'settings', id: 'lang', data: { value: 'en' } }])
    t.match(refused.results[0], { ok: false, code: 'out_of_scope' }, 'pushes outside the scope are refused')
    await phone.push([{ op: 'put', mid: 4, collection: 'messages', id: 'm1', data: { conversation_id: 'c1', role: 'user', content: 'hi' } }])
    t.equal(await pc.subscribe(0), 3, 'synced at the head')
    t.same(pcSeen.frames.flatMap((f) => f.items.map((i: any) => i.id)), ['c1', 'm1'], 'the stream leaves other collections out')
    t.same((await alice.rest.pull()).items.map((i: any) => i.id), ['c1', 'm1'], 'so does a pull')
    t.match(await alice.rest.status(), { collections: { settings: { count: 1 } } }, 'narrowing deleted nothing in the cloud')

    await scope(['chat.history', 'user.settings'])
    await waitUntil(() => backfills.length > 0 && !backfills.at(-1).more)
    t.match(scopes.at(-1), { t: 'scope', scope: ['chat.history', 'user.settings'], added: ['settings'], removed: [] }, 'subscribed sockets are told')
    t.same(backfills.flatMap((f) => f.items.map((i: any) => i.id)), ['theme'], 'and sent what the widening covers')
    t.match(backfills[0], { collections: ['settings'] })
    await phone.push([{ op: 'put', mid: 5, collection: 'settings', id: 'lang', data: { value: 'en' } }])
    await pcSeen.waitFor(() => pcSeen.seqs().includes(4))
    t.same(pcSeen.frames.at(-1).items.map((i: any) => i.id), ['lang'], 'later changes to it arrive live')
    t.same(pcSeen.gaps, [], 'the cursor chain is intact')

    await scope(['user.settings'])
    // Three so far: the narrowing (told even before this socket subscribed), the widening, this one.
    await waitUntil(() => scopes.length === 3)
    t.match(scopes.at(-1), { added: [], removed: ['conversations', 'messages'] })
  })
})
