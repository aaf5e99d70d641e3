/**
 * The session's timing on a real hub, with its clock moved by hand: the auth deadline, the
 * token's expiry (and a refresh moving it) and the bad-frame window. Nothing here waits for time
 * to pass or asserts how long anything took: the clock jumps, and the socket is checked at once.
 */
import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { decodeFrame, encodeMsgpack } from '../../protocol/codec.ts'
import { createAccessTokenSigner } from '../../src/auth/tokens.ts'
import type { SyncClient } from '../../src/client/socket-client.ts'
import { HUB_VARIANTS, startTestHub, TEST_SECRET, waitUntil, type TestHub } from '../helpers/hub.ts'
import { postgresAvailable } from '../helpers/services.ts'
import { ManualClock } from '../helpers/manual-clock.ts'

const AUTH_TIMEOUT_MS = 10_000
const BAD_FRAME_LIMIT = 5
const BAD_FRAME_WINDOW_MS = 10_000

/** A socket that has not authenticated, recording decoded frames and its close code. */
async function rawSocket(h: TestHub) {
  const ws = new WebSocket(h.wsUrl)
  const frames: any[] = []
  let code: number | undefined
  ws.on('message', (data: Buffer, isBinary) => frames.push(decodeFrame(isBinary ? data : data.toString(), isBinary)))
  ws.on('close', (c) => (code = c))
  await new Promise((r) => ws.once('open', r))
  return { ws, frames, code: () => code }
}

/** True when the socket still answers. */
const answers = (c: SyncClient) => c.ping().then(
  (f) => f.t === 'pong',
  () => false,
)

function eachVariant(t: Test, fn: (t: Test, h: TestHub, clock: ManualClock) => Promise<void>): void {
  for (const variant of HUB_VARIANTS) {
    t.test(variant.name, async (t) => {
      if (variant.store === 'postgres' && !(await postgresAvailable())) return void t.skip('Postgres is not running', () => {})
      // Manual time starts at the real now: the tokens the hub signs on it are valid for jose too.
      const clock = new ManualClock(Date.now())
      const h = await startTestHub(variant, { SYNCHUB_AUTH_TIMEOUT_MS: String(AUTH_TIMEOUT_MS), SYNCHUB_BAD_FRAME_LIMIT: String(BAD_FRAME_LIMIT) }, { clock })
      t.teardown(() => h.stop())
      await fn(t, h, clock)
    })
  }
}

t.test('a socket that does not authenticate by the deadline is told token_expired, and not a moment before', async (t) => {
  eachVariant(t, async (t, h, clock) => {
    const alice = await h.newUser()
    const late = await rawSocket(h)
    const never = await rawSocket(h)
    await clock.advance(AUTH_TIMEOUT_MS - 1)
    late.ws.send(encodeMsgpack({ t: 'auth', ref: 1, token: alice.token, device: { id: 'late' } }))
    await waitUntil(() => late.frames.length > 0)
    t.match(late.frames[0], { t: 'auth_ok', ref: 1 }, 'authenticating just before the deadline still works')
    t.same(never.frames, [], 'the socket that stays silent is still open')
    await clock.advance(1)
    await waitUntil(() => never.code() !== undefined)
    t.match(never.frames, [{ t: 'bye', reason: 'token_expired' }])
    t.equal(never.code(), 4401)
    t.equal(late.code(), undefined, 'the authenticated socket is not touched by the deadline')
  })
})

t.test("a live socket is told token_expired at its token's expiry unless a refresh moved it", async (t) => {
  eachVariant(t, async (t, h, clock) => {
    const alice = await h.newUser()
    const phone = await alice.connect('phone')
    const tablet = await alice.connect('tablet')
    const byes: any[] = []
    phone.on('bye', (f) => byes.push(f))
    const expiresAt = phone.auth.expires_at
    t.equal(tablet.auth.expires_at, expiresAt, 'both sockets hold tokens expiring at the same time')
    // A token that lives longer, signed as the hub signs them.
    const longer = await createAccessTokenSigner(TEST_SECRET).sign({ id: alice.id, username: alice.username, role: 'user' }, 3 * 3600)
    const refreshed = (await tablet.refresh(longer.token)) as { t: string; expires_at: number }
    t.match(refreshed, { t: 'auth_ok', device_id: 'tablet' })
    t.ok(refreshed.expires_at > expiresAt, 'the refresh answers with the later expiry')

    await clock.advance(expiresAt - clock.now() - 1)
    t.ok(await answers(phone), 'a moment before its expiry the socket still answers')
    await clock.advance(1)
    t.equal(await phone.closed(), 4401, 'at the expiry it is closed with 4401')
    t.match(byes, [{ t: 'bye', reason: 'token_expired' }])
    t.ok(await answers(tablet), 'the refreshed socket lives past the first expiry')
    await clock.advance(refreshed.expires_at - clock.now())
    t.equal(await tablet.closed(), 4401, 'and ends at its new one')
  })
})

t.test('more bad frames than the limit within the window close the socket with 1008; the window slides', async (t) => {
  eachVariant(t, async (t, h, clock) => {
    const alice = await h.newUser()
    const sendBad = async (c: SyncClient, errors: unknown[], n: number) => {
      const want = errors.length + n
      for (let i = 0; i < n; i++) c.sendRaw(new Uint8Array([0xc1]))
      await waitUntil(() => errors.length === want || c.closeCode !== undefined)
    }
    const flood = await alice.connect('flood')
    const floodErrors: unknown[] = []
    flood.on('error', (f) => floodErrors.push(f))
    await sendBad(flood, floodErrors, BAD_FRAME_LIMIT + 1)
    t.equal(await flood.closed(), 1008, 'one over the limit at once: closed')

    const steady = await alice.connect('steady')
    const errors: unknown[] = []
    steady.on('error', (f) => errors.push(f))
    await sendBad(steady, errors, BAD_FRAME_LIMIT)
    await clock.advance(BAD_FRAME_WINDOW_MS)
    await sendBad(steady, errors, BAD_FRAME_LIMIT)
    t.equal(errors.length, 2 * BAD_FRAME_LIMIT, 'each bad frame answered')
    t.ok(await answers(steady), 'the limit in each of two windows: still open')
    await sendBad(steady, errors, 1)
    t.equal(await steady.closed(), 1008, 'one more within the second window: closed')
  })
})
