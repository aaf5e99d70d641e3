/**
 * The subscription on its own (src/sync/SUBSCRIPTION.md): an in-memory change source whose reads
 * answer when the test says, and a recording sink whose reader the test slows down. No socket,
 * no database, nothing timed: each test orders the store's answers, the live batches and the
 * reader's pace itself. The first four tests are the spec's invariants, one each.
 */
import t, { type Test } from 'tap'
import { settle, subscriptionHarness, USER } from './subscription-harness.ts'

const ALL_KEYS = ['chat.history', 'characters.cards', 'characters.per_settings', 'providers.config', 'providers.keys', 'user.text_inputs', 'user.settings']

/** Every `changes` frame starts where the previous one ended, and no seq is sent twice or backwards. */
function checkOnceInOrder(t: Test, h: ReturnType<typeof subscriptionHarness>, since = 0): number[] {
  let cursor = since
  const seqs: number[] = []
  for (const s of h.sink.sent) {
    if (s.via === 'retry' || s.frame.t !== 'changes') continue
    t.equal(s.frame.from, cursor, `frame ${s.frame.from}→${s.frame.to} starts at the cursor`)
    for (const item of s.frame.items) {
      t.ok(item.seq > (seqs.at(-1) ?? since) && item.seq <= s.frame.to && item.seq > s.frame.from, `seq ${item.seq} in order and inside its frame`)
      seqs.push(item.seq)
    }
    cursor = s.frame.to
  }
  return seqs
}

t.test('invariant 1: each seq is sent once and in order', async (t) => {
  const h = subscriptionHarness()
  h.commit(['conversations', 'c1'])
  h.commit(['conversations', 'c2'])
  h.commit(['conversations', 'c3'])
  void h.subscribe({ since: 0 })
  await settle()
  h.source.pending[0]!.release() // the scope
  await settle()
  h.source.pending[0]!.release() // the live stream is in effect
  await settle()
  // While the backlog is read: live batches, one of them twice.
  const b4 = h.commitLive(['conversations', 'c4'])
  h.commitLive(['conversations', 'c5'])
  h.source.deliver(b4)
  await h.releaseAll()
  const b6 = h.commitLive(['conversations', 'c6'])
  h.source.deliver(b6) // again, live
  const b78 = h.commit(['conversations', 'c7'], ['conversations', 'c8'])
  h.source.deliver({ ...b78, from: 5, changes: [...b6.changes, ...b78.changes] }) // overlaps what was sent
  h.commit(['conversations', 'c9']) // its publish is lost...
  h.commitLive(['conversations', 'c10']) // ...so this one shows a gap, filled from the store
  await h.releaseAll()
  h.commitLive(['conversations', 'c11'])
  t.same(h.log(), [
    'paced changes 0→5 [1,2,3,4,5]',
    'synced 1 @5',
    'live changes 5→6 [6]',
    'live changes 6→8 [7,8]',
    'paced changes 8→10 [9,10]',
    'live changes 10→11 [11]',
  ])
  t.same(checkOnceInOrder(t, h), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], 'every seq once, in order')
})

t.test('invariant 2: the backlog comes before synced, synced before live changes', async (t) => {
  const h = subscriptionHarness()
  h.commit(['conversations', 'c1'])
  h.commit(['conversations', 'c2'])
  h.sink.stall() // the reader is slow: the backlog is still going out when the next commit is live
  void h.subscribe({ since: 0, ref: 4 })
  await h.releaseAll()
  t.equal(h.sink.waitingSends, 1, 'the backlog waits for the reader')
  h.commitLive(['conversations', 'c3'])
  h.sink.drain()
  await h.releaseAll()
  t.same(h.log(), ['paced changes 0→2 [1,2]', 'synced 4 @2', 'live changes 2→3 [3]'], 'the live change that came during the backlog follows synced')
  h.commitLive(['conversations', 'c4'])
  t.equal(h.log().at(-1), 'live changes 3→4 [4]')
})

t.test("invariant 3: a widening's backfill is done before live changes resume", async (t) => {
  const h = subscriptionHarness()
  await h.live([['settings', 's1'], ['conversations', 'c1'], ['characters', 'ch1']], ['chat.history'])
  t.same(h.log(), ['paced changes 0→3 [2]', 'synced 1 @3'])
  h.sink.stall()
  h.changeScope(['chat.history', 'user.settings'])
  await h.releaseAll()
  h.commitLive(['conversations', 'c2']) // live while the backfill is still going out
  h.changeScope(['chat.history', 'user.settings', 'characters.cards']) // a second widening meanwhile
  h.sink.drain()
  await h.releaseAll()
  t.same(h.log().slice(2), [
    'scope +settings -',
    'scope +characters -',
    'backfill settings [1]',
    'backfill characters [3]',
    'live changes 3→4 [4]',
  ])
  const log = h.log()
  const lastBackfill = log.length - 1 - [...log].reverse().findIndex((l) => l.startsWith('backfill') && !l.endsWith('more'))
  t.notOk(log.slice(log.indexOf('scope +settings -'), lastBackfill).some((l) => l.startsWith('live')), 'no live change between the widening and the end of its backfill')
})

