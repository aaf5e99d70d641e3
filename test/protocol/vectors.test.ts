import t from 'tap'
import { decode, encode } from '@msgpack/msgpack'
import { isDeepStrictEqual } from 'node:util'
import { decodeFrame, encodeFrame } from '../../protocol/codec.ts'
import { CLIENT_FRAME_TYPES, ClientFrame, HubFrame } from '../../protocol/frames.ts'
import { Op } from '../../protocol/ops.ts'
import { loadVectors, vectorFiles } from './vectors.ts'

const vectors = loadVectors()
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex')

t.test('every vector is a valid frame, exactly as written', async (t) => {
  for (const v of vectors) {
    t.ok(v.name.startsWith('client-') || v.name.startsWith('hub-'), `${v.name}: named client-* or hub-*`)
    const parsed = (v.side === 'client' ? ClientFrame : HubFrame).safeParse(v.frame)
    t.ok(parsed.success, `${v.name} validates as a ${v.side} frame`)
    // A field the schema strips would be one the hub never reads or sends.
    t.ok(parsed.success && isDeepStrictEqual(parsed.data, v.frame), `${v.name} has no unknown field`)
  }
})

t.test('the committed bytes are what our codec writes', async (t) => {
  const files = new Set(vectorFiles())
  for (const v of vectors) {
    t.ok(files.has(`${v.name}.msgpack`), `${v.name}.msgpack exists`)
    t.equal(hex(encodeFrame(v.frame, 'msgpack') as Uint8Array), hex(v.bytes), `${v.name}: encodeFrame equals the committed bytes`)
  }
  for (const f of files) {
    if (f.endsWith('.msgpack')) t.ok(files.has(f.replace(/\.msgpack$/, '.json')), `${f} has its .json`)
  }
})

t.test('an independent msgpack library agrees with the committed bytes', async (t) => {
  for (const v of vectors) {
    // Plain objects, numbers for every int64 (the default), no extension codec registered:
    // anything msgpackr-specific in the bytes would throw or decode differently.
    t.strictSame(decode(v.bytes), v.frame, `${v.name}: @msgpack/msgpack decodes the bytes to the .json`)
    t.equal(hex(encode(v.frame)), hex(v.bytes), `${v.name}: @msgpack/msgpack encodes the .json to the same bytes (smallest forms)`)
    t.strictSame(decodeFrame(encode(v.frame), true), v.frame, `${v.name}: our decoder reads what @msgpack/msgpack writes`)
    t.strictSame(decodeFrame(JSON.stringify(v.frame), false), v.frame, `${v.name}: the JSON text form decodes to the same frame`)
  }
})

t.test('the vectors cover every frame type, every op and the listed cases', async (t) => {
  const client = vectors.filter((v) => v.side === 'client')
  const hub = vectors.filter((v) => v.side === 'hub')
  t.strictSame([...new Set(client.map((v) => v.frame.t))].sort(), [...CLIENT_FRAME_TYPES].sort(), 'every client frame type')
  const hubTypes = HubFrame.options.map((o) => o.shape.t.value).sort()
  t.strictSame([...new Set(hub.map((v) => v.frame.t))].sort(), hubTypes, 'every hub frame type')
  const ops = new Set(client.flatMap((v) => (v.frame.ops ?? []).map((o: { op: string }) => o.op)))
  t.strictSame([...ops].sort(), Op.options.map((o) => o.shape.op.value).sort(), 'every op')

  const results = hub.filter((v) => v.frame.t === 'ack').flatMap((v) => v.frame.results)
  t.ok(results.some((r) => r.ok && r.copy), 'a conflict-copy result')
  t.ok(results.some((r) => !r.ok && !r.dup), 'a refused result')
  t.ok(results.some((r) => r.dup), 'a dup result')
  t.ok(hub.some((v) => v.frame.t === 'changes' && v.frame.more === true), 'a split changes part with more')
  t.ok(hub.some((v) => v.frame.t === 'changes' && v.frame.items.length === 0), 'a changes frame whose items were all filtered out')
  const resetReasons = new Set(hub.filter((v) => v.frame.t === 'reset').map((v) => v.frame.reason))
  t.strictSame([...resetReasons].sort(), ['cursor_ahead', 'cursor_purged', 'epoch_changed'], 'every reset reason')

  const numbers: number[] = []
  const strings: string[] = []
  const kinds = new Set<string>()
  const walk = (x: unknown): void => {
    kinds.add(x === null ? 'null' : Array.isArray(x) ? 'array' : typeof x)
    if (typeof x === 'number') numbers.push(x)
    else if (typeof x === 'string') strings.push(x)
    else if (Array.isArray(x)) x.forEach(walk)
    else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) (strings.push(k), walk(v))
  }
  vectors.forEach((v) => walk(v.frame))
  for (const n of [2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, -(2 ** 31), -(2 ** 31) - 1, -(2 ** 53 - 1)]) {
    t.ok(numbers.includes(n), `the integer ${n} appears`)
  }
  t.ok(numbers.some((n) => !Number.isInteger(n)), 'floats appear')
  t.notOk(numbers.some((n) => Object.is(n, -0)), 'no negative zero (JSON cannot carry it)')
  t.ok(strings.includes(''), 'empty strings appear')
  t.ok(strings.some((s) => /[^\u0000-\u007f]/.test(s)), 'non-ASCII text appears')
  t.ok(strings.some((s) => /[\u{10000}-\u{10ffff}]/u.test(s)), 'characters outside the BMP appear')
  for (const kind of ['null', 'boolean', 'array', 'object', 'number', 'string']) t.ok(kinds.has(kind), `${kind} values appear`)
})
