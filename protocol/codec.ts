import { addExtension, Packr, Unpackr } from 'msgpackr'
import { HubError } from './errors.ts'
import { illFormedPath, isUtf8, LONE_SURROGATE, NOT_UTF8 } from './text-rules.ts'

/**
 * Standard MessagePack only: no records, no extension types, maps as plain objects, 64-bit
 * integers as numbers. `undefined` never reaches the wire as msgpackr's private extension.
 */
const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  encodeUndefinedAsNil: true,
  int64AsType: 'number',
  mapsAsObjects: true,
  variableMapSize: true,
})
const unpackr = new Unpackr({
  copyBuffers: true,
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  bundleStrings: false,
  int64AsType: 'number',
  mapsAsObjects: true,
})

export type Encoding = 'msgpack' | 'json'

/**
 * One value already encoded as MessagePack by encodeMsgpack (a stored record's data), to be
 * copied into a msgpack frame byte for byte instead of decoded and encoded again; JSON gets the
 * decoded value (toJSON). pack() checks the whole frame afterwards, so bytes that are not one
 * plain value never leave as a frame.
 */
export class PackedValue {
  constructor(readonly bytes: Uint8Array) {}
  toJSON(): unknown {
    return unpackOne(this.bytes)
  }
}

// Writes the bytes themselves, no extension header (`type` only names the registration; the
// decoder refuses every extension before msgpackr sees it, see unpackOne). msgpackr calls a
// `pack` that takes a second argument with a function that reserves room in its output; its
// typings know only the one-argument form.
addExtension({
  Class: PackedValue,
  type: 0x70,
  pack(value: PackedValue, allocate: (size: number) => { target: Uint8Array; position: number }) {
    const { target, position } = allocate(value.bytes.length)
    target.set(value.bytes, position)
  },
} as unknown as Parameters<typeof addExtension>[0])

/**
 * Walks msgpack bytes value by value without decoding (no recursion, one pass). msgpackr writes
 * every integer outside [-2^31, 2^32) as float64; with `fixInts` those doubles that hold safe
 * integers are rewritten in place as int64/uint64 (the same 9 bytes), so typed decoders (Dart,
 * Kotlin, Swift) see times and seqs as integers. With `checkText` every str (map keys included)
 * must be UTF-8 ('text' otherwise; bin values are not text and are not looked at). Answers why
 * the bytes are not one plain value of well-formed text.
 */
function walk(buf: Uint8Array, fixInts: boolean, checkText = false): 'ok' | 'extension' | 'malformed' | 'text' {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  let pos = 0
  let pending = 1
  while (pending > 0) {
    if (pos >= buf.length) return 'malformed'
    const b = buf[pos++]!
    pending--
    let skip = 0
    let str = false
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) skip = 0
    else if (b <= 0x8f) pending += 2 * (b & 0x0f)
    else if (b <= 0x9f) pending += b & 0x0f
    else if (b <= 0xbf) {
      skip = b & 0x1f
      str = true
    }
    else if (b === 0xc1) return 'malformed'
    else if (b >= 0xc4 && b <= 0xc6) skip = -(1 << (b - 0xc4)) // bin: length follows
    else if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) return 'extension'
    else if (b === 0xca) skip = 4
    else if (b === 0xcb) {
      if (pos + 8 > buf.length) return 'malformed'
      const v = view.getFloat64(pos)
      if (fixInts && Number.isSafeInteger(v) && !Object.is(v, -0)) {
        buf[pos - 1] = v < 0 ? 0xd3 : 0xcf
        if (v < 0) view.setBigInt64(pos, BigInt(v))
        else view.setBigUint64(pos, BigInt(v))
      }
      skip = 8
    } else if (b >= 0xcc && b <= 0xcf) skip = 1 << (b - 0xcc)
    else if (b >= 0xd0 && b <= 0xd3) skip = 1 << (b - 0xd0)
    else if (b >= 0xd9 && b <= 0xdb) {
      skip = -(1 << (b - 0xd9)) // str: length follows
      str = true
    }
    else {
      // array16/32, map16/32: a count follows
      const wide = b === 0xdd || b === 0xdf
      if (pos + (wide ? 4 : 2) > buf.length) return 'malformed'
      const n = wide ? view.getUint32(pos) : view.getUint16(pos)
      pos += wide ? 4 : 2
      pending += b >= 0xde ? 2 * n : n
    }
    if (skip < 0) {
      const width = -skip
      if (pos + width > buf.length) return 'malformed'
      skip = width === 1 ? buf[pos]! : width === 2 ? view.getUint16(pos) : view.getUint32(pos)
      pos += width
    }
    if (str && checkText && pos + skip <= buf.length && !utf8(buf, pos, pos + skip)) return 'text'
    pos += skip
  }
  return pos === buf.length ? 'ok' : 'malformed'
}

