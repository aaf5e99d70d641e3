import t from 'tap'
import WebSocket from 'ws'
import { decodeFrame, encodeMsgpack } from '../../protocol/codec.ts'
import { eachHub, HUB_VARIANTS, messagePut, type TestHub } from '../helpers/hub.ts'

/**
 * Text that is not well-formed (a lone UTF-16 surrogate through a JSON escape, a MessagePack str
 * whose bytes are not UTF-8) and NUL where the store keeps text: refused as `invalid`, naming the
 * field, on sockets and REST, and nothing stored changes. NUL inside record data is kept as sent.
 */

/** `frame` encoded as msgpack with the UTF-8 bytes of `placeholder` replaced by `bytes` (same length). */
function msgpackWith(frame: object, placeholder: string, bytes: number[]): Buffer {
  const encoded = Buffer.from(encodeMsgpack(frame))
  const at = encoded.indexOf(placeholder)
  if (at < 0 || Buffer.byteLength(placeholder) !== bytes.length) throw new Error('placeholder not found or of another length')
  encoded.set(bytes, at)
  return encoded
}

const LONE_HIGH = [0xed, 0xa0, 0x80] // U+D800 encoded as if it were a character: not UTF-8
const BAD_BYTE = [0x61, 0xff, 0x62]

/** A raw socket authenticated as `token` in `encoding`, collecting every decoded frame. */
async function rawSocket(h: TestHub, token: string, encoding: 'json' | 'msgpack', device: Record<string, string> = { id: 'raw-device' }) {
  const ws = new WebSocket(h.wsUrl)
  const frames: any[] = []
  let code: number | undefined
  ws.on('message', (data: Buffer, binary) => frames.push(decodeFrame(binary ? data : data.toString(), binary, false)))
  ws.on('close', (c) => (code = c))
  await new Promise((r) => ws.once('open', r))
  const send = (frame: object | Uint8Array | string) =>
    ws.send(frame instanceof Uint8Array || typeof frame === 'string' ? frame : encoding === 'json' ? JSON.stringify(frame) : encodeMsgpack(frame))
  const reply = async (ref: number) => {
    const deadline = Date.now() + 5000
    for (;;) {
      const f = frames.find((x) => x.ref === ref && x.t !== 'changes')
      if (f || Date.now() > deadline || code !== undefined) return f
      await new Promise((r) => setTimeout(r, 5))
    }
  }
  send({ t: 'auth', ref: 1, token, device })
  return { ws, frames, send, reply, code: () => code }
}

t.test('sockets: lone surrogates, broken UTF-8 and NUL in ids are invalid, naming the field; nothing is stored', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const json = await rawSocket(h, alice.token, 'json')
    t.match(await json.reply(1), { t: 'auth_ok' })
    // JSON.stringify writes a lone surrogate as the escape \ud800, the only way one reaches the hub.
    json.send({ t: 'push', ref: 2, ops: [messagePut(1, 'a\ud800')] })
    t.match(await json.reply(2), { t: 'error', code: 'invalid', message: /ops\.0\.id: .*surrogate/ }, 'JSON: a lone surrogate in an id')
    json.send({ t: 'push', ref: 3, ops: [messagePut(1, 'a\ud800'), messagePut(2, 'b\udfff')] })
    t.match(await json.reply(3), { t: 'error', code: 'invalid', message: /ops\.0\.id/ }, 'JSON: two of them in one push (was internal)')
    json.send({ t: 'push', ref: 4, ops: [{ ...messagePut(1, 'm1'), data: { conversation_id: 'c1', role: 'user', content: 'hi \udc00' } }] })
    t.match(await json.reply(4), { t: 'error', code: 'invalid', message: /ops\.0\.data\.content: .*surrogate/ }, 'JSON: in record data')
    json.send({ t: 'push', ref: 5, ops: [{ ...messagePut(1, 'm1'), data: { conversation_id: 'c1', role: 'user', content: 'x', ['k\ud800']: 1 } }] })
    t.match(await json.reply(5), { t: 'error', code: 'invalid', message: /ops\.0\.data\.\(a key\)/ }, 'JSON: in a data key')
    json.send({ t: 'push', ref: 6, ops: [messagePut(1, 'a\u0000b')] })
    t.match(await json.reply(6), { t: 'error', code: 'invalid', message: /ops\.0\.id: must not contain NUL/ }, 'JSON: NUL in an id (was internal)')

    const mp = await rawSocket(h, alice.token, 'msgpack', { id: 'raw-mp' })
    t.match(await mp.reply(1), { t: 'auth_ok' })
    mp.send(msgpackWith({ t: 'push', ref: 2, ops: [messagePut(1, 'QQQ')] }, 'QQQ', LONE_HIGH))
    t.match(await mp.reply(2), { t: 'error', code: 'invalid', message: 'push: ops.0.id: not valid UTF-8' }, 'msgpack: an id encoding a surrogate')
    mp.send(msgpackWith({ t: 'push', ref: 3, ops: [{ ...messagePut(1, 'm1'), data: { conversation_id: 'c1', role: 'user', content: 'QQQ' } }] }, 'QQQ', BAD_BYTE))
    t.match(await mp.reply(3), { t: 'error', code: 'invalid', message: 'push: ops.0.data.content: not valid UTF-8' }, 'msgpack: a byte that is never UTF-8 in data (was stored as U+FFFD)')
    mp.send(encodeMsgpack({ t: 'push', ref: 4, ops: [messagePut(1, '\u0000')] }))
    t.match(await mp.reply(4), { t: 'error', code: 'invalid', message: /ops\.0\.id: must not contain NUL/ }, 'msgpack: NUL in an id')

    t.equal(json.code(), undefined, 'the JSON socket stays open')
    t.equal(mp.code(), undefined, 'the msgpack socket stays open')
    const ok = await alice.connect('phone')
    t.strictSame((await ok.push([messagePut(1, 'm1')])).results, [{ ok: true, seq: 1, id: 'm1' }], 'no refused frame used a mid or a seq')
    for (const s of [json, mp]) s.ws.close()
  })
})

