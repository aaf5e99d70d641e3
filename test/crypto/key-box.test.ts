import t from 'tap'
import { deriveKey, KEY_PURPOSE } from '../../src/crypto/keys.ts'
import { KeyBox, KeyBoxError } from '../../src/crypto/key-box.ts'
import { CollectionRegistry } from '../../src/sync/collections.ts'
import { RecordCodec } from '../../src/sync/record-codec.ts'

const OLD = 'old-secret-0123456789-abcdefghijklmnopq'
const NEW = 'new-secret-0123456789-abcdefghijklmnopq'
const bytes = (s: string) => new TextEncoder().encode(s)
const text = (b: Uint8Array) => new TextDecoder().decode(b)

t.test('seal and open round-trip; every seal has its own IV', async (t) => {
  const box = new KeyBox(NEW)
  const sealed = box.seal(bytes('sk-live-secret'))
  t.match(sealed, /^enc:v1:[\w-]{8}:[\w-]{16}:[\w-]+$/, 'self-describing: version, kid, iv, ciphertext+tag (base64url)')
  t.notMatch(sealed, /sk-live-secret/)
  t.equal(text(box.open(sealed)), 'sk-live-secret')
  t.not(box.seal(bytes('sk-live-secret')), sealed, 'the same plaintext seals differently each time')
  t.equal(text(box.open(box.seal(new Uint8Array()))), '', 'the empty value round-trips')
  t.equal(KeyBox.kidOf(sealed), box.kid)
  t.equal(KeyBox.kidOf('sk-live-secret'), undefined, 'plain values are not sealed')
})

t.test('the kid names the key without revealing it', async (t) => {
  const box = new KeyBox(NEW)
  const key = Buffer.from(deriveKey(NEW, KEY_PURPOSE.keyEncryption))
  t.equal(box.kid.length, 8)
  for (const form of [key.toString('base64url'), key.toString('hex'), key.toString('base64')]) t.notOk(form.includes(box.kid), 'kid is not a piece of the key')
  t.equal(new KeyBox(NEW).kid, box.kid, 'stable across processes')
  t.not(new KeyBox(OLD).kid, box.kid, 'another secret, another kid')
})

t.test('a flipped byte anywhere fails with a clear error, never garbage', async (t) => {
  const box = new KeyBox(NEW)
  const sealed = box.seal(bytes('sk-live-secret'))
  const [, , kid, iv, body] = sealed.split(':') as [string, string, string, string, string]
  const flip = (s: string, i: number) => {
    const b = Buffer.from(s, 'base64url')
    b[i]! ^= 0x01
    return b.toString('base64url')
  }
  const raw = Buffer.from(body, 'base64url')
  for (let i = 0; i < raw.byteLength; i++) {
    t.throws(() => box.open(`enc:v1:${kid}:${iv}:${flip(body, i)}`), { name: 'KeyBoxError', message: /failed authentication/ }, `ciphertext/tag byte ${i}`)
  }
  t.throws(() => box.open(`enc:v1:${kid}:${flip(iv, 0)}:${body}`), /failed authentication/, 'IV')
  t.throws(() => box.open(`enc:v1:${kid}:${iv}:${body.slice(0, 10)}`), KeyBoxError, 'truncated')
  t.throws(() => box.open(`enc:v1:AAAAAAAA:${iv}:${body}`), /key id AAAAAAAA/, 'an unknown kid is named')
  t.throws(() => box.open('sk-live-secret'), /not a sealed value/)
  t.throws(() => box.open(`enc:v2:${kid}:${iv}:${body}`), /not a sealed value/)
})

t.test('after a rotation the kid picks the previous secret', async (t) => {
  const before = new KeyBox(OLD)
  const sealedOld = before.seal(bytes('old key'))
  const rotated = new KeyBox(NEW, OLD)
  t.equal(rotated.kid, new KeyBox(NEW).kid, 'the current key seals')
  t.equal(text(rotated.open(sealedOld)), 'old key', 'values under the previous secret still open')
  const sealedNew = rotated.seal(bytes('new key'))
  t.equal(KeyBox.kidOf(sealedNew), rotated.kid)
  t.throws(() => before.open(sealedNew), KeyBoxError, 'the old box cannot open what the new one sealed')
  t.throws(() => new KeyBox(NEW).open(sealedOld), /neither SYNCHUB_SECRET's nor SYNCHUB_SECRET_PREVIOUS's/, 'once the previous secret is gone, old values fail loudly')
  t.equal(new KeyBox(NEW, NEW).kid, rotated.kid, 'previous = current is harmless')
})

t.test('record codec: only the rule’s secret fields are sealed, opened and resealed', async (t) => {
  const registry = new CollectionRegistry()
  const keys = registry.get('provider_keys')!
  t.same(keys.secretFields, ['key'])
  const oldBox = new KeyBox(OLD)
  const box = new KeyBox(NEW, OLD)
  const data = { provider: 'openai', key: 'sk-live-secret', label: 'work' }
  const codec = new RecordCodec(registry, box)
  const sealData = (rule: typeof keys, d: Record<string, unknown>, under: KeyBox) => new RecordCodec(registry, under).seal(rule, d)
  const openData = (rule: typeof keys, d: Record<string, unknown>, under: KeyBox) => new RecordCodec(registry, under).open(rule, d)
  const resealData = (rule: typeof keys, d: Record<string, unknown>) => codec.reseal(rule, d)

  const sealed = sealData(keys, data, box)
  t.match(sealed, { provider: 'openai', label: 'work', key: /^enc:v1:/ })
  t.same(data, { provider: 'openai', key: 'sk-live-secret', label: 'work' }, 'the input is not modified')
  t.same(openData(keys, sealed, box), data)
  const conversations = registry.get('conversations')!
  const plain = { title: 'hello' }
  t.equal(sealData(conversations, plain, box), plain, 'collections without secret fields pass through untouched')
  t.same(sealData(keys, { provider: 'x' }, box), { provider: 'x' }, 'an absent field stays absent')
  const odd = { provider: 'x', key: { nested: [1, 'two'] } }
  t.same(openData(keys, sealData(keys, odd, box), box), odd, 'any msgpack value round-trips')

  t.equal(resealData(keys, sealed), undefined, 'already under the current key: nothing to do')
  const resealed = resealData(keys, sealData(keys, data, oldBox))!
  t.equal(KeyBox.kidOf(resealed.key), box.kid, 'old kid → current kid')
  t.same(openData(keys, resealed, new KeyBox(NEW)), data, 'opens without the previous secret')
  const legacy = resealData(keys, data)!
  t.equal(KeyBox.kidOf(legacy.key), box.kid, 'a value stored before encryption gets sealed')
  t.same(openData(keys, data, box), data, 'and reads as it is until then')
  const tampered = String(sealed.key).replace(/:(.)([^:]*)$/, (_, c: string, rest: string) => `:${c === 'A' ? 'B' : 'A'}${rest}`)
  t.throws(() => openData(keys, { ...sealed, key: tampered }, box), KeyBoxError, 'a tampered field throws')
  t.throws(() => new RecordCodec(registry).seal(keys, data), /no key box/, 'a codec without a key box refuses a secret field')
  t.equal(new RecordCodec(registry).seal(conversations, plain), plain, 'and serves collections without one')
})
