import t from 'tap'
import { collect, eachHub, waitUntil } from '../helpers/hub.ts'

/** The hub runs on a manual clock: the recycle bin's time passes, and the periodic purge runs, when the test moves it. */
t.test('expired records leave for good; a device whose cursor predates them is told to reset', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const alice = await h.newUser()
      const stale = await alice.connect('stale')
      await stale.subscribe(0)
      const put = (mid: number, id: string) => ({ op: 'put' as const, mid, collection: 'settings', id, data: { value: id } })
      await alice.rest.push([put(1, 'a'), put(2, 'b')])
      await waitUntil(() => stale.cursor === 2)
      await stale.close()
      const deleted = await alice.rest.push([{ op: 'del', mid: 3, collection: 'settings', id: 'a' }])
      t.equal(deleted.cursor, 3)
      const kept = await alice.rest.push([put(4, 'c')])
      t.equal(kept.cursor, 4)
      t.same((await h.hub.purge()).records, 0, 'nothing expires before its time')
      const purged = async () => (await h.hub.metrics.pruned.get()).values.find((v) => v.labels.what === 'records')?.value ?? 0
      t.equal(await purged(), 0)
      await h.clock.advance(59_999)
      t.equal(await purged(), 0, 'the periodic purge has not run yet')
      await h.clock.advance(1)
      await waitUntil(async () => (await purged()) === 1)
      t.pass('the periodic purge removed the deleted record once its time in the bin was over')
      t.same(await h.hub.purge(), { users: 0, records: 0 }, 'and left nothing behind')

      const fresh = await alice.rest.pull({ since: 0 })
      t.same(fresh.items.map((i: any) => i.id), ['b', 'c'], 'a full pull no longer holds it')
      t.match(await alice.rest.pull({ since: 2 }), { reset: 'cursor_purged' }, 'a cursor that never saw the delete must reset (REST)')
      t.same((await alice.rest.pull({ since: 3 })).items.map((i: any) => i.id), ['c'], 'a cursor past the delete is still served')
      const back = await alice.connect('stale')
      const seen = collect(back)
      const resets: any[] = []
      back.on('reset', (f) => resets.push(f))
      await t.rejects(back.subscribe(2), /reset: cursor_purged/, 'the socket is told to reset')
      t.match(resets, [{ t: 'reset', reason: 'cursor_purged' }])
      t.same(seen.frames, [], 'and is sent no stream')
      t.equal(await back.subscribe(0), 4, 'from 0 it syncs again')
      t.same(seen.seqs(), [2, 4])
      t.same((await alice.rest.call('GET', '/v1/trash')).items, [], 'the bin is empty')
    },
    { env: { SYNCHUB_TRASH_RETENTION_MS: '60000', SYNCHUB_PURGE_INTERVAL_MS: '60000' }, clock: 'manual' },
  )
})
