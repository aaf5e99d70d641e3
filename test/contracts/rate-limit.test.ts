import { RATE_LIMITERS, eachAdapter } from './adapters.ts'

/**
 * The rate limiter port's contract, run against every adapter (adapters.ts), each as two nodes
 * counting into one window (an in-memory adapter is one node seen twice).
 */
const WINDOW_MS = 200

eachAdapter(RATE_LIMITERS, async (t, { nodes: [a, b], elapse }) => {
  for (let i = 0; i < 3; i++) await (i % 2 === 0 ? a : b).hit('login:ip:1', 3, WINDOW_MS)
  t.pass('hits up to the limit pass, whichever node counts them')
  const refused = await a.hit('login:ip:1', 3, WINDOW_MS).then(() => undefined, (err: unknown) => err)
  t.match(refused, { name: 'HubError', code: 'rate_limited' }, 'the next is refused')
  const retry = (refused as { details?: { retryAfterSec?: number } }).details?.retryAfterSec
  t.ok(retry !== undefined && retry >= 1 && retry <= Math.ceil(WINDOW_MS / 1000), `it says when to retry, within the window (${retry} s)`)
  await t.rejects(b.hit('login:ip:1', 3, WINDOW_MS), { code: 'rate_limited' }, 'on the other node too')
  await t.resolves(b.hit('login:ip:2', 3, WINDOW_MS), 'other keys count apart')

  await elapse(WINDOW_MS + 50)
  await t.resolves(a.hit('login:ip:1', 3, WINDOW_MS), 'the next window starts from zero')
  await a.hit('login:ip:1', 3, WINDOW_MS)
  await a.hit('login:ip:1', 3, WINDOW_MS)
  await t.rejects(a.hit('login:ip:1', 3, WINDOW_MS), { code: 'rate_limited' }, 'and counts again')
})
