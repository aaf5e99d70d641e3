import t from 'tap'
import { collect, eachHub, waitUntil } from '../helpers/hub.ts'

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
      t.same(await h.hub.purge(Date.now() + 61_000), { users: 1, records: 1 }, 'the deleted record is purged once its time is over')

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
    { env: { SYNCHUB_TRASH_RETENTION_MS: '60000' } },
  )
})
