import t from 'tap'
import { decodeFrame, encodeFrame, type Encoding } from '../../protocol/codec.ts'
import { HubError } from '../../protocol/errors.ts'
import { CLIENT_FRAME_TYPES, ClientFrame, HubFrame } from '../../protocol/frames.ts'
import { parseClientFrame, parseOrThrow, refOf } from '../../protocol/validate.ts'
import { loadVectors } from './vectors.ts'

const vectors = loadVectors()
const HUB_TYPES = HubFrame.options.map((o) => o.shape.t.value)

/** The code a receive-side parse fails with, or 'ok'. */
function verdict(fn: () => unknown): string {
  try {
    fn()
    return 'ok'
  } catch (err) {
    return err instanceof HubError ? err.code : `threw ${String(err)}`
  }
}

t.test('every frame type round-trips through the codec in both encodings', async (t) => {
  for (const type of [...CLIENT_FRAME_TYPES, ...HUB_TYPES]) {
    t.ok(vectors.some((v) => v.frame.t === type), `a sample of ${type}`)
  }
  for (const v of vectors) {
    for (const encoding of ['msgpack', 'json'] as Encoding[]) {
      const wire = encodeFrame(v.frame, encoding)
      t.equal(typeof wire === 'string', encoding === 'json', `${v.name}: ${encoding} is ${encoding === 'json' ? 'text' : 'binary'}`)
      const back = decodeFrame(wire, encoding === 'msgpack')
      t.strictSame(back, v.frame, `${v.name} survives ${encoding}`)
      if (v.side === 'client') t.strictSame(parseClientFrame(back), v.frame, `${v.name} (${encoding}) parses as a client frame`)
      else t.strictSame(parseOrThrow(HubFrame, back, 'frame'), v.frame, `${v.name} (${encoding}) parses as a hub frame`)
    }
  }
})

t.test('client frames with wrong field types are invalid, unknown types bad_frame', async (t) => {
  const put = { op: 'put', mid: 1, collection: 'messages', id: 'm1', data: { content: 'x' } }
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['unknown t', { t: 'teleport', ref: 1 }, 'bad_frame'],
    ['missing t', { ref: 1 }, 'bad_frame'],
    ['numeric t', { t: 7, ref: 1 }, 'bad_frame'],
    ['t of a hub frame', { t: 'pong', ref: 1, server_time: 1, cursor: 1 }, 'bad_frame'],
    ['t with different case', { t: 'PING', ref: 1 }, 'bad_frame'],
    ['ref as a string', { t: 'ping', ref: '1' }, 'invalid'],
    ['ref as a float', { t: 'ping', ref: 1.5 }, 'invalid'],
    ['ref beyond 2^53', { t: 'ping', ref: 2 ** 53 }, 'invalid'],
    ['ping without ref', { t: 'ping' }, 'invalid'],
    ['auth without device', { t: 'auth', ref: 1, token: 'tok' }, 'invalid'],
    ['auth with an empty token', { t: 'auth', ref: 1, token: '', device: { id: 'd' } }, 'invalid'],
    ['auth with an empty device id', { t: 'auth', ref: 1, token: 'tok', device: { id: '' } }, 'invalid'],
    ['auth with a device id over 200 chars', { t: 'auth', ref: 1, token: 'tok', device: { id: 'd'.repeat(201) } }, 'invalid'],
    ['auth with a numeric device name', { t: 'auth', ref: 1, token: 'tok', device: { id: 'd', name: 5 } }, 'invalid'],
    ['refresh with a null token', { t: 'refresh', ref: 1, token: null }, 'invalid'],
    ['sub with a negative since', { t: 'sub', ref: 1, since: -1 }, 'invalid'],
    ['sub with since as a string', { t: 'sub', ref: 1, since: '5' }, 'invalid'],
    ['sub with a numeric epoch', { t: 'sub', ref: 1, since: 0, epoch: 5 }, 'invalid'],
    ['sub with a bad collection name', { t: 'sub', ref: 1, since: 0, collections: ['Messages'] }, 'invalid'],
    ['sub with collections as a string', { t: 'sub', ref: 1, since: 0, collections: 'messages' }, 'invalid'],
    ['push with no ops', { t: 'push', ref: 1, ops: [] }, 'invalid'],
    ['push with ops as a map', { t: 'push', ref: 1, ops: { 0: put } }, 'invalid'],
    ['push with an unknown op', { t: 'push', ref: 1, ops: [{ ...put, op: 'merge' }] }, 'invalid'],
    ['put with mid 0', { t: 'push', ref: 1, ops: [{ ...put, mid: 0 }] }, 'invalid'],
    ['put with mid as a string', { t: 'push', ref: 1, ops: [{ ...put, mid: '1' }] }, 'invalid'],
    ['put with data as an array', { t: 'push', ref: 1, ops: [{ ...put, data: [1] }] }, 'invalid'],
    ['put with data null', { t: 'push', ref: 1, ops: [{ ...put, data: null }] }, 'invalid'],
    ['put with a negative base', { t: 'push', ref: 1, ops: [{ ...put, base: -1 }] }, 'invalid'],
    ['put with an empty id', { t: 'push', ref: 1, ops: [{ ...put, id: '' }] }, 'invalid'],
    ['put with a collection that is not snake case', { t: 'push', ref: 1, ops: [{ ...put, collection: 'my-things' }] }, 'invalid'],
    ['del without id', { t: 'push', ref: 1, ops: [{ op: 'del', mid: 1, collection: 'messages' }] }, 'invalid'],
    ['regen without message', { t: 'push', ref: 1, ops: [{ op: 'regen', mid: 1, conversation: 'c', old: 'm' }] }, 'invalid'],
    ['fork with from as a string', { t: 'push', ref: 1, ops: [{ op: 'fork', mid: 1, from: 'c', conversation: { id: 'c2', data: {} } }] }, 'invalid'],
    ['clear without conversation', { t: 'push', ref: 1, ops: [{ op: 'clear', mid: 1 }] }, 'invalid'],
    ['the second op broken', { t: 'push', ref: 1, ops: [put, { ...put, mid: -2 }] }, 'invalid'],
    ['ack without cursor', { t: 'ack' }, 'invalid'],
    ['ack with a float cursor', { t: 'ack', cursor: 1.25 }, 'invalid'],
  ]
  for (const [name, frame, code] of cases) {
    t.equal(verdict(() => parseClientFrame(frame)), code, `${name}: ${code}`)
    // The same verdict for the frame as it arrives over the wire, in either encoding.
    t.equal(verdict(() => parseClientFrame(decodeFrame(encodeFrame(frame, 'msgpack'), true))), code, `${name} (msgpack): ${code}`)
    t.equal(verdict(() => parseClientFrame(decodeFrame(encodeFrame(frame, 'json'), false))), code, `${name} (json): ${code}`)
  }
  const err = (() => {
    try {
      parseClientFrame({ t: 'push', ref: 4, ops: [{ ...put, mid: 'one' }] })
    } catch (e) {
      return e as HubError
    }
  })()
  t.match(err?.message, /^push: ops\.0\.mid: /, 'the message names the frame type and the path of the first problem')
})

