import { addExtension, Packr, Unpackr } from 'msgpackr'
import { HubError } from './errors.ts'

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
 * Kotlin, Swift) see times and seqs as integers. Answers why the bytes are not one plain value.
 */
function walk(buf: Uint8Array, fixInts: boolean): 'ok' | 'extension' | 'malformed' {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  let pos = 0
  let pending = 1
  while (pending > 0) {
    if (pos >= buf.length) return 'malformed'
    const b = buf[pos++]!
    pending--
    let skip = 0
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) skip = 0
    else if (b <= 0x8f) pending += 2 * (b & 0x0f)
    else if (b <= 0x9f) pending += b & 0x0f
    else if (b <= 0xbf) skip = b & 0x1f
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
    else if (b >= 0xd9 && b <= 0xdb) skip = -(1 << (b - 0xd9)) // str: length follows
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
    pos += skip
  }
  return pos === buf.length ? 'ok' : 'malformed'
}

function pack(value: unknown): Uint8Array {
  const bytes = packr.pack(value)
  if (walk(bytes, true) !== 'ok') throw new Error('encoded MessagePack is not one plain value (a PackedValue held bad bytes)')
  return bytes
}

/** Refuses msgpackr's private types (Date, BigInt, Set… arrive as extensions) before decoding. */
function unpackOne(bytes: Uint8Array): unknown {
  const shape = walk(bytes, false)
  if (shape === 'extension') throw new HubError('bad_frame', 'MessagePack extension types are not allowed')
  if (shape !== 'ok') throw new HubError('bad_frame', 'not exactly one MessagePack value')
  return unpackr.unpack(bytes)
}

export function encodeMsgpack(value: unknown): Uint8Array {
  return pack(value)
}

export function decodeMsgpack(bytes: Uint8Array): unknown {
  return unpackOne(bytes)
}

/** Encodes a frame for a socket of the given encoding: binary msgpack or JSON text. */
export function encodeFrame(frame: object, encoding: Encoding): Uint8Array | string {
  return encoding === 'msgpack' ? pack(frame) : JSON.stringify(frame)
}

/**
 * Decodes one WebSocket frame into a plain object. Anything that is not exactly one map
 * (trailing bytes, a bare scalar, an array, broken bytes) is a `bad_frame`.
 */
export function decodeFrame(data: Uint8Array | string, isBinary: boolean): Record<string, unknown> {
  let value: unknown
  try {
    if (isBinary && typeof data !== 'string') {
      value = unpackOne(data)
    } else {
      value = JSON.parse(typeof data === 'string' ? data : Buffer.from(data).toString('utf8'))
    }
  } catch (err) {
    if (err instanceof HubError) throw err
    throw new HubError('bad_frame', `frame is not a single ${isBinary ? 'MessagePack' : 'JSON'} map`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value) || value instanceof Uint8Array) {
    throw new HubError('bad_frame', 'frame must be a map')
  }
  return value as Record<string, unknown>
}