/** Platform-native and strict: many times faster than the loop on long or non-ASCII text. */
const fatalDecoder = new TextDecoder('utf-8', { fatal: true })

/**
 * The UTF-8 check of str values: the portable loop for short strings (where handing bytes to
 * the platform would cost more than it saves), the platform's strict decoder for long ones.
 * Both run everywhere (Node and browsers), so protocol/ needs nothing handed in.
 */
function utf8(buf: Uint8Array, start: number, end: number): boolean {
  if (end - start <= 64) return isUtf8(buf, start, end)
  try {
    fatalDecoder.decode(buf.subarray(start, end))
    return true
  } catch {
    return false
  }
}

/**
 * The path (`ops.0.data.title`) of the first str in `buf` that is not UTF-8: the slow path of a
 * refusal, run only once walk found one. Map keys that are not strings show as `?`.
 */
function notUtf8Path(buf: Uint8Array): string {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const keys = new TextDecoder()
  const levels: Array<{ map: boolean; left: number; index: number; key: string; atKey: boolean }> = []
  const path = (atKey: boolean) =>
    [...levels.map((l, i) => (i === levels.length - 1 && atKey ? undefined : l.map ? l.key : String(l.index))), atKey ? '(a key)' : undefined]
      .filter((p) => p !== undefined)
      .join('.')
  // One value is complete: move its container on, closing the containers it completes.
  const completed = () => {
    for (let l = levels.at(-1); l; l = levels.at(-1)) {
      if (l.map && l.atKey) return void (l.atKey = false)
      l.atKey = l.map
      l.index++
      if (--l.left > 0) return
      levels.pop()
    }
  }
  let pos = 0
  while (pos < buf.length) {
    const top = levels.at(-1)
    const atKey = top?.map === true && top.atKey
    const b = buf[pos++]!
    let len = 0
    let count = -1 // a container's items (map: entries)
    let map = false
    let str = false
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3)) len = 0
    else if (b <= 0x9f) [count, map] = [b & 0x0f, b <= 0x8f]
    else if (b <= 0xbf) [len, str] = [b & 0x1f, true]
    else if (b >= 0xc4 && b <= 0xc6) [len, pos] = readLength(view, pos, 1 << (b - 0xc4))
    else if (b >= 0xd9 && b <= 0xdb) [len, pos, str] = [...readLength(view, pos, 1 << (b - 0xd9)), true]
    else if (b >= 0xdc) [count, pos, map] = [...readLength(view, pos, b === 0xdc || b === 0xde ? 2 : 4), b >= 0xde]
    else len = b === 0xca ? 4 : b === 0xcb ? 8 : b >= 0xcc && b <= 0xcf ? 1 << (b - 0xcc) : 1 << (b - 0xd0)
    if (str && !isUtf8(buf, pos, pos + len)) return path(atKey) || '(the value)'
    if (atKey) top!.key = str ? keys.decode(buf.subarray(pos, pos + len)) : '?'
    pos += len
    if (count > 0) levels.push({ map, left: count, index: 0, key: '', atKey: map })
    else completed()
  }
  return '(unknown)'
}

function readLength(view: DataView, pos: number, width: number): [number, number] {
  const n = width === 1 ? view.getUint8(pos) : width === 2 ? view.getUint16(pos) : view.getUint32(pos)
  return [n, pos + width]
}

