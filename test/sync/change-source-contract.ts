import type { Test } from 'tap'
import type { ChangeSource } from '../../src/sync/change-source.ts'
import type { LiveBatch } from '../../src/sync/feed.ts'
import { waitUntil } from '../helpers/wait.ts'

/** What the contract needs to drive an adapter: users, commits and scope changes its own way. */
export interface ChangeSourceDriver {
  source: ChangeSource
  /** A user with an empty stream and the default (full) scope. */
  newUser(): Promise<string>
  /** Commits new versions of these records as one batch; followers hear of it right after. */
  commit(user: string, puts: Array<{ collection: string; id: string }>): Promise<void>
  setScope(user: string, scope: string[] | null): Promise<void>
}

const bounds = { limit: 1000, maxBytes: 1 << 20 }
const put = (collection: string, id: string) => ({ collection, id })
const seqsOf = (items: Array<{ seq: number }>) => items.map((i) => i.seq)
const idsOf = (items: Array<{ collection: string; id: string; seq: number }>) => items.map((i) => `${i.collection}/${i.id}@${i.seq}`)

/**
 * The ChangeSource port's behaviour, run against every adapter: the engine with the node's
 * feeds (over PGlite and Postgres) and the in-memory fake the subscription's tests use.
 */
export function changeSourceContract(t: Test, open: () => Promise<ChangeSourceDriver>): void {
  t.test('scope: as stored, null for the default, unknown users refused', async (t) => {
    const d = await open()
    const user = await d.newUser()
    t.equal(await d.source.scopeOf(user), null, 'a new user syncs every scope key')
    await d.setScope(user, ['chat.history'])
    t.same(await d.source.scopeOf(user), ['chat.history'])
    await t.rejects(d.source.scopeOf('nobody-here'), { code: 'unauthorized' })
  })

  t.test('filters: scope narrowed by the request; null shows all', async (t) => {
    const { source } = await open()
    const all = source.filterFor(null)
    t.equal(all.names, null)
    t.ok(all.covers('settings') && all.covers('messages'))
    t.same(source.filterFor(['chat.history']).names, ['conversations', 'messages'])
    t.same(source.filterFor(['chat.history'], ['messages', 'settings']).names, ['messages'], 'a request outside the scope is dropped')
    t.same(source.filterFor(null, ['settings']).names, ['settings'])
    t.same(source.filterFor(['chat.history']).changesTo(source.filterFor(['chat.history', 'user.settings'])), { added: ['settings'], removed: [] })
  })

  t.test('pages: the compacted stream after a cursor, through a filter, in bounded pages', async (t) => {
    const d = await open()
    const user = await d.newUser()
    await d.commit(user, [put('conversations', 'c1')])
    await d.commit(user, [put('settings', 's1'), put('conversations', 'c2')])
    await d.commit(user, [put('conversations', 'c1')]) // c1 again: the stream keeps its latest version only
    const everything = await d.source.readPage(user, 0, d.source.filterFor(null), bounds)
    if ('reset' in everything) return void t.fail('no reset expected')
    t.same(idsOf(everything.items), ['settings/s1@2', 'conversations/c2@3', 'conversations/c1@4'])
    t.same([everything.cursor, everything.more, typeof everything.epoch], [4, false, 'string'])
    const chat = await d.source.readPage(user, 0, d.source.filterFor(['chat.history']), bounds)
    t.match(chat, { cursor: 4, more: false }, 'a filter leaves items out, not the cursor')
    t.same(seqsOf((chat as { items: Array<{ seq: number }> }).items), [3, 4])
    const first = await d.source.readPage(user, 1, d.source.filterFor(null), { ...bounds, limit: 2 })
    t.match(first, { cursor: 3, more: true })
    t.same(seqsOf((first as { items: Array<{ seq: number }> }).items), [2, 3])
    const second = await d.source.readPage(user, 3, d.source.filterFor(null), { ...bounds, limit: 2 })
    t.match(second, { cursor: 4, more: false })
    t.same(seqsOf((second as { items: Array<{ seq: number }> }).items), [4])
    const atHead = await d.source.readPage(user, 4, d.source.filterFor(null), bounds)
    t.match(atHead, { items: [], cursor: 4, more: false }, 'at the head: an empty last page')
  })

  t.test('pages: a cursor the stream cannot serve is a reset', async (t) => {
    const d = await open()
    const user = await d.newUser()
    await d.commit(user, [put('conversations', 'c1')])
    const ok = await d.source.readPage(user, 0, d.source.filterFor(null), bounds)
    const epoch = (ok as { epoch: string }).epoch
    t.match(await d.source.readPage(user, 1, d.source.filterFor(null), { ...bounds, epoch }), { cursor: 1 }, 'the right epoch is served')
    t.same(await d.source.readPage(user, 1, d.source.filterFor(null), { ...bounds, epoch: 'another' }), { reset: 'epoch_changed', epoch })
    t.same(await d.source.readPage(user, 5, d.source.filterFor(null), bounds), { reset: 'cursor_ahead', epoch })
  })

  t.test('backfill: the latest versions of some collections up to a bound, in pages', async (t) => {
    const d = await open()
    const user = await d.newUser()
    await d.commit(user, [put('settings', 's1'), put('conversations', 'c1'), put('settings', 's2')])
    await d.commit(user, [put('settings', 's3')])
    await d.commit(user, [put('settings', 's1')]) // s1 moves past the bound below
    const page = await d.source.readBackfill(user, ['settings'], 0, 4, bounds)
    t.same(idsOf(page.items), ['settings/s2@3', 'settings/s3@4'])
    t.equal(page.more, false)
    const one = await d.source.readBackfill(user, ['settings'], 0, 4, { ...bounds, limit: 1 })
    t.same([idsOf(one.items), one.more, one.next], [['settings/s2@3'], true, 3])
    const two = await d.source.readBackfill(user, ['settings'], one.next, 4, { ...bounds, limit: 1 })
    t.same([idsOf(two.items), two.more], [['settings/s3@4'], true], 'a full page below the bound may be followed by more')
    const three = await d.source.readBackfill(user, ['settings'], two.next, 4, { ...bounds, limit: 1 })
    t.same([three.items, three.more], [[], false], 'nothing left up to the bound')
    t.same((await d.source.readBackfill(user, ['characters'], 0, 5, bounds)).items, [], 'a collection with no records: one empty page')
  })

  t.test('live: followers get each later commit once, in order, every follower the same batch', async (t) => {
    const d = await open()
    const user = await d.newUser()
    await d.commit(user, [put('conversations', 'before')])
    const a: LiveBatch[] = []
    const b: LiveBatch[] = []
    const stopA = d.source.follow(user, { onBatch: (x) => void a.push(x) })
    d.source.follow(user, { onBatch: (x) => void b.push(x) })
    await d.source.ready()
    await d.commit(user, [put('conversations', 'c1'), put('settings', 's1')])
    await d.commit(user, [put('conversations', 'c2')])
    await waitUntil(() => a.length === 2 && b.length === 2)
    t.same(a.map((x) => [x.from, x.to, idsOf(x.changes)]), [[1, 3, ['conversations/c1@2', 'settings/s1@3']], [3, 4, ['conversations/c2@4']]])
    t.ok(a[0] === b[0] && a[1] === b[1], 'one batch object for all followers (their frames are encoded once)')
    stopA()
    await d.commit(user, [put('conversations', 'c3')])
    await waitUntil(() => b.length === 3)
    t.equal(a.length, 2, 'a follower that stopped hears nothing more')
    t.match(b[2], { from: 4, to: 5 })
  })
}
