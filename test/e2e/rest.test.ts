import { decode as independentDecode, encode as independentEncode } from '@msgpack/msgpack'
import t from 'tap'
import { eachHub, messagePut } from '../helpers/hub.ts'

const MSGPACK = 'application/msgpack'

t.test('REST speaks msgpack both ways when asked, JSON otherwise', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const auth = { authorization: `Bearer ${alice.token}`, 'device-id': 'bot' }
    const push = await fetch(`${h.url}/v1/sync/push`, {
      method: 'POST',
      headers: { ...auth, 'content-type': MSGPACK, accept: MSGPACK },
      body: independentEncode({ ops: [messagePut(1, 'm1', 'c1', 'héllo')] }),
    })
    t.equal(push.status, 200)
    t.equal(push.headers.get('content-type'), MSGPACK)
    t.same(independentDecode(new Uint8Array(await push.arrayBuffer())), { cursor: 1, results: [{ ok: true, seq: 1, id: 'm1' }] }, 'msgpack body in, msgpack answer out')

    const pull = await fetch(`${h.url}/v1/sync/pull?since=0`, { headers: { ...auth, accept: MSGPACK } })
    const page = independentDecode(new Uint8Array(await pull.arrayBuffer())) as any
    t.match(page, { cursor: 1, more: false, items: [{ seq: 1, id: 'm1', device_id: 'bot', data: { content: 'héllo' } }] })
    t.equal(typeof page.items[0].created_at, 'number', 'times decode as plain integers in an independent decoder')

    const json = await fetch(`${h.url}/v1/sync/pull?since=0`, { headers: auth })
    t.match(json.headers.get('content-type'), /application\/json/)
    t.same((await json.json()).items.map((i: any) => i.id), ['m1'], 'the same stream as JSON')
  })
})

t.test('REST refuses bad input with coded errors and stores nothing', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const bob = await h.newUser()
    const auth = { authorization: `Bearer ${alice.token}`, 'device-id': 'bot', 'content-type': 'application/json' }
    const call = async (path: string, init: RequestInit = {}) => {
      const res = await fetch(h.url + path, init)
      return { status: res.status, body: await res.json() }
    }
    t.match(await call('/v1/sync/pull'), { status: 401, body: { error: { code: 'unauthorized' } } }, 'no token')
    t.match(await call('/v1/sync/pull', { headers: { authorization: 'Bearer nonsense' } }), { status: 401, body: { error: { code: 'unauthorized' } } }, 'bad token')
    t.match(await call('/v1/sync/pull?since=-1', { headers: auth }), { status: 400, body: { error: { code: 'invalid', message: /since/ } } }, 'negative cursor')
    t.match(await call('/v1/sync/pull?wait=99', { headers: auth }), { status: 400, body: { error: { code: 'invalid', message: /wait/ } } }, 'wait over 30 s')
    t.match(await call('/v1/sync/pull?collections=Bad-Name', { headers: auth }), { status: 400, body: { error: { code: 'invalid' } } }, 'bad collection name')
    t.match(await call('/v1/sync/push', { method: 'POST', headers: auth, body: '{not json' }), { status: 400, body: { error: { code: 'bad_frame' } } }, 'broken JSON')
    t.match(await call('/v1/sync/push', { method: 'POST', headers: auth, body: '{"ops":[{"op":"put"}]}' }), { status: 400, body: { error: { code: 'invalid', message: /ops/ } } }, 'schema-invalid op')
    const tooMany = JSON.stringify({ ops: Array.from({ length: 501 }, (_, i) => messagePut(i + 1, `m${i}`)) })
    t.match(await call('/v1/sync/push', { method: 'POST', headers: auth, body: tooMany }), { status: 413, body: { error: { code: 'too_large' } } }, 'too many ops')
    t.match(await call('/v1/nowhere', { headers: auth }), { status: 404, body: { error: { code: 'not_found' } } }, 'unknown route')
    t.match(await call('/v1/sync/pull?since=5', { headers: auth }), { status: 200, body: { reset: 'cursor_ahead' } }, 'a cursor beyond the head is told to reset')

    const status = await call('/v1/sync/status', { headers: auth })
    t.match(status.body, { cursor: 0, collections: {}, trash: 0 }, 'nothing was stored by any refused request')

    // Bob writes; Alice's view is unchanged, and Bob's ids do not collide with hers.
    await bob.rest.push([messagePut(1, 'shared-id')])
    await alice.rest.push([messagePut(1, 'shared-id', 'c1', 'alice')])
    const alicePull = await alice.rest.pull()
    t.same(alicePull.items.map((i: any) => [i.id, i.data.content]), [['shared-id', 'alice']], 'same id, separate users, separate records')
  })
})

t.test('health and readiness', async (t) => {
  eachHub(t, async (t, h) => {
    t.same(await (await fetch(`${h.url}/healthz`)).json(), { ok: true })
    const ready = await fetch(`${h.url}/readyz`)
    t.equal(ready.status, 200)
    t.same(await ready.json(), { ready: true })
  })
})
