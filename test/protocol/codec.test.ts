import t from 'tap'
import fc from 'fast-check'
import { decode, encode } from '@msgpack/msgpack'
import { decodeFrame, decodeMsgpack, encodeFrame, encodeMsgpack, PackedValue } from '../../protocol/codec.ts'
import { HubError } from '../../protocol/errors.ts'

const hex = (b: Uint8Array | string) => Buffer.from(b as Uint8Array).toString('hex')
const codeOf = (fn: () => unknown) => {
  try {
    fn()
    return 'ok'
  } catch (err) {
    return err instanceof HubError ? err.code : `threw ${String(err)}`
  }
}
/** `{t:"ping", v:<value bytes>}` as raw msgpack. */
const pingWith = (...value: number[]) => Uint8Array.of(0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0xa1, 0x76, ...value)

t.test('integers go on the wire as msgpack integers in their smallest form', async (t) => {
  const cases: Array<[number, string]> = [
    [0, '00'],
    [127, '7f'],
    [128, 'cc80'],
    [65535, 'cdffff'],
    [2 ** 31 - 1, 'ce7fffffff'],
    [2 ** 31, 'ce80000000'],
    [2 ** 32 - 1, 'ceffffffff'],
    // msgpackr alone writes these as float64; the codec rewrites them as uint64/int64.
    [2 ** 32, 'cf0000000100000000'],
    [1767225600000, 'cf0000019b76daa800'],
    [2 ** 53 - 1, 'cf001fffffffffffff'],
    [-1, 'ff'],
    [-32, 'e0'],
    [-33, 'd0df'],
    [-(2 ** 31), 'd280000000'],
    [-(2 ** 31) - 1, 'd3ffffffff7fffffff'],
    [-(2 ** 53 - 1), 'd3ffe0000000000001'],
  ]
  for (const [n, bytes] of cases) {
    t.equal(hex(encodeMsgpack(n)), bytes, `${n} → ${bytes}`)
    t.equal(decodeMsgpack(encodeMsgpack(n)), n, `${n} decodes back`)
    t.equal(hex(encodeMsgpack(n)), hex(encode(n)), `${n}: the same bytes as @msgpack/msgpack`)
  }
  t.equal(hex(encodeMsgpack(-0)), '00', 'negative zero is sent as the integer 0')
})

t.test('non-integers and integers beyond 2^53 stay float64', async (t) => {
  for (const n of [0.5, -1.5, 0.1, 2 ** 53, 2 ** 60, 1e300, -1e300, Number.MIN_VALUE]) {
    const bytes = encodeMsgpack(n)
    t.equal(bytes[0], 0xcb, `${n} is a float64`)
    t.equal(decode(bytes), n, `${n} decodes exactly`)
  }
})

t.test('the rewrite never touches float64 bytes inside strings or binaries', async (t) => {
  // Bytes that look like an integral float64 (0xcb + 2^32) inside a str and a bin.
  const lookalike = String.fromCharCode(0xcb, 0x41, 0xf0, 0, 0, 0, 0, 0, 0)
  const value = { s: lookalike, b: Uint8Array.of(0xcb, 0x41, 0xf0, 0, 0, 0, 0, 0, 0), n: [2 ** 32, 'x', 2 ** 33] }
  const bytes = encodeMsgpack(value)
  const back = decode(bytes) as typeof value
  t.equal(back.s, lookalike)
  t.equal(hex(back.b), 'cb41f0000000000000')
  t.strictSame(back.n, [2 ** 32, 'x', 2 ** 33])
  t.equal(hex(encodeMsgpack(value)), hex(encode(value)), 'the same bytes as @msgpack/msgpack')
})

