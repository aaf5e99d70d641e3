import fc from 'fast-check'
import { ClientFrame } from '../../protocol/frames.ts'

/**
 * fast-check arbitraries for valid client frames, and for frames with one field broken.
 * Generated values go through a JSON round trip so they are plain data (no null prototypes,
 * no undefined, no -0), as any decoder would hand them over.
 */

const plain = <T>(value: T): T => JSON.parse(JSON.stringify(value))

const safeInt = fc.oneof(fc.integer({ min: -1000, max: 1000 }), fc.maxSafeInteger())
const seq = fc.oneof(fc.nat(2000), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }))
const mid = fc.oneof(fc.integer({ min: 1, max: 2000 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }))
// msgpackr renames a `__proto__` key (see PROTOCOL.md), so valid data never uses it.
const key = fc.string({ maxLength: 12, unit: 'grapheme' }).filter((k) => k !== '__proto__')
const text = (max: number) => fc.string({ maxLength: max, unit: 'grapheme' }).filter((s) => s.length <= max)
const id = fc.string({ minLength: 1, maxLength: 40, unit: 'grapheme' }).filter((s) => s.length <= 200)
const collection = fc.stringMatching(/^[a-z][a-z0-9_]{0,20}$/)
const value = fc.jsonValue({ maxDepth: 3 })
const data = fc.dictionary(key, value, { maxKeys: 6, noNullPrototype: true })

const put = fc.record(
  { op: fc.constant('put'), mid, collection, id, data, base: seq },
  { requiredKeys: ['op', 'mid', 'collection', 'id', 'data'] },
)
const del = fc.record({ op: fc.constant('del'), mid, collection, id })
const restore = fc.record({ op: fc.constant('restore'), mid, collection, id })
const regen = fc.record({ op: fc.constant('regen'), mid, conversation: id, old: id, message: fc.record({ id, data }) })
const fork = fc.record({
  op: fc.constant('fork'),
  mid,
  from: fc.record({ conversation: id, message: id }),
  conversation: fc.record({ id, data }),
})
const clear = fc.record({ op: fc.constant('clear'), mid, conversation: id })
export const op = fc.oneof(put, del, restore, regen, fork, clear)

const device = fc.record({ id, name: text(200), platform: text(100) }, { requiredKeys: ['id'] })
const token = fc.string({ minLength: 1, maxLength: 200 })

/** One valid frame of each client type, weighted equally. */
export const clientFrame: fc.Arbitrary<Record<string, unknown>> = fc
  .oneof(
    fc.record({ t: fc.constant('auth'), ref: safeInt, token, device }),
    fc.record({ t: fc.constant('refresh'), ref: safeInt, token }),
    fc.record({ t: fc.constant('ping'), ref: safeInt }),
    fc.record(
      { t: fc.constant('sub'), ref: safeInt, since: seq, epoch: text(20), collections: fc.array(collection, { maxLength: 5 }) },
      { requiredKeys: ['t', 'ref', 'since'] },
    ),
    fc.record({ t: fc.constant('push'), ref: safeInt, ops: fc.array(op, { minLength: 1, maxLength: 4 }) }),
    fc.record({ t: fc.constant('ack'), cursor: seq }),
  )
  .map(plain)

/** Every path to a field of a frame outside record `data` (inside it anything goes). */
export function fieldPaths(value: unknown, path: Array<string | number> = []): Array<Array<string | number>> {
  if (value === null || typeof value !== 'object') return []
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value)
  return entries.flatMap(([k, v]) => (k === 'data' ? [[...path, k]] : [[...path, k], ...fieldPaths(v, [...path, k])]))
}

const DELETE = Symbol('delete')

/** Returns a copy of `frame` with the field at `path` replaced (or removed). */
export function mutate(frame: Record<string, unknown>, path: Array<string | number>, replacement: unknown): Record<string, unknown> {
  const copy = structuredClone(frame)
  let parent: any = copy
  for (const k of path.slice(0, -1)) parent = parent[k]
  const last = path.at(-1)!
  if (replacement === DELETE) {
    if (Array.isArray(parent)) parent.splice(last as number, 1)
    else delete parent[last]
  } else parent[last] = replacement
  return copy
}

/** A valid frame with one field replaced by an arbitrary value or removed (may still be valid). */
export const mutatedFrame: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(clientFrame, fc.nat(), fc.oneof(fc.constant(DELETE), fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(-1, 0, 1.5, '', 2 ** 53, -0)))
  .map(([frame, pick, replacement]) => {
    const paths = fieldPaths(frame)
    return mutate(frame, paths[pick % paths.length]!, replacement)
  })

/** A mutated frame the schema refuses: what a live hub must answer with an error and never apply. */
export const invalidFrame = mutatedFrame.filter((f) => !ClientFrame.safeParse(f).success)

