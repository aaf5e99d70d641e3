import t, { type Test } from 'tap'
import { pino } from 'pino'
import { decodeMsgpack } from '../../protocol/codec.ts'
import { AdminInviteList, AdminUserList, AdminUserView, ErrorBody, InviteView, MeResponse, RegisterResponse, TokenResponse, UserView } from '../../protocol/rest.ts'
import { createAuthService, type AuthServiceOptions } from '../../src/auth/service.ts'
import { createMemoryBus } from '../../src/bus/memory.ts'
import type { ControlMessage } from '../../src/bus/port.ts'
import { adminRoutes } from '../../src/http/admin-routes.ts'
import { buildApp } from '../../src/http/app.ts'
import { authRoutes } from '../../src/http/auth-routes.ts'
import { AuthStore } from '../../src/store/auth-store.ts'
import { UserAdmin } from '../../src/sync/user-admin.ts'
import { eachStore } from '../contracts/adapters.ts'
import { ManualClock } from '../helpers/manual-clock.ts'
import { TEST_SCRYPT } from '../helpers/scrypt.ts'

const SECRET = 'routes-test-secret-0123456789abcdef'
const PASSWORD = 'correct horse battery'

eachStore(async (t, db) => {
  const clock = new ManualClock()
  // Control events the admin routes set off: a disabled user's sockets close on every node.
  const bus = createMemoryBus()
  const control: ControlMessage[] = []
  bus.onControl((m) => void control.push(m))

  /** The real app shell (error mapping, 404s) around the two route modules and a real store. */
  const appWith = (over: Partial<AuthServiceOptions> = {}) => {
    const auth = createAuthService({ store: new AuthStore(db), secret: SECRET, registration: 'open', clock, passwordParams: TEST_SCRYPT, ...over })
    const app = buildApp({
      log: pino({ level: 'silent' }),
      isReady: () => true,
      routes: [authRoutes(auth, { maxBodyBytes: 4096 }), adminRoutes(auth, new UserAdmin({ auth, bus }), { maxBodyBytes: 4096 })],
    })
    const call = async (method: string, path: string, opts: { json?: unknown; body?: string; type?: string; token?: string; headers?: Record<string, string> } = {}) => {
      const headers: Record<string, string> = { ...opts.headers }
      if (opts.json !== undefined) headers['content-type'] = 'application/json'
      if (opts.type) headers['content-type'] = opts.type
      if (opts.token) headers.authorization = `Bearer ${opts.token}`
      const res = await app.request(path, { method, headers, body: opts.json !== undefined ? JSON.stringify(opts.json) : opts.body })
      const text = await res.text()
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined, text }
    }
    return { auth, app, call }
  }
  const { auth, app, call } = appWith()
  let n = 0
  const uniqueName = (base = 'user') => `${base}${++n}_${Math.random().toString(36).slice(2, 6)}`
  /** An error answer: the registry's status and exactly `{error:{code, message}}`. */
  const isError = (t: Test, res: { status: number; body: unknown }, status: number, code: string, message?: string | RegExp) => {
    t.equal(res.status, status, `status ${status}`)
    t.ok(ErrorBody.strict().safeParse(res.body).success, 'the error shape')
    t.match(res.body, { error: { code, message: message ?? String } })
  }
  const signUp = async () => {
    const username = uniqueName()
    const reg = await call('POST', '/v1/auth/register', { json: { username, password: PASSWORD } })
    const login = await call('POST', '/v1/auth/login', { json: { username, password: PASSWORD } })
    return { id: reg.body.user.id as string, username, tokens: login.body as { access_token: string; refresh_token: string } }
  }

  t.test('register: 201 with exactly {user:{id, username, role}}', async (t) => {
    const username = uniqueName('Dana')
    const res = await call('POST', '/v1/auth/register', { json: { username, password: PASSWORD } })
    t.equal(res.status, 201)
    t.ok(RegisterResponse.strict().extend({ user: UserView.strict() }).safeParse(res.body).success, res.text)
    t.match(res.body, { user: { username, role: 'user' } })
    isError(t, await call('POST', '/v1/auth/register', { json: { username: username.toLowerCase(), password: PASSWORD } }), 400, 'invalid', 'username is already taken')
    isError(t, await call('POST', '/v1/auth/register', { json: { username: uniqueName(), password: 'short' } }), 400, 'invalid', /password/)
    isError(t, await call('POST', '/v1/auth/register', { json: { password: PASSWORD } }), 400, 'invalid', /username/)
    isError(t, await call('POST', '/v1/auth/register', { body: '{"username":', type: 'application/json' }), 400, 'bad_frame')
    isError(t, await call('POST', '/v1/auth/register', { body: JSON.stringify({ username: 'x'.repeat(5000) }), type: 'application/json' }), 413, 'too_large')
  })

  t.test('invite-only registration over REST', async (t) => {
    const invited = appWith({ registration: 'invite' })
    isError(t, await invited.call('POST', '/v1/auth/register', { json: { username: uniqueName(), password: PASSWORD } }), 403, 'forbidden', 'registration requires an invite')
    const invite = await invited.auth.createInvite(null, { role: 'user', expires_in: 60 })
    const ok = await invited.call('POST', '/v1/auth/register', { json: { username: uniqueName(), password: PASSWORD, invite: invite.code } })
    t.equal(ok.status, 201)
    isError(t, await invited.call('POST', '/v1/auth/register', { json: { username: uniqueName(), password: PASSWORD, invite: invite.code } }), 403, 'forbidden', 'invite has already been used')
  })

  t.test('login: JSON and the OAuth2 password form; failures are one 401', async (t) => {
    const username = uniqueName()
    await call('POST', '/v1/auth/register', { json: { username, password: PASSWORD } })
    const json = await call('POST', '/v1/auth/login', { json: { username, password: PASSWORD } })
    t.equal(json.status, 200)
    t.ok(TokenResponse.strict().safeParse(json.body).success, json.text)
    t.equal(json.body.token_type, 'bearer')
    t.equal(json.body.expires_in, 900, 'default access TTL: 15 minutes')
    t.equal(json.headers.get('cache-control'), 'no-store')

    const form = new URLSearchParams({ grant_type: 'password', username, password: PASSWORD, scope: 'ignored' }).toString()
    const viaForm = await call('POST', '/v1/auth/login', { body: form, type: 'application/x-www-form-urlencoded' })
    t.equal(viaForm.status, 200)
    t.ok(TokenResponse.strict().safeParse(viaForm.body).success)
    const noGrant = new URLSearchParams({ username, password: PASSWORD }).toString()
    isError(t, await call('POST', '/v1/auth/login', { body: noGrant, type: 'application/x-www-form-urlencoded' }), 400, 'invalid', /grant_type/)
    const otherGrant = new URLSearchParams({ grant_type: 'client_credentials', username, password: PASSWORD }).toString()
    isError(t, await call('POST', '/v1/auth/login', { body: otherGrant, type: 'application/x-www-form-urlencoded' }), 400, 'invalid', /grant_type/)

    const wrong = await call('POST', '/v1/auth/login', { json: { username, password: 'wrong password!' } })
    const unknown = await call('POST', '/v1/auth/login', { json: { username: uniqueName('ghost'), password: PASSWORD } })
    isError(t, wrong, 401, 'unauthorized', 'wrong username or password')
    t.same(unknown.body, wrong.body, 'an unknown user gets the very same answer')
    t.equal(unknown.status, wrong.status)

    const packed = await app.request('/v1/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/msgpack' },
      body: JSON.stringify({ username, password: PASSWORD }),
    })
    t.equal(packed.headers.get('content-type'), 'application/msgpack')
    t.ok(TokenResponse.safeParse(decodeMsgpack(new Uint8Array(await packed.arrayBuffer()))).success, 'msgpack when asked')
  })

  t.test('me: the profile with a token, 401 without or with a bad one', async (t) => {
    const user = await signUp()
    const me = await call('GET', '/v1/auth/me', { token: user.tokens.access_token })
    t.equal(me.status, 200)
    t.ok(MeResponse.strict().safeParse(me.body).success, me.text)
    t.match(me.body, { id: user.id, username: user.username, role: 'user' })
    isError(t, await call('GET', '/v1/auth/me'), 401, 'unauthorized', 'missing bearer token')
    isError(t, await call('GET', '/v1/auth/me', { token: 'not-a-token' }), 401, 'unauthorized', 'invalid access token')
    const [h, p, s] = user.tokens.access_token.split('.')
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString())
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url')}.${s}`
    isError(t, await call('GET', '/v1/auth/me', { token: forged }), 401, 'unauthorized')
    const other = createAuthService({ store: new AuthStore(db), secret: 'some-other-hub-secret-0123456789', registration: 'open', clock, passwordParams: TEST_SCRYPT })
    const foreign = await other.login({ username: user.username, password: PASSWORD })
    isError(t, await call('GET', '/v1/auth/me', { token: foreign.access_token }), 401, 'unauthorized', 'invalid access token')
  })

  t.test('refresh: rotation, and a reused token kills the family', async (t) => {
    const user = await signUp()
    const first = await call('POST', '/v1/auth/refresh', { json: { refresh_token: user.tokens.refresh_token } })
    t.equal(first.status, 200)
    t.ok(TokenResponse.strict().safeParse(first.body).success)
    t.equal(first.headers.get('cache-control'), 'no-store')
    t.not(first.body.refresh_token, user.tokens.refresh_token)
    isError(t, await call('POST', '/v1/auth/refresh', { json: { refresh_token: user.tokens.refresh_token } }), 401, 'unauthorized')
    isError(t, await call('POST', '/v1/auth/refresh', { json: { refresh_token: first.body.refresh_token } }), 401, 'unauthorized')
    isError(t, await call('POST', '/v1/auth/refresh', { json: {} }), 400, 'invalid', /refresh_token/)
  })

  t.test('logout: 204, the refresh family and the access token both dead', async (t) => {
    const user = await signUp()
    const res = await call('POST', '/v1/auth/logout', { json: { refresh_token: user.tokens.refresh_token }, token: user.tokens.access_token })
    t.equal(res.status, 204)
    t.equal(res.text, '')
    isError(t, await call('GET', '/v1/auth/me', { token: user.tokens.access_token }), 401, 'unauthorized', 'access token revoked')
    isError(t, await call('POST', '/v1/auth/refresh', { json: { refresh_token: user.tokens.refresh_token } }), 401, 'unauthorized')
    t.equal((await call('POST', '/v1/auth/logout', { json: { refresh_token: 'unknown' } })).status, 204, 'idempotent, reveals nothing')
  })

  t.test('admin routes: admins only; users, disable, invites', async (t) => {
    const adminName = uniqueName('admin')
    await auth.upsertAdmin(adminName, 'admin-password-123')
    const admin = (await call('POST', '/v1/auth/login', { json: { username: adminName, password: 'admin-password-123' } })).body.access_token as string
    const user = await signUp()

    isError(t, await call('GET', '/v1/admin/users'), 401, 'unauthorized')
    isError(t, await call('GET', '/v1/admin/users', { token: user.tokens.access_token }), 403, 'forbidden', 'admin only')
    isError(t, await call('POST', '/v1/admin/invites', { json: {}, token: user.tokens.access_token }), 403, 'forbidden')
    isError(t, await call('PATCH', `/v1/admin/users/${user.id}`, { json: { disabled: true }, token: user.tokens.access_token }), 403, 'forbidden')

    const list = await call('GET', '/v1/admin/users?limit=1000', { token: admin })
    t.equal(list.status, 200)
    t.ok(AdminUserList.strict().extend({ items: AdminUserView.strict().array() }).safeParse(list.body).success, 'no hashes or extra fields')
    t.ok(list.body.items.some((u: { id: string }) => u.id === user.id))
    t.notMatch(list.text, /scrypt/, 'no password hash anywhere in the answer')
    const paged = await call('GET', '/v1/admin/users?limit=1', { token: admin })
    t.equal(paged.body.items.length, 1)
    t.type(paged.body.next, 'string')
    isError(t, await call('GET', '/v1/admin/users?limit=0', { token: admin }), 400, 'invalid', /limit/)

    const patched = await call('PATCH', `/v1/admin/users/${user.id}`, { json: { disabled: true }, token: admin })
    t.equal(patched.status, 200)
    t.match(patched.body, { id: user.id, disabled: true, role: 'user' })
    t.same(control.slice(-1), [{ type: 'user_disabled', user: user.id }], 'every node is told the user is disabled')
    isError(t, await call('GET', '/v1/auth/me', { token: user.tokens.access_token }), 403, 'forbidden', 'user is disabled')
    isError(t, await call('POST', '/v1/auth/login', { json: { username: user.username, password: PASSWORD } }), 403, 'forbidden')
    t.equal((await call('PATCH', `/v1/admin/users/${user.id}`, { json: { disabled: false }, token: admin })).status, 200)
    t.equal((await call('GET', '/v1/auth/me', { token: user.tokens.access_token })).status, 200, 're-enabled at once')

    const promoted = await call('PATCH', `/v1/admin/users/${user.id}`, { json: { role: 'admin' }, token: admin })
    t.match(promoted.body, { role: 'admin' })
    t.equal((await call('GET', '/v1/admin/invites', { token: user.tokens.access_token })).status, 200, 'the promotion applies to the token already held')

    isError(t, await call('PATCH', '/v1/admin/users/no-such-user', { json: { disabled: true }, token: admin }), 404, 'not_found')
    isError(t, await call('PATCH', `/v1/admin/users/${user.id}`, { json: {}, token: admin }), 400, 'invalid', /disabled or role/)
    isError(t, await call('PATCH', `/v1/admin/users/${user.id}`, { json: { role: 'root' }, token: admin }), 400, 'invalid', /role/)
    const adminId = (await call('GET', '/v1/auth/me', { token: admin })).body.id
    isError(t, await call('PATCH', `/v1/admin/users/${adminId}`, { json: { disabled: true }, token: admin }), 400, 'invalid', 'admins cannot disable or demote themselves')

    const created = await call('POST', '/v1/admin/invites', { json: { role: 'admin', expires_in: 3600 }, token: admin })
    t.equal(created.status, 201)
    t.ok(InviteView.strict().safeParse(created.body).success, created.text)
    t.match(created.body, { role: 'admin' })
    t.equal(created.body.expires_at, clock.now() + 3_600_000, 'expires when asked')
    const defaults = await call('POST', '/v1/admin/invites', { json: {}, token: admin })
    t.match(defaults.body, { role: 'user' }, 'role defaults to user')
    t.equal(defaults.body.expires_at, clock.now() + 7 * 24 * 3_600_000, 'expiry defaults to 7 days')
    isError(t, await call('POST', '/v1/admin/invites', { json: { expires_in: -1 }, token: admin }), 400, 'invalid', /expires_in/)

    const invites = await call('GET', '/v1/admin/invites', { token: admin })
    t.ok(AdminInviteList.safeParse(invites.body).success, invites.text)
    t.match(
      invites.body.items.find((i: { code: string }) => i.code === created.body.code),
      { role: 'admin', created_by: adminId, used_by: null, used_at: null },
    )
    const reg = await call('POST', '/v1/auth/register', { json: { username: uniqueName(), password: PASSWORD, invite: created.body.code } })
    t.match(reg.body, { user: { role: 'admin' } }, 'an admin invite makes an admin')
  })

  t.test('routes outside these modules are the shell’s 404', async (t) => {
    isError(t, await call('GET', '/v1/auth/nope'), 404, 'not_found')
  })
})
