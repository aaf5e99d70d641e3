import t, { type Test } from 'tap'
import fc from 'fast-check'
import { decodeFrame, encodeMsgpack, type Encoding } from '../../protocol/codec.ts'
import { HubError, isErrorCode } from '../../protocol/errors.ts'
import { parseClientFrame, refOf } from '../../protocol/validate.ts'
import { eachHub, messagePut, waitUntil, type TestUser } from '../helpers/hub.ts'
import { badTextFrame, frameLike, invalidFrame } from '../protocol/arbitraries.ts'

/** One junk frame and the answer the protocol layer says the hub owes it. */
interface Junk {
  data: Uint8Array | string
  code: string
  ref: number | undefined
}

/** What decodeFrame + parseClientFrame make of a frame; undefined when it is a valid frame. */
function expected(data: Uint8Array | string): Omit<Junk, 'data'> | undefined {
  const binary = typeof data !== 'string'
  let raw: Record<string, unknown> | undefined
  try {
    raw = decodeFrame(data, binary)
    parseClientFrame(raw)
    return undefined
  } catch (err) {
    if (!(err instanceof HubError)) throw err
    return { code: err.code, ref: refOf(raw) }
  }
}

/** The refusal message the protocol layer gives a frame. */
function messageOf(data: Uint8Array | string): string {
  try {
    parseClientFrame(decodeFrame(data, typeof data !== 'string'))
    return ''
  } catch (err) {
    return (err as Error).message
  }
}

// ws sends text as UTF-8, so a lone surrogate arrives as U+FFFD: predict on what arrives.
const asSent = (s: string) => Buffer.from(s, 'utf8').toString('utf8')

/** A fixed sample (same seed, same frames every run) of junk the hub must refuse. */
function junkSample(seed: number, count: number): Junk[] {
  const arb = fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength: 200 }),
    fc.string({ maxLength: 120, unit: 'binary' }).map(asSent),
    invalidFrame.map((f) => encodeMsgpack(f)),
    invalidFrame.map((f) => asSent(JSON.stringify(f))),
    frameLike.map((f) => encodeMsgpack(f)),
    // Lone surrogates, NUL and bytes that are not UTF-8 in any field, record data included.
    { arbitrary: badTextFrame(encodeMsgpack).map((b) => b.data), weight: 2 },
  )
  const junk: Junk[] = []
  for (const data of fc.sample(arb, { seed, numRuns: count * 2 })) {
    const verdict = expected(data)
    // A valid frame would be executed; the junk must be refused, so only refusals are sent.
    if (verdict && junk.length < count) junk.push({ data, ...verdict })
  }
  return junk
}

/** Floods one authenticated socket with junk; every frame must get its own coded error, in order. */
async function flood(t: Test, user: TestUser, encoding: Encoding, junk: Junk[]) {
  const client = await user.connect(`fuzzer-${encoding}`, { encoding })
  const errors: Array<{ code: string; ref?: number }> = []
  client.on('error', (f) => errors.push(f))
  for (const j of junk) client.sendRaw(j.data)
  await waitUntil(() => errors.length >= junk.length || client.closeCode !== undefined, 30_000)
  t.equal(client.closeCode, undefined, `${encoding}: the socket stays open through ${junk.length} junk frames`)
  t.equal(errors.length, junk.length, `${encoding}: one error frame per junk frame`)
  t.ok(errors.every((e) => isErrorCode(e.code)), `${encoding}: every error carries a registry code`)
  const mismatches = junk
    .map((j, i) => ({ i, want: { code: j.code, ref: j.ref }, got: { code: errors[i]?.code, ref: errors[i]?.ref } }))
    .filter((m) => m.want.code !== m.got.code || m.want.ref !== m.got.ref)
  t.strictSame(mismatches.slice(0, 5), [], `${encoding}: each error has the code and ref the protocol layer predicts`)
  return client
}

t.test('a live hub answers random junk with coded errors and stores nothing', async (t) => {
  const junk = junkSample(20260101, 400)
  t.equal(junk.length, 400, 'the sample holds 400 refusable frames')
  const kinds = new Set(junk.map((j) => j.code))
  t.ok(kinds.has('bad_frame') && kinds.has('invalid'), 'both undecodable and schema-invalid frames are in the sample')
  const badText = junk.filter((j) => j.code === 'invalid' && /surrogate|UTF-8|NUL/.test(messageOf(j.data)))
  t.ok(badText.length >= 40, `bad text is in the sample (${badText.length} frames)`)

  eachHub(
    t,
    async (t, h) => {
      const alice = await h.newUser()
      const binary = await flood(t, alice, 'msgpack', junk.slice(0, 200))
      const text = await flood(t, alice, 'json', junk.slice(200))

      for (const c of [binary, text]) t.match(await c.ping(), { t: 'pong', cursor: 0 }, 'still answers ping; nothing was stored')
      const first = await binary.push([messagePut(1, 'm1')])
      t.strictSame(first.results, [{ ok: true, seq: 1, id: 'm1' }], 'a valid push applies with mid 1 at seq 1: no junk used a mid or a seq')
      const second = await text.push([messagePut(1, 'm2')])
      t.strictSame(second.results, [{ ok: true, seq: 2, id: 'm2' }], 'the JSON socket pushes too')

      const pulled = await alice.rest.pull()
      t.strictSame(pulled.items.map((i: { id: string }) => i.id), ['m1', 'm2'], 'REST pull shows only the two valid pushes')
      t.equal(pulled.cursor, 2, 'the cursor moved by exactly those two')
      const status = await alice.rest.status()
      t.equal(status.trash, 0, 'nothing in the recycle bin')
    },
    { env: { SYNCHUB_BAD_FRAME_LIMIT: '1000000' } },
  )
})