t.test('auth: NUL or a lone surrogate in device fields is invalid, the socket stays and can authenticate', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    for (const [name, device] of [
      ['device.id', { id: 'ph\u0000one' }],
      ['device.name', { id: 'phone', name: 'Pixel\u0000' }],
      ['device.platform', { id: 'phone', platform: 'and\u0000roid' }],
      ['device.name', { id: 'phone', name: 'Pixel \ud83d' }],
    ] as const) {
      const s = await rawSocket(h, alice.token, 'json', device)
      t.match(await s.reply(1), { t: 'error', code: 'invalid', message: new RegExp(name.replace('.', '\\.')) }, `${name}: invalid (was unavailable, close 1013)`)
      s.send({ t: 'auth', ref: 2, token: alice.token, device: { id: 'phone' } })
      t.match(await s.reply(2), { t: 'auth_ok', device_id: 'phone' }, `${name}: the same socket then authenticates`)
      t.equal(s.code(), undefined)
      s.ws.close()
    }
  })
})

t.test('REST: bodies, paths and queries with bad text or NUL are 400 invalid, never 500', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const auth = { authorization: `Bearer ${alice.token}`, 'device-id': 'rest-device' }
    const call = async (method: string, path: string, body?: string | Uint8Array, headers: Record<string, string> = {}) => {
      const res = await fetch(h.url + path, { method, headers: { ...auth, ...headers }, body: body as BodyInit | undefined })
      return { status: res.status, body: await res.json().catch(() => undefined) }
    }
    const jsonPush = (ops: unknown[]) => call('POST', '/v1/sync/push', JSON.stringify({ ops }), { 'content-type': 'application/json' })
    t.match(await jsonPush([messagePut(1, 'a\ud800')]), { status: 400, body: { error: { code: 'invalid', message: /body: ops\.0\.id: .*surrogate/ } } }, 'JSON body: lone surrogate')
    t.match(await jsonPush([messagePut(1, 'a\u0000')]), { status: 400, body: { error: { code: 'invalid', message: /ops\.0\.id: must not contain NUL/ } } }, 'JSON body: NUL in an id (was 500)')
    const mpBody = msgpackWith({ ops: [{ ...messagePut(1, 'm1'), data: { conversation_id: 'c1', role: 'user', content: 'QQQ' } }] }, 'QQQ', BAD_BYTE)
    t.match(
      await call('POST', '/v1/sync/push', mpBody, { 'content-type': 'application/msgpack' }),
      { status: 400, body: { error: { code: 'invalid', message: 'body: ops.0.data.content: not valid UTF-8' } } },
      'msgpack body: broken UTF-8 in data',
    )
    t.match(await call('POST', '/v1/sync/push', Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), { 'content-type': 'application/json' }), { status: 400, body: { error: { code: 'bad_frame' } } }, 'a JSON body that is not UTF-8 does not parse')
    t.match(await call('DELETE', '/v1/devices/a%00b'), { status: 400, body: { error: { code: 'invalid' } } }, 'NUL in a path id (was 500)')
    t.match(await jsonPush([messagePut(1, 'm1', 'c1', 'tab\there, bell \u0007')]), { status: 200 }, 'other control characters are text like any other')

    const login = (username: string) => fetch(h.url + '/v1/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password: 'whatever-it-is' }) })
    const nul = await login('ali\u0000ce')
    t.match({ status: nul.status, body: await nul.json() }, { status: 400, body: { error: { code: 'invalid', message: /username: must not contain NUL/ } } }, 'login: NUL in the username (was 500)')
    const surrogate = await login('ali\ud800ce')
    t.equal(surrogate.status, 400, 'login: a lone surrogate in the username')
    const form = await fetch(h.url + '/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `grant_type=password&username=${alice.username}&password=%ED%A0%80xxxxxx`,
    })
    t.match({ status: form.status, body: await form.json() }, { status: 400, body: { error: { code: 'bad_frame' } } }, 'form login: a percent-escape that is not UTF-8 does not decode')

    const pulled = await alice.rest.pull()
    t.strictSame(pulled.items.map((i: { id: string }) => i.id), ['m1'], 'only the valid push was stored')
  })
})