/** Maps that look like frames: a `t` from the real types or not, plus arbitrary fields. */
export const frameLike: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    fc.oneof(fc.constantFrom('auth', 'refresh', 'ping', 'sub', 'push', 'ack', 'pong', 'changes', 'error', 'bye', ''), fc.anything({ maxDepth: 0 })),
    fc.dictionary(fc.constantFrom('ref', 'token', 'device', 'since', 'epoch', 'collections', 'ops', 'cursor', 'x'), fc.anything({ maxDepth: 3 }), {
      maxKeys: 5,
      noNullPrototype: true,
    }),
  )
  .map(([t, rest]) => ({ t, ...rest }))

// ---- text that is not well-formed, and NUL ---------------------------------------------------

/** Where a frame holds text: every string value and every map key (`key: true`), record data included. */
export interface TextSite {
  path: Array<string | number>
  key: boolean
}

export function textSites(value: unknown, path: Array<string | number> = []): TextSite[] {
  if (typeof value === 'string') return [{ path, key: false }]
  if (value === null || typeof value !== 'object') return []
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v] as const) : Object.entries(value)
  return entries.flatMap(([k, v]) => [...(typeof k === 'string' ? [{ path: [...path, k], key: true }] : []), ...textSites(v, [...path, k])])
}

/** The three kinds of bad text: a lone surrogate, NUL, bytes that are not UTF-8 (MessagePack only). */
export type BadTextKind = 'surrogate' | 'nul' | 'utf8'
const MARKER = '\u0001BAD\u0001' // 5 bytes, replaced in the encoded frame
const NOT_UTF8 = [0x61, 0xed, 0xa0, 0x80, 0xff] // a surrogate encoded as a character, then a byte never in UTF-8

/** `frame` with the text at `site` spoiled by `kind` (a key is renamed, a value gets the bad text appended). */
export function spoil(frame: Record<string, unknown>, site: TextSite, kind: BadTextKind): Record<string, unknown> {
  const bad = kind === 'surrogate' ? '\ud800' : kind === 'nul' ? '\u0000' : MARKER
  const copy = structuredClone(frame)
  let parent: any = copy
  for (const k of site.path.slice(0, -1)) parent = parent[k]
  const last = site.path.at(-1)!
  if (site.key) {
    const renamed = kind === 'utf8' ? MARKER : `${String(last)}${bad}`
    const rebuilt = Object.fromEntries(Object.entries(parent).map(([k, v]) => [k === last ? renamed : k, v]))
    for (const k of Object.keys(parent)) delete parent[k]
    Object.assign(parent, rebuilt)
  } else parent[last] = kind === 'utf8' ? MARKER : `${parent[last] as string}${bad}`
  return copy
}

/** A frame with bad text at one site, encoded for the wire: `utf8` only as MessagePack, the others either way. */
export interface BadTextFrame {
  data: Uint8Array | string
  binary: boolean
  site: TextSite
  kind: BadTextKind
}

export function encodeSpoiled(frame: Record<string, unknown>, site: TextSite, kind: BadTextKind, binary: boolean, encode: (v: unknown) => Uint8Array): BadTextFrame {
  const spoiled = spoil(frame, site, kind)
  if (!binary && kind !== 'utf8') return { data: JSON.stringify(spoiled), binary, site, kind }
  const bytes = Buffer.from(encode(spoiled))
  const at = bytes.indexOf(MARKER)
  if (at >= 0) bytes.set(NOT_UTF8, at)
  return { data: bytes, binary: true, site, kind }
}

/** Valid frames spoiled at one text site (any field, data included) by one kind of bad text. */
export const badTextFrame = (encode: (v: unknown) => Uint8Array): fc.Arbitrary<BadTextFrame> =>
  fc
    .tuple(clientFrame.filter((f) => !JSON.stringify(f).includes('BAD')), fc.nat(), fc.constantFrom<BadTextKind>('surrogate', 'nul', 'utf8'), fc.boolean())
    .map(([frame, pick, kind, binary]) => {
      const sites = textSites(frame)
      return encodeSpoiled(frame, sites[pick % sites.length]!, kind, binary, encode)
    })

/** The fields the store keeps as text (ids, device fields): NUL there is refused; elsewhere it is text like any other. */
export function isStoredText(site: TextSite): boolean {
  if (site.key || site.path.includes('data')) return false
  const last = site.path.at(-1)
  return ['id', 'conversation', 'old', 'message', 'name', 'platform'].includes(String(last))
}

/** The dotted path a refusal names: `ops.0.id`, or `ops.0.data.(a key)` for a key. */
export const sitePath = (site: TextSite) => (site.key ? [...site.path.slice(0, -1), '(a key)'] : site.path).join('.')
