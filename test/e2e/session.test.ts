import t from 'tap'
import { collect, eachHub, messagePut, waitUntil } from '../helpers/hub.ts'
import { PROTOCOL_VERSION } from '../../protocol/version.ts'

t.test('an access token expiring on a live socket ends it unless refreshed', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const alice = await h.newUser()
      const c = await alice.connect('phone')
      t.ok(c.auth.expires_at - Date.now() <= 4000, 'auth_ok tells when the token expires')
      t.equal(c.auth.protocol, PROTOCOL_VERSION, 'and which protocol version the hub speaks')
      const bye: any[] = []
      c.on('bye', (f) => bye.push(f))
      t.equal(await c.closed(), 4401, 'closed 4401 when the token expires')
      t.match(bye, [{ t: 'bye', reason: 'token_expired' }])
      // The expired token is now refused at auth too.
      await t.rejects(alice.connect('pc'), { code: 'unauthorized' }, 'an expired token cannot authenticate')

      const fresh = await alice.rest.login(alice.username, alice.password)
      const d = await alice.connect('tablet', { token: fresh.access_token })
      // Token expiry has one-second resolution: the next token must be issued in a later second.
      await new Promise((r) => setTimeout(r, 1100))
      const again = await alice.rest.login(alice.username, alice.password)
      const reply = (await d.refresh(again.access_token)) as any
      t.match(reply, { t: 'auth_ok', device_id: 'tablet', protocol: PROTOCOL_VERSION }, 'refresh answers auth_ok, with the protocol version')
      t.ok(reply.expires_at > d.auth.expires_at, 'with the new expiry')
      await new Promise((r) => setTimeout(r, Math.max(0, d.auth.expires_at + 500 - Date.now())))
      t.equal(d.closeCode, undefined, 'still open past the first token’s expiry')
      const pong = await d.ping()
      t.equal(pong.t, 'pong')
    },
    { env: { SYNCHUB_ACCESS_TTL: '4' } },
  )
})

t.test('disabling a user closes its live sockets and refuses it everywhere', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const admin = await h.admin('root', 'tidal-orbit-marmalade')
      const alice = await h.newUser()
      const c = await alice.connect('phone')
      const bye: any[] = []
      c.on('bye', (f) => bye.push(f))
      await admin.call('PATCH', `/v1/admin/users/${alice.id}`, { disabled: true })
      t.equal(await c.closed(), 4403)
      t.match(bye, [{ reason: 'revoked' }])
      await t.rejects(alice.rest.pull(), { status: 403 } as unknown as Error, 'REST refuses the disabled user')
      await t.rejects(alice.connect('pc'), { code: 'forbidden' }, 'sockets refuse the disabled user')
    },
    { env: { SYNCHUB_ADMIN_USERNAME: 'root', SYNCHUB_ADMIN_PASSWORD: 'tidal-orbit-marmalade' } },
  )
})

t.test('JSON text sockets get everything as JSON', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const c = await alice.connect('browser', { encoding: 'json' })
    const seen = collect(c)
    await c.subscribe(0)
    const ack = await c.push([messagePut(1, 'm1')])
    t.equal(ack.results[0]!.ok, true)
    await seen.waitFor(() => seen.seqs().length === 1)
    t.match(seen.frames[0].items[0], { id: 'm1', data: { content: 'hello' } })
  })
})

t.test('a commit larger than the frame limit is split, every part but the last marked more', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const alice = await h.newUser()
      const c = await alice.connect('phone')
      const seen = collect(c)
      await c.subscribe(0)
      const ops = Array.from({ length: 12 }, (_, i) => ({
        op: 'put' as const,
        mid: i + 1,
        collection: 'settings',
        id: `s${i}`,
        data: { value: 'x'.repeat(20_000) },
      }))
      await t.rejects(c.push(ops), { code: 'too_large' }, 'a socket frame over the limit is refused, its ref echoed')
      // A bot pushing a big batch over REST makes a commit larger than one socket frame.
      await alice.rest.push(ops)
      await seen.waitFor(() => seen.seqs().length === 12)
      t.ok(seen.frames.length > 1, 'split into several frames')
      t.ok(seen.frames.slice(0, -1).every((f) => f.more === true), 'all but the last have more')
      t.notOk('more' in seen.frames.at(-1), 'the last has no more')
      t.same(seen.gaps, [], 'parts chain from/to')
    },
    { env: { SYNCHUB_MAX_FRAME_BYTES: String(64 * 1024), SYNCHUB_MAX_RECORD_BYTES: String(32 * 1024) } },
  )
})

t.test('a slow reader is closed with a reconnect code and resumes by cursor', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const alice = await h.newUser()
      const writer = await alice.connect('writer')
      const slow = await alice.connect('slow')
      await slow.subscribe(0)
      ;(slow as any).ws._socket.pause()
      let mid = 0
      const payload = 'y'.repeat(100_000)
      // Nobody reads: the kernel buffers fill, then the hub's own buffer passes its bound.
      const hubHoldsSlow = () => h.hub.sessions.forUser(alice.id).some((s) => s.deviceId === 'slow')
      while (hubHoldsSlow() && mid < 300) {
        await writer.push([{ op: 'put', mid: ++mid, collection: 'settings', id: `s${mid}`, data: { value: payload } }])
      }
      t.notOk(hubHoldsSlow(), 'the hub let the slow socket go')
      ;(slow as any).ws._socket.resume()
      await waitUntil(() => slow.closeCode !== undefined, 10_000)
      t.equal(slow.closeCode, 1013, 'slow consumer closed with 1013 (try again later)')
      const back = await alice.connect('slow')
      const seen = collect(back)
      await back.subscribe(0)
      t.equal(seen.seqs().length, mid, 'resuming by cursor yields everything')
    },
    { env: { SYNCHUB_SEND_BUFFER_BYTES: String(256 * 1024) } },
  )
})