function pack(value: unknown): Uint8Array {
  const bytes = packr.pack(value)
  if (walk(bytes, true) !== 'ok') throw new Error('encoded MessagePack is not one plain value (a PackedValue held bad bytes)')
  return bytes
}

/**
 * Refuses msgpackr's private types (Date, BigInt, Set… arrive as extensions) before decoding.
 * With `checkText`, a value holding a str that is not UTF-8 is decoded all the same (msgpackr
 * would put U+FFFD or a lone surrogate in its place) and marked as refused (textProblem).
 */
function unpackOne(bytes: Uint8Array, checkText = false): unknown {
  const shape = walk(bytes, false, checkText)
  if (shape === 'extension') throw new HubError('bad_frame', 'MessagePack extension types are not allowed')
  if (shape === 'malformed') throw new HubError('bad_frame', 'not exactly one MessagePack value')
  const value = unpackr.unpack(bytes)
  if (shape === 'text') markText(value, `${notUtf8Path(bytes)}: ${NOT_UTF8}`)
  return value
}

/**
 * Why a decoded client value's text is refused, kept beside the value rather than thrown at
 * once, so the usual order of checks holds (an unknown frame type is still `bad_frame`) and
 * the refusal can echo the frame's `ref`. Read with textProblem, after the frame type.
 */
const textProblems = new WeakMap<object, string>()
function markText(value: unknown, problem: string): void {
  // A bare scalar is never a frame or a body: it is refused for its shape first.
  if (value !== null && typeof value === 'object') textProblems.set(value, problem)
}

/** `path: reason` when the decoded value holds text that is not well-formed; see decodeFrame. */
export function textProblem(value: object): string | undefined {
  return textProblems.get(value)
}

export function encodeMsgpack(value: unknown): Uint8Array {
  return pack(value)
}

/** Decodes stored or trusted MessagePack: text is taken as it is (see decodeInput for clients'). */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  return unpackOne(bytes)
}

/**
 * Decodes a body a client sent (MessagePack, or JSON text when `json`), checking its text: the
 * answer's textProblem says where a str is not UTF-8 or a JSON escape left a lone surrogate.
 */
export function decodeInput(bytes: Uint8Array | string, json: boolean): unknown {
  if (!json) return unpackOne(bytes as Uint8Array, true)
  const text = typeof bytes === 'string' ? bytes : fatalUtf8.decode(bytes)
  const value: unknown = JSON.parse(text)
  // Text that decoded as UTF-8 is well-formed; only a \u escape can make a lone surrogate.
  if (text.includes('\\u')) {
    const at = illFormedPath(value)
    if (at !== undefined) markText(value, `${at}: ${LONE_SURROGATE}`)
  }
  return value
}

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true })

/** Encodes a frame for a socket of the given encoding: binary msgpack or JSON text. */
export function encodeFrame(frame: object, encoding: Encoding): Uint8Array | string {
  return encoding === 'msgpack' ? pack(frame) : JSON.stringify(frame)
}

/**
 * Decodes one WebSocket frame into a plain object. Anything that is not exactly one map
 * (trailing bytes, a bare scalar, an array, broken bytes, a text frame that is not UTF-8) is a
 * `bad_frame`. `checkText` (the hub reading a client) also checks every string, map keys
 * included, and marks a frame holding text that is not well-formed (textProblem), which
 * parseClientFrame refuses as `invalid`; a client reading the hub takes text as it comes.
 */
export function decodeFrame(data: Uint8Array | string, isBinary: boolean, checkText = true): Record<string, unknown> {
  let value: unknown
  try {
    if (isBinary && typeof data !== 'string') value = checkText ? decodeInput(data, false) : unpackOne(data)
    else if (checkText) value = decodeInput(data, true)
    else value = JSON.parse(typeof data === 'string' ? data : new TextDecoder().decode(data))
  } catch (err) {
    if (err instanceof HubError) throw err
    throw new HubError('bad_frame', `frame is not a single ${isBinary ? 'MessagePack' : 'JSON'} map`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    throw new HubError('bad_frame', 'frame must be a map')
  }
  return value as Record<string, unknown>
}