t.test('long strings, big arrays and maps keep their headers', async (t) => {
  const value = {
    s255: 'x'.repeat(255),
    s256: 'y'.repeat(256),
    s70k: 'z'.repeat(70_000),
    arr: Array.from({ length: 70_000 }, (_, i) => (i % 2 ? 2 ** 40 : i)),
    map: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`, -(2 ** 40)])),
  }
  const bytes = encodeMsgpack(value)
  t.strictSame(decode(bytes), value)
  t.equal(hex(bytes), hex(encode(value)), 'the same bytes as @msgpack/msgpack')
})

t.test('any JSON-like value encodes to the same bytes as @msgpack/msgpack', async (t) => {
  // Smallest int forms, float64 floats, smallest str/array/map headers: one canonical byte form.
  const value = fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' })
  fc.assert(fc.property(value, (v) => hex(encodeMsgpack(v)) === hex(encode(v))), { numRuns: 500, seed: 21 })
  for (const ch of ['é', '世', '😀']) {
    // Multi-byte strings around the fixstr/str8/str16 header boundaries.
    for (const n of [7, 8, 10, 11, 15, 16, 31, 32, 63, 64, 85, 86, 127, 128, 21845, 21846, 32767, 32768]) {
      t.equal(hex(encodeMsgpack(ch.repeat(n))), hex(encode(ch.repeat(n))), `${n} × ${ch}`)
    }
  }
})

t.test('a frame must be exactly one map', async (t) => {
  const cases: Array<[string, Uint8Array | string, boolean]> = [
    ['garbage bytes', Uint8Array.of(0xc1, 0xff, 0x00), true],
    ['an empty binary frame', new Uint8Array(0), true],
    ['an array', encodeMsgpack([1, 2, 3]), true],
    ['a string', encodeMsgpack('ping'), true],
    ['nil', Uint8Array.of(0xc0), true],
    ['a binary value', encodeMsgpack(Uint8Array.of(1, 2)), true],
    ['two maps', Uint8Array.of(...encodeMsgpack({ t: 'ping', ref: 1 }), ...encodeMsgpack({ t: 'ping', ref: 2 })), true],
    ['a map and a trailing byte', Uint8Array.of(...encodeMsgpack({ t: 'ping', ref: 1 }), 0x00), true],
    ['a truncated map', encodeMsgpack({ t: 'ping', ref: 1 }).subarray(0, 5), true],
    ['a map32 claiming 4 billion pairs', Uint8Array.of(0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x74), true],
    ['JSON that is not JSON', '{t: ping}', false],
    ['a JSON array', '[1]', false],
    ['JSON null', 'null', false],
    ['a JSON string', '"ping"', false],
    ['an empty text frame', '', false],
    ['two JSON objects', '{"t":"ping"}{"t":"ping"}', false],
  ]
  for (const [name, data, binary] of cases) t.equal(codeOf(() => decodeFrame(data, binary)), 'bad_frame', `${name}: bad_frame`)
  t.strictSame(decodeFrame(Buffer.from('{"t":"ping","ref":1}'), false), { t: 'ping', ref: 1 }, 'a text frame may arrive as bytes')
})

t.test('extension types are refused, so none can be relayed to other clients', async (t) => {
  const cases: Array<[string, Uint8Array]> = [
    ['a timestamp (ext -1, what msgpackr turns into a Date)', encode({ t: 'ping', ref: 1, at: new Date(5) })],
    ['fixext1 type 0 (msgpackr: undefined)', pingWith(0xd4, 0x00, 0x00)],
    ['fixext8 type 0x42 (msgpackr: BigInt)', pingWith(0xd7, 0x42, 0, 0, 0, 0, 0, 0, 0, 1)],
    ['ext8 type 0x73 (msgpackr: Set)', pingWith(0xc7, 0x01, 0x73, 0x90)],
    ['ext8 type 0x74 (msgpackr: typed array)', pingWith(0xc7, 0x02, 0x74, 0x00, 0x01)],
    ['fixext16 of an application type', pingWith(0xd8, 0x05, ...new Array(16).fill(0))],
    ['ext32 hidden in a nested array', pingWith(0x91, 0x91, 0xc9, 0, 0, 0, 1, 0x01, 0x00)],
    ['fixext1 type 0x70 (the type PackedValue is registered under)', pingWith(0xd4, 0x70, 0x00)],
  ]
  for (const [name, bytes] of cases) {
    t.equal(codeOf(() => decodeFrame(bytes, true)), 'bad_frame', `${name}: bad_frame`)
    t.equal(codeOf(() => decodeMsgpack(bytes)), 'bad_frame', `${name}: refused by decodeMsgpack too (REST bodies)`)
  }
})

t.test('a PackedValue goes into a msgpack frame byte for byte, and into JSON decoded', async (t) => {
  const data = { conversation_id: 'c1', role: 'user', content: 'héllo 👋', at: 1_790_000_000_000, ratio: 0.5, tags: ['a', 'b'], nested: { deep: [1, -2, 2 ** 40] } }
  const stored = encodeMsgpack(data)
  const frame = (value: unknown) => ({ t: 'changes', from: 0, to: 1, items: [{ seq: 1, collection: 'messages', id: 'm1', data: value, rev: 1 }] })
  const packed = encodeFrame(frame(new PackedValue(stored)), 'msgpack') as Uint8Array
  t.equal(hex(packed), hex(encodeFrame(frame(data), 'msgpack')), 'the same bytes as encoding the decoded value')
  // {a: 1} with a map16 header where an encoder writes fixmap: only a copy keeps it.
  const unusual = Uint8Array.of(0xde, 0x00, 0x01, 0xa1, 0x61, 0x01)
  t.ok(hex(encodeFrame({ t: 'x', v: new PackedValue(unusual) }, 'msgpack')).endsWith(hex(unusual)), 'the bytes are copied, not encoded again')
  t.strictSame(decodeFrame(packed, true), frame(data), 'and it decodes to the value')
  t.equal(encodeFrame(frame(new PackedValue(stored)), 'json'), JSON.stringify(frame(data)), 'JSON gets the decoded value')
  t.throws(() => encodeFrame({ t: 'x', v: new PackedValue(Uint8Array.of(0x92, 0x01)) }, 'msgpack'), /not one plain value/, 'bytes that are not one value never become a frame')
  t.throws(() => encodeFrame({ t: 'x', v: new PackedValue(Uint8Array.of(0x01, 0x02)) }, 'msgpack'), /not one plain value/, 'nor do two values')
})

t.test('map keys and odd values', async (t) => {
  t.strictSame(decodeFrame(pingWith(0x80), true), { t: 'ping', v: {} }, 'an empty nested map')
  t.strictSame(decodeFrame(Uint8Array.of(0x82, 0xa1, 0x74, 0xa4, 0x70, 0x69, 0x6e, 0x67, 0x01, 0x02), true), { t: 'ping', 1: 2 }, 'an integer key becomes a string key')
  const proto = Uint8Array.of(0x81, 0xa9, ...Buffer.from('__proto__'), 0x81, 0xa1, 0x61, 0x01)
  const decoded = decodeFrame(proto, true)
  t.equal(Object.getPrototypeOf(decoded), Object.prototype, 'a __proto__ key never changes the prototype')
  t.equal(({} as any).a, undefined, 'nor pollutes Object.prototype')
  t.equal(encodeFrame({ t: 'ping', v: undefined }, 'json'), '{"t":"ping"}', 'undefined fields are left out of JSON')
  t.equal(hex(encodeFrame({ v: undefined }, 'msgpack')), '81a176c0', 'and sent as nil in msgpack, never as an extension')
})

t.test('record data nested too deep is refused as invalid, never overflows the stack', async (t) => {
  const { parseClientFrame } = await import('../../protocol/validate.ts')
  const { MAX_DATA_DEPTH } = await import('../../protocol/records.ts')
  const nest = (levels: number) => {
    let v: unknown = 'leaf'
    for (let i = 0; i < levels; i++) v = i % 2 ? [v] : { k: v }
    return v as Record<string, unknown>
  }
  const push = (data: unknown) => ({ t: 'push', ref: 1, ops: [{ op: 'put', mid: 1, collection: 'settings', id: 's', data }] })
  t.ok(parseClientFrame(push({ value: nest(MAX_DATA_DEPTH - 2) })), 'nesting within the limit is accepted')
  t.throws(() => parseClientFrame(push({ value: nest(MAX_DATA_DEPTH + 5) })), { code: 'invalid' }, 'just past the limit')
  t.throws(() => parseClientFrame(push({ value: nest(200_000) })), { code: 'invalid' }, 'absurdly deep')
})

t.test('client text must be UTF-8: short strings (the portable loop) and long ones (the strict decoder) alike', async (t) => {
  const { parseClientFrame } = await import('../../protocol/validate.ts')
  const frameWith = (content: string, bad: number[]) => {
    const bytes = Buffer.from(encodeMsgpack({ t: 'push', ref: 3, ops: [{ op: 'put', mid: 1, collection: 'messages', id: 'm', data: { conversation_id: 'c', role: 'user', content } }] }))
    bytes.set(bad, bytes.indexOf(content) + Buffer.byteLength(content) - bad.length)
    return bytes
  }
  const refusal = (bytes: Uint8Array) => {
    try {
      parseClientFrame(decodeFrame(bytes, true))
      return 'accepted'
    } catch (err) {
      return `${(err as HubError).code}: ${(err as HubError).message}`
    }
  }
  {
    for (const length of [10, 500]) {
      const how = length > 64 ? 'decoder' : 'loop'
      const content = 'é'.repeat(length) + 'abcd' // the bad bytes replace the ASCII tail
      t.equal(refusal(frameWith(content, [])), 'accepted', `${how}, ${length} chars: well-formed text passes`)
      for (const [name, bad] of [['a surrogate', [0xed, 0xa0, 0x80]], ['a lone continuation byte', [0x80]], ['an overlong NUL', [0xc0, 0x80]], ['above U+10FFFF', [0xf4, 0x90, 0x80, 0x80]], ['a cut sequence', [0x41, 0xe2, 0x82]]] as const) {
        t.equal(refusal(frameWith(content, [...bad])), 'invalid: push: ops.0.data.content: not valid UTF-8', `${how}, ${length} chars: ${name}`)
      }
    }
  }
  t.equal(decodeFrame(frameWith('abc', [0xff]), true, false).t, 'push', 'a client of the hub reads text as it comes')
})
