import { DENYLISTS, eachAdapter } from './adapters.ts'

/**
 * The token denylist port's contract, run against every adapter (adapters.ts), each as two
 * nodes sharing one list (an in-memory adapter is one node seen twice).
 */
const LIFE_MS = 200

eachAdapter(DENYLISTS, async (t, { nodes: [a, b], clock, elapse }) => {
  t.equal(await b.has('never-added'), false, 'an id never added is not refused')
  await a.add('jti-1', clock.now() + LIFE_MS)
  t.equal(await a.has('jti-1'), true, 'an added id is refused')
  t.equal(await b.has('jti-1'), true, 'by every node')
  await a.add('jti-past', clock.now() - 1)
  t.equal(await b.has('jti-past'), false, 'an id whose token already expired is not kept')

  await elapse(LIFE_MS + 50)
  t.equal(await b.has('jti-1'), false, 'once its token would have expired, the id is forgotten')
  await a.add('jti-2', clock.now() + 60_000)
  t.equal(await b.has('jti-2'), true, 'and the list keeps working')
})
