/** Each row of CLIENT.md's "After a socket ends" table, as close-policy.ts decides it. */
import t from 'tap'
import { afterSocketEnd, type SocketEnd } from '../../src/client/close-policy.ts'

const base: SocketEnd = { code: 1006, reason: '', authenticated: true, liveMs: 60_000, freshToken: false }
const decide = (end: Partial<SocketEnd>) => afterSocketEnd({ ...base, ...end }, { stableMs: 10_000, random: () => 0.5 })

t.test('4403, bye revoked, error forbidden: stop, no reconnect', async (t) => {
  t.match(decide({ code: 4403 }), { action: 'stop', code: 'forbidden' })
  t.match(decide({ code: 1000, bye: { t: 'bye', reason: 'revoked' } }), { action: 'stop', code: 'forbidden' })
  t.match(decide({ code: 1006, error: { t: 'error', code: 'forbidden', message: 'disabled' }, authenticated: false }), { action: 'stop', message: /disabled/ })
})

t.test('4401 and token_expired: a fresh token at once, then backoff with fresh tokens; never a socket failure', async (t) => {
  t.same(decide({ code: 4401 }), { action: 'reconnect', delayMs: 0, freshToken: true, failure: false, rotate: false })
  t.same(decide({ code: 4401, bye: { t: 'bye', reason: 'token_expired' } }), { action: 'reconnect', delayMs: 0, freshToken: true, failure: false, rotate: false })
  t.same(decide({ code: 4401, freshToken: true }), { action: 'reconnect', freshToken: true, failure: false, rotate: false }, 'again after a fresh token: the backoff decides')
})

t.test('1012 draining: the next URL after retry_ms, or a small random delay', async (t) => {
  t.same(decide({ code: 1012, bye: { t: 'bye', reason: 'draining', retry_ms: 1500 } }), { action: 'reconnect', delayMs: 1500, freshToken: false, failure: false, rotate: true })
  t.same(decide({ code: 1012 }), { action: 'reconnect', delayMs: 250, freshToken: false, failure: false, rotate: true }, 'half of 500 ms with random 0.5')
})

t.test('1013 and 4429: back off at least a second, not a failure', async (t) => {
  t.match(decide({ code: 1013, reason: 'slow_consumer' }), { action: 'reconnect', floorMs: 1000, failure: false, rotate: true })
  t.match(decide({ code: 4429 }), { action: 'reconnect', floorMs: 1000, failure: false, rotate: false })
})

t.test('anything else: a failure when the socket never got live or died young', async (t) => {
  t.match(decide({ code: 1006, liveMs: undefined, authenticated: false, refusedStatus: 403 }), { action: 'reconnect', failure: true, rotate: true }, 'a refused upgrade')
  t.match(decide({ code: 4000, reason: 'no auth_ok in time', liveMs: undefined }), { failure: true }, 'a handshake timeout')
  t.match(decide({ code: 1006, liveMs: 2000 }), { failure: true }, 'live for 2 s: keeps dying')
  t.match(decide({ code: 1006, liveMs: 60_000 }), { failure: false, rotate: false }, 'live for a minute: a drop, not a broken path')
  t.match(decide({ code: 1011 }), { action: 'reconnect' })
})