t.test('invariant 4: a stale generation sends nothing', async (t) => {
  t.test('a read of a replaced sub is dropped when it comes', async (t) => {
    const h = subscriptionHarness()
    h.commit(['conversations', 'c1'])
    h.commit(['conversations', 'c2'])
    void h.subscribe({ since: 0, ref: 1 })
    await settle()
    h.source.pending[0]!.release()
    await settle()
    h.source.pending[0]!.release()
    await settle()
    t.match(h.source.pending, [{ what: 'page of u after 0' }], "the first sub's backlog read is out")
    void h.subscribe({ since: 2, ref: 2 })
    await settle()
    h.source.pending[0]!.release() // the old backlog read answers first
    await h.releaseAll()
    t.same(h.log(), ['synced 2 @2'], 'only the second sub speaks')
  })

  t.test('a backlog frame waiting for the reader is not sent once a new sub replaced it', async (t) => {
    const h = subscriptionHarness()
    h.commit(['conversations', 'c1'])
    h.commit(['conversations', 'c2'])
    h.sink.stall()
    void h.subscribe({ since: 0, ref: 1 })
    await h.releaseAll()
    t.equal(h.sink.waitingSends, 1)
    void h.subscribe({ since: 0, ref: 2 })
    h.sink.drain()
    await h.releaseAll()
    t.same(h.log(), ['paced changes 0→2 [1,2]', 'synced 2 @2'], 'one backlog: the second sub’s')
  })

  t.test('after a reset nothing of the ended stream goes out', async (t) => {
    const h = subscriptionHarness()
    await h.live([['settings', 's1']], ['chat.history'])
    h.sink.stall()
    h.changeScope(ALL_KEYS)
    await h.releaseAll() // the backfill frame waits for the reader
    h.commitLive(['conversations', 'c1'])
    h.sub.reset('epoch_changed', 'e2')
    h.sink.drain()
    await h.releaseAll()
    t.same(h.log().slice(-2), ['scope +characters,character_settings,providers,provider_keys,text_inputs,settings -', 'reset epoch_changed'])
    t.equal(h.source.followers(USER), 0, 'the live stream is no longer followed')
  })

  t.test('after the socket ended nothing is sent at all', async (t) => {
    const h = subscriptionHarness()
    h.commit(['conversations', 'c1'])
    h.sink.stall()
    void h.subscribe()
    await h.releaseAll()
    h.sub.end()
    h.sink.drain()
    h.commitLive(['conversations', 'c2'])
    h.changeScope(['chat.history'])
    h.sub.reset('epoch_changed')
    void h.subscribe()
    await h.releaseAll()
    t.same(h.log(), [])
    t.equal(h.source.pending.length, 0, 'and nothing is read')
  })
})

t.test('idle: batches are not followed, a scope change is told but not backfilled, a reset is told', async (t) => {
  const h = subscriptionHarness()
  t.equal(h.sub.mode, 'idle')
  h.commitLive(['conversations', 'c1'])
  h.changeScope(['chat.history'])
  h.changeScope(ALL_KEYS)
  h.sub.reset('epoch_changed', 'e2')
  await h.releaseAll()
  t.same(h.log(), [
    'scope + -characters,character_settings,providers,provider_keys,text_inputs,settings',
    'scope +characters,character_settings,providers,provider_keys,text_inputs,settings -',
    'reset epoch_changed',
  ])
})

t.test('subscribing: a scope change that lands during the scope read wins, and its widening is backfilled after synced', async (t) => {
  const h = subscriptionHarness()
  await h.live([['settings', 's1'], ['conversations', 'c1']], ['chat.history'])
  void h.subscribe({ ref: 2, since: 2 })
  await settle()
  t.equal(h.sub.mode, 'subscribing')
  h.source.pending[0]!.release() // reads the old scope...
  h.changeScope(['chat.history', 'user.settings']) // ...and a new one is stored and announced before that read is back
  await h.releaseAll()
  h.commitLive(['settings', 's2'])
  t.same(h.log().slice(2), ['scope +settings -', 'synced 2 @2', 'backfill settings [1]', 'live changes 2→3 [3]'])
})

t.test('subscribing and catching up: a failed read answers the sub with the error and leaves the stream idle', async (t) => {
  const h = subscriptionHarness()
  void h.subscribe()
  await settle()
  h.source.pending[0]!.fail()
  await settle()
  t.equal(h.failures.length, 1, 'a failed scope read')
  void h.subscribe()
  await settle()
  h.source.pending[0]!.release()
  await settle()
  h.source.pending[0]!.release()
  await settle()
  h.source.pending[0]!.fail()
  await settle()
  t.equal(h.failures.length, 2, 'a failed backlog read')
  t.equal(h.sub.mode, 'idle')
  t.equal(h.source.followers(USER), 0, 'the live stream is no longer followed')
  t.same(h.log(), [])
})

