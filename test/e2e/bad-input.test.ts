import WebSocket from 'ws'
import { SignJWT } from 'jose'
import t from 'tap'
import { decodeFrame, encodeMsgpack } from '../../protocol/codec.ts'
import { eachHub, messagePut } from '../helpers/hub.ts'
import type { TestHub } from '../helpers/hub.ts'

/** A raw socket that records decoded frames and the close code. */
async function raw(h: TestHub) {
  const ws = new WebSocket(h.wsUrl)
  const frames: any[] = []
  let closeCode: number | undefined
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve((closeCode = code))))
  ws.on('message', (data: Buffer, isBinary) => frames.push(decodeFrame(isBinary ? data : data.toString(), isBinary)))
  await new Promise((r) => ws.once('open', r))
  const next = async (n = frames.length + 1) => {
    const deadline = Date.now() + 5000
    while (frames.length < n) {
      if (Date.now() > deadline || closeCode !== undefined) break
      await new Promise((r) => setTimeout(r, 5))
    }
    return frames[n - 1]
  }
  return { ws, frames, closed, next, code: () => closeCode }
}

t.test('bad frames get coded errors and the socket keeps working', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const c = await alice.connect('phone')
    const errors: any[] = []
    c.on('error', (f) => errors.push(f))
    const nextError = async () => {
      const n = errors.length + 1
      while (errors.length < n) await new Promise((r) => setTimeout(r, 5))
      return errors[n - 1]
    }
    c.sendRaw(new Uint8Array([0xc1, 0xff, 0x00]))
    t.match(await nextError(), { code: 'bad_frame' }, 'garbage bytes')
    c.sendRaw(encodeMsgpack([1, 2, 3]))
    t.match(await nextError(), { code: 'bad_frame' }, 'not a map')
    c.sendRaw(encodeMsgpack({ t: 'teleport', ref: 9 }))
    t.match(await nextError(), { code: 'bad_frame', ref: 9 }, 'unknown type, ref echoed')
    c.sendRaw(encodeMsgpack({ t: 'push', ref: 10, ops: [{ op: 'put', mid: 'one' }] }))
    t.match(await nextError(), { code: 'invalid', ref: 10 }, 'schema-invalid fields')
    c.sendRaw(encodeMsgpack({ t: 'push', ref: 11, ops: Array.from({ length: 501 }, (_, i) => messagePut(i + 1, `m${i}`)) }))
    t.match(await nextError(), { code: 'too_large', ref: 11 }, 'too many ops')
    c.sendRaw(encodeMsgpack({ t: 'ping', ref: 12, pad: 'x'.repeat(1024 * 1024 + 10) }))
    t.match(await nextError(), { code: 'too_large', ref: 12 }, 'frame over the limit, ref echoed')
    const big = await c.push([{ op: 'put', mid: 1, collection: 'settings', id: 's', data: { value: 'x'.repeat(300 * 1024) } }])
    t.match(big.results[0], { ok: false, code: 'too_large' }, 'record over the data limit refused per op')
    const pong = await c.ping()
    t.match(pong, { t: 'pong', cursor: 0 }, 'still open and serving; nothing was stored')
    const ok = await c.push([messagePut(2, 'm1')])
    t.equal(ok.results[0]!.ok, true, 'pushes still work')
  })
})

t.test('a client that floods bad frames is closed with 1008', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const c = await alice.connect('phone')
    for (let i = 0; i < 50; i++) c.sendRaw(new Uint8Array([0xc1]))
    t.equal(await c.closed(), 1008)
  })
})

t.test('unauthenticated, forged and wrong-key tokens get 4401', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const notAuth = await raw(h)
    notAuth.ws.send(encodeMsgpack({ t: 'ping', ref: 1 }))
    t.match(await notAuth.next(), { t: 'error', code: 'unauthorized' }, 'first frame not auth')
    t.equal(await notAuth.closed, 4401)

    const [header, payload] = alice.token.split('.')
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString())
    const forgedPayload = Buffer.from(JSON.stringify({ ...claims, sub: 'someone-else' })).toString('base64url')
    const wrongKey = await new SignJWT({ ...claims }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-another-secret-1234567'))
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${payload}.`
    for (const [name, token] of [
      ['forged', `${header}.${forgedPayload}.${alice.token.split('.')[2]}`],
      ['wrong key', wrongKey],
      ['alg none', unsigned],
      ['garbage', 'not-a-token'],
    ] as const) {
      const s = await raw(h)
      s.ws.send(encodeMsgpack({ t: 'auth', ref: 1, token, device: { id: 'd' } }))
      t.match(await s.next(), { t: 'error', code: 'unauthorized', ref: 1 }, `${name} token refused`)
      t.equal(await s.closed, 4401, `${name} token closes 4401`)
    }
  })
})

t.test('a socket that does not authenticate in time is told token_expired', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const s = await raw(h)
      t.match(await s.next(), { t: 'bye', reason: 'token_expired' })
      t.equal(await s.closed, 4401)
    },
    { env: { SYNCHUB_AUTH_TIMEOUT_MS: '300' } },
  )
})
