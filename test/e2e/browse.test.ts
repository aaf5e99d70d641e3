import t from 'tap'
import { eachHub } from '../helpers/hub.ts'

t.test('a long conversation pages back newest first, each page oldest first, without gaps', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const ops: any[] = [{ op: 'put', mid: 1, collection: 'conversations', id: 'c1', data: { title: 'long' } }]
    for (let i = 1; i <= 25; i++) ops.push({ op: 'put', mid: i + 1, collection: 'messages', id: `m${i}`, data: { conversation_id: 'c1', role: 'user', content: `#${i}` } })
    ops.push({ op: 'put', mid: 27, collection: 'messages', id: 'other', data: { conversation_id: 'c2', role: 'user', content: 'elsewhere' } })
    ops.push({ op: 'del', mid: 28, collection: 'messages', id: 'm20' })
    // A status update bumps m3's seq: its place in the conversation must not move.
    ops.push({ op: 'put', mid: 29, collection: 'messages', id: 'm3', data: { conversation_id: 'c1', role: 'user', content: '#3', status: 'delivered' } })
    await alice.rest.push(ops)

    const page = (before?: string) => alice.rest.call('GET', `/v1/conversations/c1/messages?limit=10${before ? `&before=${before}` : ''}`)
    const first = await page()
    t.same(first.items.map((i: any) => i.id), ['m15', 'm16', 'm17', 'm18', 'm19', 'm21', 'm22', 'm23', 'm24', 'm25'], 'the newest ten live messages, oldest first')
    t.type(first.before, 'string')
    const second = await page(first.before)
    t.same(second.items.map((i: any) => i.id), ['m5', 'm6', 'm7', 'm8', 'm9', 'm10', 'm11', 'm12', 'm13', 'm14'])
    const third = await page(second.before)
    t.same(third.items.map((i: any) => i.id), ['m1', 'm2', 'm3', 'm4'], 'm3 keeps its place after its status changed')
    t.equal(third.before, undefined, 'no cursor at the start of the conversation')
    await t.rejects(page('bogus'), { code: 'invalid' }, 'a cursor the hub did not give is refused')
    const empty = await alice.rest.call('GET', '/v1/conversations/none/messages')
    t.same(empty, { items: [] })
  })
})

t.test('the recycle bin lists deleted records with their purge time', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const bob = await h.newUser()
    await alice.rest.push([
      { op: 'put', mid: 1, collection: 'settings', id: 'theme', data: { value: 'dark' } },
      { op: 'put', mid: 2, collection: 'settings', id: 'lang', data: { value: 'en' } },
      { op: 'put', mid: 3, collection: 'characters', id: 'ch1', data: { name: 'Ada' } },
      { op: 'del', mid: 4, collection: 'settings', id: 'theme' },
      { op: 'del', mid: 5, collection: 'characters', id: 'ch1' },
    ])
    await bob.rest.push([{ op: 'put', mid: 1, collection: 'settings', id: 'x', data: { value: 1 } }, { op: 'del', mid: 2, collection: 'settings', id: 'x' }])
    const all = await alice.rest.call('GET', '/v1/trash')
    t.same(all.items.map((i: any) => i.id).sort(), ['ch1', 'theme'], 'only deleted records, only alice’s')
    for (const item of all.items) t.ok(item.purge_at - item.deleted_at === 7 * 24 * 3600 * 1000, `${item.id} purges 7 days after deletion`)
    const settings = await alice.rest.call('GET', '/v1/trash?collections=settings')
    t.same(settings.items.map((i: any) => i.id), ['theme'], 'filtered by collection')
    await alice.rest.push([{ op: 'restore', mid: 6, collection: 'settings', id: 'theme' }])
    t.same((await alice.rest.call('GET', '/v1/trash')).items.map((i: any) => i.id), ['ch1'], 'restored records leave the bin')
  })
})