t.test('catching up: a cursor the store cannot serve ends the stream with reset, answering the sub', async (t) => {
  const h = subscriptionHarness()
  h.commit(['conversations', 'c1'])
  void h.subscribe({ ref: 7, since: 1, epoch: 'not-this-one' })
  await h.releaseAll()
  void h.subscribe({ ref: 8, since: 5 })
  await h.releaseAll()
  t.same(h.log(), ['reset epoch_changed ref 7', 'reset cursor_ahead ref 8'])
  t.equal(h.sub.mode, 'idle')
  t.equal(h.source.followers(USER), 0)
})

t.test("catching up: a failed gap fill closes the socket for a retry; a replaced stream's failure does not", async (t) => {
  const h = subscriptionHarness()
  void h.subscribe()
  await h.releaseAll()
  h.commit(['conversations', 'c1'])
  h.commitLive(['conversations', 'c2']) // a gap
  await settle()
  h.source.pending[0]!.fail()
  await settle()
  t.same(h.log(), ['synced 1 @0', 'retry'])

  const g = subscriptionHarness()
  void g.subscribe()
  await g.releaseAll()
  g.commit(['conversations', 'c1'])
  g.commitLive(['conversations', 'c2'])
  await settle()
  void g.subscribe({ ref: 2 })
  await settle()
  g.source.pending[0]!.fail() // the replaced stream's gap fill
  await g.releaseAll()
  t.same(g.log(), ['synced 1 @0', 'paced changes 0→2 [1,2]', 'synced 2 @2'])
})

t.test('backfilling: a narrowing drops what it removed from the queue; a sub cuts a backfill short and it is sent again, whole', async (t) => {
  t.test('narrowed before its turn: not backfilled', async (t) => {
    const h = subscriptionHarness()
    await h.live([['settings', 's1'], ['characters', 'ch1']], ['chat.history'])
    h.changeScope(['chat.history', 'user.settings'])
    await settle()
    t.equal(h.sub.mode, 'backfilling')
    h.changeScope(['chat.history', 'user.settings', 'characters.cards'])
    h.changeScope(['chat.history', 'user.settings'])
    await h.releaseAll()
    t.same(h.log().slice(2), ['scope +settings -', 'scope +characters -', 'scope + -characters', 'backfill settings [1]'])
    t.equal(h.sub.mode, 'live')
  })

  t.test('cut short by a sub: sent again in full after its synced', async (t) => {
    const h = subscriptionHarness({ pageSize: 1 })
    await h.live([['settings', 's1'], ['settings', 's2'], ['conversations', 'c1']], ['chat.history'])
    h.changeScope(['chat.history', 'user.settings'])
    await settle()
    h.source.pending[0]!.release() // the first backfill page
    await settle()
    t.match(h.source.pending, [{ what: 'backfill of u (settings) after 1' }])
    void h.subscribe({ ref: 2, since: 3 })
    await h.releaseAll()
    t.same(h.log().slice(2), [
      'scope +settings -',
      'backfill settings [1] more',
      'synced 2 @3',
      'backfill settings [1] more',
      'backfill settings [2] more',
      'backfill settings []',
    ])
  })
})

t.test('live: a batch behind the cursor is dropped, an overlapping one trimmed, one ahead starts a gap fill', async (t) => {
  const h = subscriptionHarness()
  void h.subscribe()
  await h.releaseAll()
  const b1 = h.commitLive(['conversations', 'c1'])
  h.source.deliver(b1)
  const b2 = h.commit(['conversations', 'c2'])
  h.source.deliver({ ...b2, from: 0, changes: [...b1.changes, ...b2.changes] })
  h.commit(['conversations', 'c3'])
  h.commitLive(['conversations', 'c4'])
  t.equal(h.sub.mode, 'catching_up', 'a gap is filled from the store')
  h.commitLive(['conversations', 'c5']) // held behind the fill
  await h.releaseAll()
  t.same(h.log(), ['synced 1 @0', 'live changes 0→1 [1]', 'live changes 1→2 [2]', 'paced changes 2→5 [3,4,5]'])
  t.equal(h.sub.mode, 'live')
  t.equal(h.sink.liveBatches[0], b1, 'a whole batch reaches the sink as the object every socket shares')
})

t.test('ended: nothing more is followed or read', async (t) => {
  const h = subscriptionHarness()
  void h.subscribe()
  await h.releaseAll()
  t.equal(h.source.followers(USER), 1)
  h.sub.end()
  t.equal(h.sub.mode, 'ended')
  t.equal(h.source.followers(USER), 0)
})