t.test('NUL inside record data is kept exactly as sent', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const phone = await alice.connect('phone')
    await phone.subscribe(0)
    const pc = await alice.connect('pc', { encoding: 'json' })
    const seen: any[] = []
    pc.on('changes', (f) => seen.push(...f.items))
    await pc.subscribe(0)
    const content = 'before\u0000after'
    const data = { conversation_id: 'c1', role: 'user', content, ['key\u0000']: 'v' }
    const ack = await phone.push([{ op: 'put', mid: 1, collection: 'messages', id: 'm1', data }])
    t.strictSame(ack.results, [{ ok: true, seq: 1, id: 'm1' }])
    const pulled = await alice.rest.pull()
    t.strictSame(pulled.items[0].data, data, 'REST pull returns the NUL in a value and in a key')
    await new Promise<void>((resolve) => (seen.length > 0 ? resolve() : pc.once('changes', () => resolve())))
    t.strictSame(seen[0].data, data, 'a JSON socket receives it as sent')
  })
})

t.test('imports: a line with a lone surrogate or an id with NUL is refused whole, naming the line', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const header = JSON.stringify({ synchub_backup: 1, exported_at: 1, scopes: ['user.settings'], collections: ['settings'] })
    const record = (id: string, value: unknown) => JSON.stringify({ collection: 'settings', id, rev: 1, order: 1, created_at: 1, updated_at: 1, data: { value } })
    const importOf = async (lines: string[]) => {
      const res = await fetch(`${h.url}/v1/import`, { method: 'POST', headers: { authorization: `Bearer ${alice.token}`, 'content-type': 'application/x-ndjson' }, body: lines.join('\n') + '\n' })
      return { status: res.status, body: await res.json() }
    }
    const end = (n: number) => JSON.stringify({ end: true, records: n })
    t.match(await importOf([header, record('ok', 1), record('s', 'x\ud800'), end(2)]), { status: 400, body: { error: { code: 'backup_invalid', message: /line 3: data\.value: .*surrogate/ } } }, 'a lone surrogate in data')
    t.match(await importOf([header, record('a\u0000', 1), end(1)]), { status: 400, body: { error: { code: 'backup_invalid', message: /line 2: .*id: must not contain NUL/ } } }, 'NUL in an id')
    t.match(await importOf([header, record('nul', 'a\u0000b'), end(1)]), { status: 200, body: { imported: 1 } }, 'NUL inside data imports')
    t.strictSame((await alice.rest.pull()).items.map((i: any) => [i.id, i.data.value]), [['nul', 'a\u0000b']], 'only the valid import changed anything')
  })
})

t.test('admin: NUL in the user list cursor is invalid, not a 500', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const admin = await h.admin('root', 'tidal-orbit-marmalade')
      const res = await fetch(`${h.url}/v1/admin/users?after=a%00b`, { headers: { authorization: `Bearer ${admin.token}` } })
      t.match({ status: res.status, body: await res.json() }, { status: 400, body: { error: { code: 'invalid', message: /after: must not contain NUL/ } } })
    },
    // A query reaches the store the same way on both transports.
    { env: { SYNCHUB_ADMIN_USERNAME: 'root', SYNCHUB_ADMIN_PASSWORD: 'tidal-orbit-marmalade' }, variants: HUB_VARIANTS.filter((v) => v.transport === 'ws') },
  )
})
