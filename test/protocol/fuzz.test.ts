import t from 'tap'
import fc from 'fast-check'
import { decode, encode } from '@msgpack/msgpack'
import { isDeepStrictEqual } from 'node:util'
import { decodeFrame, encodeMsgpack } from '../../protocol/codec.ts'
import { HubError, isErrorCode } from '../../protocol/errors.ts'
import { ClientFrame } from '../../protocol/frames.ts'
import { parseClientFrame } from '../../protocol/validate.ts'
import { badTextFrame, clientFrame, frameLike, isStoredText, mutatedFrame, sitePath } from './arbitraries.ts'

// Fixed seeds and run counts: the same cases on every run, and the file stays around 2 s.
const runs = (numRuns: number, seed: number) => ({ numRuns, seed, endOnFailure: true })

type Outcome = { frame: ClientFrame } | { code: string }

/**
 * What the hub's receive path does with one socket frame: a valid ClientFrame or a HubError
 * with a registry code. Anything else (another exception) fails the property.
 */
function receive(data: Uint8Array | string, isBinary: boolean): Outcome {
  try {
    return { frame: parseClientFrame(decodeFrame(data, isBinary)) }
  } catch (err) {
    if (!(err instanceof HubError)) throw new Error(`not a HubError: ${String(err)}`, { cause: err })
    if (!isErrorCode(err.code)) throw new Error(`code ${String(err.code)} is not in the registry`)
    return { code: err.code }
  }
}

/** An accepted frame must really be one; a refusal must carry a code from the registry. */
function wellFormed(out: Outcome): boolean {
  return 'frame' in out ? ClientFrame.safeParse(out.frame).success : isErrorCode(out.code)
}

t.test('random bytes: a frame or a registry error, never another exception', async (t) => {
  const bytes = fc.uint8Array({ maxLength: 300 })
  fc.assert(fc.property(bytes, (b) => wellFormed(receive(b, true))), runs(3000, 1))
  fc.assert(fc.property(bytes, (b) => wellFormed(receive(b, false))), runs(1000, 2))
  fc.assert(fc.property(fc.string({ maxLength: 200 }), (s) => wellFormed(receive(s, false))), runs(1000, 3))
  // Bytes that start like a map reach deeper into the decoder than uniform noise.
  const mapLike = fc.tuple(fc.constantFrom(0x81, 0x82, 0x83, 0xde, 0xdf), fc.uint8Array({ maxLength: 120 }))
  fc.assert(fc.property(mapLike, ([head, rest]) => wellFormed(receive(Uint8Array.of(head, ...rest), true))), runs(3000, 4))
  t.pass('3 properties held on 8000 random inputs')
})

t.test('valid frames are accepted unchanged in both encodings', async (t) => {
  fc.assert(
    fc.property(clientFrame, (frame) => {
      for (const [data, binary] of [[encodeMsgpack(frame), true], [JSON.stringify(frame), false]] as const) {
        const out = receive(data, binary)
        if (!('frame' in out) || !isDeepStrictEqual(out.frame, frame)) return false
      }
      return true
    }),
    runs(1000, 5),
  )
  t.pass('held on 1000 frames')
})

t.test('frames with one field mutated: a frame or a registry error', async (t) => {
  let refused = 0
  fc.assert(
    fc.property(mutatedFrame, (frame) => {
      const outs = [receive(encodeMsgpack(frame), true), receive(JSON.stringify(frame), false)]
      if ('code' in outs[0]!) refused++
      // Both encodings of the same map reach the same verdict.
      return outs.every(wellFormed) && isDeepStrictEqual(Object.keys(outs[0]!), Object.keys(outs[1]!))
    }),
    runs(2000, 6),
  )
  t.ok(refused > 1000, `most mutations are refused (${refused} of 2000)`)
})

