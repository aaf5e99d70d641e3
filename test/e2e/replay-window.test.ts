import t from 'tap'
import { eachHub } from '../helpers/hub.ts'

const put = (mid: number, id: string) => ({ op: 'put' as const, mid, collection: 'settings', id, data: { value: id } })

t.test('replay answers past the window are dropped; replays still apply nothing; records stay', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const alice = await h.newUser()
      const bob = await h.newUser()
      const phone = await alice.connect('phone')
      const pc = await alice.connect('pc')
      await phone.subscribe(0)
      await pc.subscribe(0)
      // phone: mids 1–7, answers for 1–4 fall out of a window of 3.
      await phone.push([put(1, 'a'), put(2, 'b'), put(3, 'c')])
      await phone.push([put(4, 'd'), put(5, 'e'), put(6, 'f')])
      await phone.push([put(7, 'g')])
      // pc: mids 1–2, inside the window; then revoked, so both go.
      await pc.push([put(1, 'p1'), put(2, 'p2')])
      // bob's device: mids 1–5, answers for 1–2 go; another user's rows are pruned by their own window only.
      await bob.rest.push([put(1, 'b1'), put(2, 'b2'), put(3, 'b3')])
      await bob.rest.push([put(4, 'b4'), put(5, 'b5')])
      await alice.rest.call('DELETE', '/v1/devices/pc') // revoked: throws unless the hub answers 2xx

      t.same(await h.hub.pruneReplayAnswers(), { devices: 3, answers: 4 + 2 + 2 }, 'phone loses 4, pc 2, bob’s device 2')
      t.same(await h.hub.pruneReplayAnswers(), { devices: 0, answers: 0 }, 'a second run finds nothing')

      const replay = await phone.push([put(3, 'c'), put(4, 'd'), put(5, 'e')])
      t.same(
        replay.results,
        [{ ok: true, dup: true }, { ok: true, dup: true }, { ok: true, seq: 5, id: 'e', dup: true }],
        'a replay past the window answers dup without its first answer; inside it, the first answer',
      )
      t.equal(replay.cursor, 9, 'nothing applied again')
      const bobReplay = await bob.rest.push([put(2, 'b2'), put(3, 'b3')])
      t.same(bobReplay.results, [{ ok: true, dup: true }, { ok: true, seq: 3, id: 'b3', dup: true }])
      const next = await phone.push([put(8, 'h')])
      t.same(next.results, [{ ok: true, seq: 10, id: 'h' }], 'the device carries on from its last mid')

      const all = await alice.rest.pull({ since: 0 })
      t.same(all.items.map((i: any) => i.id).sort(), ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'p1', 'p2'], 'every record is still there')
      const metrics = await (await fetch(`${h.url}/metrics`)).text()
      t.match(metrics, /synchub_pruned_total\{what="replay_answers"\} 8\b/, 'the metric counts what went')
      await phone.close()
    },
    { env: { SYNCHUB_REPLAY_WINDOW: '3', SYNCHUB_MAX_OPS_PER_PUSH: '3' } },
  )
})
