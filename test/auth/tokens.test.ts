import t from 'tap'
import { SignJWT, UnsecuredJWT } from 'jose'
import { HubError } from '../../protocol/errors.ts'
import { KEY_PURPOSE, deriveKey } from '../../src/crypto/keys.ts'
import { TOKEN_AUDIENCE, TOKEN_ISSUER, createAccessTokenSigner, hashRefreshToken, newRefreshToken } from '../../src/auth/tokens.ts'
import { ManualClock } from '../helpers/manual-clock.ts'

const SECRET = 'token-test-secret-0123456789abcdef'
const user = { id: 'u-1', username: 'alice', role: 'user' as const }
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')

t.test('a signed token verifies to its claims', async (t) => {
  const clock = new ManualClock(1_700_000_000_000)
  const signer = createAccessTokenSigner(SECRET, clock.now)
  const { token, claims } = await signer.sign(user, 900)
  t.same(claims, { sub: 'u-1', name: 'alice', role: 'user', jti: claims.jti, iat: 1_700_000_000, exp: 1_700_000_900 })
  t.match(claims.jti, /^[0-9a-f-]{36}$/)
  t.same(await signer.verify(token), claims)
  const header = JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString())
  t.same(header, { alg: 'HS256', typ: 'at+jwt' })
  const { jti: other } = (await signer.sign(user, 900)).claims
  t.not(other, claims.jti, 'every token has its own id')
})

t.test('expired tokens are refused, exactly at exp', async (t) => {
  const clock = new ManualClock(1_700_000_000_000)
  const signer = createAccessTokenSigner(SECRET, clock.now)
  const { token } = await signer.sign(user, 60)
  await clock.advance(59_999)
  t.ok(await signer.verify(token))
  await clock.advance(1)
  await t.rejects(signer.verify(token), new HubError('unauthorized', 'access token expired'))
})

t.test('forged, foreign, unsigned and malformed tokens are refused as unauthorized', async (t) => {
  const signer = createAccessTokenSigner(SECRET)
  const { token, claims } = await signer.sign(user, 900)
  const [header, payload, signature] = token.split('.') as [string, string, string]
  const full = { ...claims, iss: TOKEN_ISSUER, aud: TOKEN_AUDIENCE }
  const derived = deriveKey(SECRET, KEY_PURPOSE.accessToken)
  const sign = (body: Record<string, unknown>, key: Uint8Array, hdr: Record<string, unknown> = { alg: 'HS256', typ: 'at+jwt' }) =>
    new SignJWT(body).setProtectedHeader(hdr as never).sign(key)
  const cases: Array<[string, string]> = [
    ['payload edited (role: admin)', `${header}.${b64({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), role: 'admin' })}.${signature}`],
    ['signature of another token', `${header}.${payload}.${(await signer.sign(user, 900)).token.split('.')[2]}`],
    ['alg none', new UnsecuredJWT(full).encode()],
    ['alg none, hand-made with the real payload', `${b64({ alg: 'none', typ: 'at+jwt' })}.${payload}.`],
    ['another secret', (await createAccessTokenSigner('another-secret-another-secret-1234').sign(user, 900)).token],
    ['the raw secret instead of the derived key', await sign(full, new TextEncoder().encode(SECRET))],
    ['the key derived for key encryption', await sign(full, deriveKey(SECRET, KEY_PURPOSE.keyEncryption))],
    ['HS512 under the right key', await sign(full, derived, { alg: 'HS512', typ: 'at+jwt' })],
    ['wrong issuer', await sign({ ...full, iss: 'someone-else' }, derived)],
    ['wrong audience', await sign({ ...full, aud: 'another-api' }, derived)],
    ['not an access token (typ JWT)', await sign(full, derived, { alg: 'HS256', typ: 'JWT' })],
    ['role outside the enum', await sign({ ...full, role: 'root' }, derived)],
    ['no jti', await sign({ ...full, jti: undefined }, derived)],
    ['garbage', 'not-a-token'],
    ['empty', ''],
  ]
  t.ok(await signer.verify(await sign(full, derived)), 'the hand-signing helper itself makes valid tokens')
  for (const [name, bad] of cases) {
    await t.rejects(signer.verify(bad), { name: 'HubError', code: 'unauthorized' }, name)
  }
})

t.test('keys are derived per purpose and need a real secret', async (t) => {
  const a = deriveKey(SECRET, KEY_PURPOSE.accessToken)
  t.equal(a.byteLength, 32)
  t.same(a, deriveKey(SECRET, KEY_PURPOSE.accessToken), 'deterministic')
  t.notSame(a, deriveKey(SECRET, KEY_PURPOSE.keyEncryption), 'another purpose, another key')
  t.notSame(Buffer.from(a).toString(), SECRET)
  t.throws(() => deriveKey('short', KEY_PURPOSE.accessToken), /at least 16 bytes/)
})

t.test('refresh tokens are 32 random bytes; only their SHA-256 is stored', async (t) => {
  const a = newRefreshToken()
  t.match(a, /^[A-Za-z0-9_-]{43}$/)
  t.equal(Buffer.from(a, 'base64url').byteLength, 32)
  t.not(a, newRefreshToken())
  t.match(hashRefreshToken(a), /^[0-9a-f]{64}$/)
  t.equal(hashRefreshToken(a), hashRefreshToken(a))
  t.not(hashRefreshToken(a), hashRefreshToken(newRefreshToken()))
})