t.test('bad text in any field: a lone surrogate or broken UTF-8 is invalid naming the field, NUL only where the store keeps text', async (t) => {
  const counts = { surrogate: 0, nul: 0, utf8: 0, nulAccepted: 0 }
  fc.assert(
    fc.property(badTextFrame(encodeMsgpack), (b) => {
      const out = receive(b.data, b.binary)
      // Spoiling the type itself (its value or its key) leaves a frame of no known type.
      const onType = b.site.path.length === 1 && b.site.path[0] === 't'
      counts[b.kind]++
      if (onType) return isDeepStrictEqual(out, { code: 'bad_frame' })
      if (b.kind !== 'nul') {
        if (!('code' in out) || out.code !== 'invalid') return false
        return refusal(b.data, b.binary).includes(`${sitePath(b.site)}: ${b.kind === 'utf8' || b.binary ? 'not valid UTF-8' : 'not well-formed Unicode'}`)
      }
      if ('frame' in out) counts.nulAccepted++
      // NUL in a stored text field is refused naming it; anywhere else it is text (or a key the schema does not know).
      if (isStoredText(b.site)) return 'code' in out && out.code === 'invalid' && refusal(b.data, b.binary).includes(`${sitePath(b.site)}: must not contain NUL`)
      return wellFormed(out)
    }),
    runs(3000, 12),
  )
  t.ok(counts.surrogate > 500 && counts.nul > 500 && counts.utf8 > 500, `every kind was tried (${JSON.stringify(counts)})`)
  t.ok(counts.nulAccepted > 100, 'NUL inside record data and free text is accepted')
})

/** The message of the refusal of one frame. */
function refusal(data: Uint8Array | string, isBinary: boolean): string {
  try {
    parseClientFrame(decodeFrame(data, isBinary))
    return ''
  } catch (err) {
    return (err as Error).message
  }
}

t.test('frame-like maps: a frame or a registry error', async (t) => {
  fc.assert(fc.property(frameLike, (frame) => wellFormed(receive(encodeMsgpack(frame), true))), runs(2000, 7))
  fc.assert(fc.property(frameLike, (frame) => wellFormed(receive(encode(frame, { ignoreUndefined: true }), true))), runs(1000, 8))
  t.pass('held on 3000 maps')
})

t.test('a truncated or bit-flipped valid frame', async (t) => {
  const truncated = fc.tuple(clientFrame, fc.nat()).map(([frame, cut]) => {
    const bytes = encodeMsgpack(frame)
    return bytes.subarray(0, cut % bytes.length)
  })
  // No strict prefix of one msgpack value is a complete value.
  fc.assert(fc.property(truncated, (b) => isDeepStrictEqual(receive(b, true), { code: 'bad_frame' })), runs(1000, 9))
  const flipped = fc.tuple(clientFrame, fc.nat(), fc.integer({ min: 0, max: 7 })).map(([frame, at, bit]) => {
    const bytes = Uint8Array.from(encodeMsgpack(frame))
    bytes[at % bytes.length]! ^= 1 << bit
    return bytes
  })
  fc.assert(fc.property(flipped, (b) => wellFormed(receive(b, true))), runs(2000, 10))
  t.pass('held on 3000 damaged frames')
})

t.test('whatever the decoder accepts re-encodes as plain msgpack', async (t) => {
  // Random msgpack documents, extension types included: anything decoded must come back out
  // as standard msgpack that another library reads to the same value.
  const ext = fc.record({ type: fc.integer({ min: -128, max: 127 }), data: fc.uint8Array({ maxLength: 12 }) })
  const doc = fc.oneof(
    fc.anything({ maxDepth: 3, withDate: true, withBigInt: true, withTypedArray: true }).map((v) => ({ t: 'ping', v })),
    ext.map((e) => Uint8Array.of(0x82, 0xa1, 0x74, 0xa4, ...Buffer.from('ping'), 0xa1, 0x76, 0xc7, e.data.length, e.type & 0xff, ...e.data)),
  )
  let accepted = 0
  fc.assert(
    fc.property(doc, (value) => {
      let bytes: Uint8Array
      try {
        bytes = value instanceof Uint8Array ? value : encode(value, { ignoreUndefined: true })
      } catch {
        return true // @msgpack/msgpack itself cannot write it (e.g. a huge BigInt)
      }
      let decoded: Record<string, unknown>
      try {
        decoded = decodeFrame(bytes, true)
      } catch (err) {
        return err instanceof HubError && err.code === 'bad_frame'
      }
      accepted++
      return isDeepStrictEqual(plainCopy(decode(encodeMsgpack(decoded))), plainCopy(decoded))
    }),
    runs(2000, 11),
  )
  t.ok(accepted > 500, `many documents were accepted and re-checked (${accepted})`)
})

/** Comparable form: every byte string a plain Uint8Array (Node hands out Buffers), objects plain. */
function plainCopy(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Uint8Array(value)
  if (Array.isArray(value)) return value.map(plainCopy)
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainCopy(v)]))
  return value
}
