import t from 'tap'
import { collect, messagePut, waitUntil } from '../helpers/hub.ts'
import { startCluster } from '../helpers/cluster.ts'
import { ManualClock } from '../helpers/manual-clock.ts'

/**
 * The periodic position check, on the hub's clock: node 0 drops every publish (fault
 * injection), so node 1 hears of node 0's commits only when its own clock reaches the next
 * check, which reads the database and fills its feeds.
 */
t.test('a commit whose publish was lost reaches the other node at its next position check', async (t) => {
  const clock = new ManualClock(Date.now())
  const cluster = await startCluster(t, 2, { SYNCHUB_POSITION_CHECK_MS: '30000' }, {
    nodeEnv: (i): Record<string, string> => (i === 0 ? { SYNCHUB_FAULT_DROP_PUBLISH: '1' } : {}),
    clock: (i) => (i === 1 ? clock : undefined),
  })
  if (!cluster) return
  const writer = cluster.nodes[0]!
  const reader = cluster.nodes[1]!
  const alice = await writer.newUser()
  const phone = await cluster.connect(1, alice.token, 'phone')
  const seen = collect(phone)
  await phone.subscribe(0)
  const fills = async () => (await reader.hub.metrics.gapFills.get()).values.find((v) => v.labels.cause === 'check')?.value ?? 0

  const pushed = await alice.rest.push([messagePut(1, 'm1')])
  t.equal(pushed.cursor, 1, 'committed on node 0, its publish dropped')
  await clock.advance(29_999)
  t.same([seen.seqs(), await fills()], [[], 0], 'before the check is due, node 1 has read nothing for it')
  await clock.advance(1)
  await seen.waitFor(() => seen.seqs().length === 1)
  t.same(seen.seqs(), [1], 'the check found the feed behind and filled it from the database')
  t.equal(await fills(), 1, 'counted as a fill by the position check')
  t.same(seen.gaps, [], 'in order, nothing twice')
})