t.test('unknown fields are dropped, known ones kept', async (t) => {
  const parsed = parseClientFrame({ t: 'ping', ref: 3, extra: { a: 1 } })
  t.strictSame(parsed, { t: 'ping', ref: 3 })
  // A device ack is `ack` without ref; a ref (or results) sent along is ignored, not an error.
  t.strictSame(parseClientFrame({ t: 'ack', cursor: 9, ref: 2, results: [] }), { t: 'ack', cursor: 9 })
  const data = { a: [1, { b: null }], '': true, 'ключ': 'значение' }
  const push = parseClientFrame({ t: 'push', ref: 1, ops: [{ op: 'put', mid: 1, collection: 'settings', id: 's', data, extra: 1 }] })
  t.strictSame(push, { t: 'push', ref: 1, ops: [{ op: 'put', mid: 1, collection: 'settings', id: 's', data }] }, 'record data is kept whole')
})

t.test('hub frame schemas refuse wrong types', async (t) => {
  const cases: Array<[string, Record<string, unknown>]> = [
    ['auth_ok with a numeric epoch', { t: 'auth_ok', ref: 1, user_id: 'u', device_id: 'd', cursor: 0, epoch: 1, expires_at: 1, server_time: 1, node: 'n' }],
    ['pong without cursor', { t: 'pong', ref: 1, server_time: 1 }],
    ['changes with more: false', { t: 'changes', from: 0, to: 1, items: [], more: false }],
    ['changes with an item missing rev', { t: 'changes', from: 0, to: 1, items: [{ seq: 1, collection: 'x', id: 'a', data: {}, created_at: 1, updated_at: 1 }] }],
    ['ack with a result that is neither ok nor refused', { t: 'ack', ref: 1, cursor: 1, results: [{ seq: 1 }] }],
    ['ack refusing with an unknown code', { t: 'ack', ref: 1, cursor: 1, results: [{ ok: false, code: 'nope', message: '' }] }],
    ['reset with an unknown reason', { t: 'reset', ref: 1, reason: 'bored' }],
    ['error with an unknown code', { t: 'error', code: 'teapot', message: 'x' }],
    ['bye with an unknown reason', { t: 'bye', reason: 'tired' }],
    ['bye with a negative retry_ms', { t: 'bye', reason: 'draining', retry_ms: -1 }],
    ['synced with a string cursor', { t: 'synced', ref: 1, cursor: '1' }],
  ]
  for (const [name, frame] of cases) t.equal(verdict(() => parseOrThrow(HubFrame, frame, 'frame')), 'invalid', name)
  t.equal(verdict(() => parseOrThrow(HubFrame, { t: 'push', ref: 1, ops: [] }, 'frame')), 'invalid', 'a client type is not a hub frame')
  t.notOk(ClientFrame.safeParse({ t: 'auth_ok' }).success, 'a hub type is not a client frame')
})

t.test('refOf echoes only usable refs', async (t) => {
  t.equal(refOf({ ref: 12 }), 12)
  t.equal(refOf({ ref: -3 }), -3, 'any safe integer is a ref')
  t.equal(refOf({ ref: '12' }), undefined)
  t.equal(refOf({ ref: 1.5 }), undefined)
  t.equal(refOf({ ref: 2 ** 53 }), undefined)
  t.equal(refOf(null), undefined)
  t.equal(refOf(undefined), undefined)
})
