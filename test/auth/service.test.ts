import t from 'tap'
import { HubError } from '../../protocol/errors.ts'
import { TokenResponse } from '../../protocol/rest.ts'
import { hashPassword, verifyPassword } from '../../src/auth/passwords.ts'
import { createAuthService, type AuthService, type AuthServiceOptions } from '../../src/auth/service.ts'
import { hashRefreshToken } from '../../src/auth/tokens.ts'
import { createMemoryBus } from '../../src/bus/memory.ts'
import type { ControlMessage } from '../../src/bus/port.ts'
import { AuthStore } from '../../src/store/auth-store.ts'
import type { SqlClient } from '../../src/store/sql-client.ts'
import { UserAdmin } from '../../src/sync/user-admin.ts'
import { eachStore } from '../contracts/adapters.ts'
import { ManualClock } from '../helpers/manual-clock.ts'
import { TEST_SCRYPT } from '../helpers/scrypt.ts'

const SECRET = 'service-test-secret-0123456789abcdef'
const PASSWORD = 'correct horse battery'

/** Counts queries that read a user's status, to see the verify cache at work. */
function countingStatusReads(db: SqlClient): { db: SqlClient; reads: () => number } {
  let reads = 0
  const query: SqlClient['query'] = (text, params) => {
    if (/^SELECT username, role, disabled FROM users/.test(text)) reads++
    return db.query(text, params)
  }
  return { db: Object.assign(Object.create(db), { query, kind: db.kind }) as SqlClient, reads: () => reads }
}

eachStore(async (t, db) => {
  let n = 0
  const uniqueName = (base = 'user') => `${base}${++n}_${Math.random().toString(36).slice(2, 6)}`
  const service = (over: Partial<AuthServiceOptions> = {}): AuthService => createAuthService({ store: new AuthStore(db), secret: SECRET, registration: 'open', passwordParams: TEST_SCRYPT, ...over })
  const loggedIn = async (auth: AuthService) => {
    const username = uniqueName()
    const user = await auth.register({ username, password: PASSWORD })
    return { user, username, tokens: await auth.login({ username, password: PASSWORD }) }
  }

  t.test('open registration creates the user and its sync counter together', async (t) => {
    const auth = service()
    const username = uniqueName('Alice')
    const user = await auth.register({ username, password: PASSWORD })
    t.same(user, { id: user.id, username, role: 'user' }, 'exactly id, username, role')
    const { rows } = await db.query<{ password_hash: string; disabled: boolean }>('SELECT password_hash, disabled FROM users WHERE id = $1', [user.id])
    t.match(rows[0]!.password_hash, /^\$scrypt\$/, 'stored as a scrypt hash')
    t.notMatch(rows[0]!.password_hash, /correct horse/)
    t.equal(rows[0]!.disabled, false)
    const state = await db.query<{ seq: number; min_valid_seq: number; epoch: string; scope: unknown }>(
      'SELECT seq, min_valid_seq, epoch, scope FROM user_state WHERE user_id = $1',
      [user.id],
    )
    t.match(state.rows[0], { seq: 0, min_valid_seq: 0, epoch: /^[A-Za-z0-9_-]{8,}$/, scope: null })
    const other = await auth.register({ username: uniqueName(), password: PASSWORD })
    const otherState = await db.query<{ epoch: string }>('SELECT epoch FROM user_state WHERE user_id = $1', [other.id])
    t.not(otherState.rows[0]!.epoch, state.rows[0]!.epoch, 'each user gets a random epoch')
    t.same(await auth.me(user.id), { id: user.id, username, role: 'user', created_at: (await auth.me(user.id)).created_at })
  })

  t.test('a username is taken whatever its letter case; nothing is left behind', async (t) => {
    const auth = service()
    const username = uniqueName('Bob')
    await auth.register({ username, password: PASSWORD })
    const count = async () => (await db.query<{ n: number }>('SELECT (SELECT count(*) FROM users)::int8 + (SELECT count(*) FROM user_state)::int8 AS n')).rows[0]!.n
    const before = await count()
    await t.rejects(auth.register({ username: username.toUpperCase(), password: PASSWORD }), new HubError('invalid', 'username is already taken'))
    t.equal(await count(), before, 'no user and no counter row were added')
  })

  t.test('bad registration input is invalid, with the field named', async (t) => {
    const auth = service()
    await t.rejects(auth.register({ username: uniqueName(), password: 'short' }), { code: 'invalid', message: /^body: password: / })
    await t.rejects(auth.register({ username: 'has space', password: PASSWORD }), { code: 'invalid', message: /^body: username: / })
  })

  t.test('invite-only registration: single use, unexpired, its role applied', async (t) => {
    const clock = new ManualClock()
    const auth = service({ registration: 'invite', clock })
    await t.rejects(auth.register({ username: uniqueName(), password: PASSWORD }), new HubError('forbidden', 'registration requires an invite'))
    await t.rejects(auth.register({ username: uniqueName(), password: PASSWORD, invite: 'made-up' }), new HubError('forbidden', 'invite is not valid'))

    const adminInvite = await auth.createInvite(null, { role: 'admin', expires_in: 3600 })
    t.match(adminInvite, { code: /^[A-Za-z0-9_-]{22}$/, role: 'admin', expires_at: clock.now() + 3_600_000 })
    const taken = uniqueName()
    const first = await auth.register({ username: taken, password: PASSWORD, invite: adminInvite.code })
    t.equal(first.role, 'admin', "the invite's role is applied")
    await t.rejects(auth.register({ username: uniqueName(), password: PASSWORD, invite: adminInvite.code }), new HubError('forbidden', 'invite has already been used'))
    const used = (await auth.listInvites()).find((i) => i.code === adminInvite.code)
    t.match(used, { used_by: first.id, used_at: clock.now(), created_by: null })

    const expiring = await auth.createInvite(null, { role: 'user', expires_in: 60 })
    await clock.advance(60_000)
    await t.rejects(auth.register({ username: uniqueName(), password: PASSWORD, invite: expiring.code }), new HubError('forbidden', 'invite has expired'))

    const spare = await auth.createInvite(null, { role: 'user', expires_in: 60 })
    await t.rejects(auth.register({ username: taken.toUpperCase(), password: PASSWORD, invite: spare.code }), { code: 'invalid' })
    const second = await auth.register({ username: uniqueName(), password: PASSWORD, invite: spare.code })
    t.equal(second.role, 'user', 'a failed registration did not use up the invite')
  })

  t.test('two registrations racing on one invite: exactly one wins', async (t) => {
    const auth = service({ registration: 'invite' })
    const invite = await auth.createInvite(null, { role: 'user', expires_in: 600 })
    const results = await Promise.allSettled([0, 1, 2].map(() => auth.register({ username: uniqueName(), password: PASSWORD, invite: invite.code })))
    t.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
    t.match(results.filter((r) => r.status === 'rejected'), [{ reason: { code: 'forbidden' } }, { reason: { code: 'forbidden' } }])
  })

  t.test('closed registration refuses everyone', async (t) => {
    const auth = service({ registration: 'none' })
    const invite = await auth.createInvite(null, { role: 'user', expires_in: 600 })
    await t.rejects(auth.register({ username: uniqueName(), password: PASSWORD, invite: invite.code }), new HubError('forbidden', 'registration is closed'))
  })

  t.test('login: tokens on success; wrong user and wrong password look the same', async (t) => {
    const auth = service({ accessTtlSec: 600 })
    const username = uniqueName('Carol')
    const user = await auth.register({ username, password: PASSWORD })
    const tokens = await auth.login({ username: username.toLowerCase(), password: PASSWORD })
    t.ok(TokenResponse.strict().safeParse(tokens).success, 'the TokenResponse shape, nothing more')
    t.equal(tokens.expires_in, 600)
    t.match(await auth.verifyAccess(tokens.access_token), { userId: user.id, username, role: 'user' })

    await t.rejects(auth.login({ username, password: 'wrong password!' }), new HubError('unauthorized', 'wrong username or password'))
    await t.rejects(auth.login({ username: uniqueName('nobody'), password: PASSWORD }), new HubError('unauthorized', 'wrong username or password'))

  })

  t.test('an unknown user costs one password check like a wrong password, against a hash of the same cost', async (t) => {
    // The real scrypt, watched: which stored hash each login checks the password against.
    const checked: string[] = []
    const auth = service({ passwords: { hash: hashPassword, verify: (password, stored) => (checked.push(stored), verifyPassword(password, stored)) } })
    const { username } = await loggedIn(auth)
    checked.length = 0
    await t.rejects(auth.login({ username, password: 'wrong password!' }), new HubError('unauthorized', 'wrong username or password'))
    await t.rejects(auth.login({ username: uniqueName('nobody'), password: PASSWORD }), new HubError('unauthorized', 'wrong username or password'))
    t.equal(checked.length, 2, 'one check each')
    const cost = (hash: string) => /^\$scrypt\$(ln=\d+,r=\d+,p=\d+)\$/.exec(hash)?.[1]
    t.ok(cost(checked[0]!), 'the wrong password is checked against the user’s scrypt hash')
    t.equal(cost(checked[1]!), cost(checked[0]!), 'the unknown user’s against a scrypt hash of the same parameters')
    t.not(checked[1], checked[0], 'which is not the user’s')
  })

  t.test('access tokens: forged, wrong-key and expired are unauthorized', async (t) => {
    const clock = new ManualClock()
    const auth = service({ accessTtlSec: 60, clock })
    const { tokens } = await loggedIn(auth)
    const [header, payload, signature] = tokens.access_token.split('.') as [string, string, string]
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString())
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url')}.${signature}`
    const none = `${Buffer.from('{"alg":"none","typ":"at+jwt"}').toString('base64url')}.${payload}.`
    const otherHub = createAuthService({ store: new AuthStore(db), secret: 'a-different-secret-0123456789abcdef', registration: 'open' })
    await t.rejects(auth.verifyAccess(forged), { code: 'unauthorized' }, 'edited payload')
    await t.rejects(auth.verifyAccess(none), { code: 'unauthorized' }, 'alg none')
    await t.rejects(otherHub.verifyAccess(tokens.access_token), { code: 'unauthorized' }, 'a hub with another secret')
    t.ok(await auth.verifyAccess(tokens.access_token))
    await clock.advance(60_000)
    await t.rejects(auth.verifyAccess(tokens.access_token), new HubError('unauthorized', 'access token expired'))
  })

  t.test('a token of a user that no longer exists is unauthorized', async (t) => {
    const auth = service()
    const { user, tokens } = await loggedIn(auth)
    await db.query('DELETE FROM users WHERE id = $1', [user.id])
    await t.rejects(auth.verifyAccess(tokens.access_token), { code: 'unauthorized' })
  })

  t.test('refresh rotates on every use; a reused token revokes its family', async (t) => {
    const auth = service()
    const { user, username, tokens } = await loggedIn(auth)
    const second = await auth.refresh(tokens.refresh_token)
    t.not(second.refresh_token, tokens.refresh_token, 'a new refresh token')
    t.not(second.access_token, tokens.access_token, 'a new access token')
    t.match(await auth.verifyAccess(second.access_token), { userId: user.id })
    const third = await auth.refresh(second.refresh_token)

    const otherDevice = await auth.login({ username, password: PASSWORD })

    await t.rejects(auth.refresh(tokens.refresh_token), new HubError('unauthorized', 'refresh token is not valid'), 'the first token, already used')
    await t.rejects(auth.refresh(third.refresh_token), { code: 'unauthorized' }, 'the newest token of the family died with it')
    const family = await db.query<{ revoked_at: number | null }>(
      'SELECT revoked_at FROM refresh_tokens WHERE family = (SELECT family FROM refresh_tokens WHERE token_hash = $1)',
      [hashRefreshToken(tokens.refresh_token)],
    )
    t.equal(family.rows.length, 3)
    t.ok(family.rows.every((r) => r.revoked_at !== null), 'every token of the family is revoked')
    t.ok(await auth.refresh(otherDevice.refresh_token), "another login's family is untouched")

    const phone = await auth.login({ username, password: PASSWORD }, 'phone-1')
    const rotated = await auth.refresh(phone.refresh_token)
    const tagged = await db.query<{ device_id: string | null }>('SELECT device_id FROM refresh_tokens WHERE token_hash = ANY($1::text[])', [
      [phone.refresh_token, rotated.refresh_token].map(hashRefreshToken),
    ])
    t.same(tagged.rows.map((r) => r.device_id), ['phone-1', 'phone-1'], 'the device given at login stays with the family')
    const plain = await db.query('SELECT 1 FROM refresh_tokens WHERE token_hash = $1 OR token_hash = $2', [phone.refresh_token, rotated.refresh_token])
    t.equal(plain.rows.length, 0, 'tokens are never stored in the clear')
    await t.rejects(auth.refresh('never-issued'), { code: 'unauthorized' })
  })

  t.test('a refresh token stops working when it expires', async (t) => {
    const clock = new ManualClock()
    const auth = service({ refreshTtlSec: 3600, clock })
    const { tokens } = await loggedIn(auth)
    await clock.advance(3_599_000)
    const next = await auth.refresh(tokens.refresh_token)
    await clock.advance(3_600_000)
    await t.rejects(auth.refresh(next.refresh_token), new HubError('unauthorized', 'refresh token expired'))
    t.ok((await auth.pruneRefreshTokens()) >= 2, 'expired rows are pruned')
    const left = await db.query('SELECT 1 FROM refresh_tokens WHERE token_hash = ANY($1::text[])', [[tokens.refresh_token, next.refresh_token].map(hashRefreshToken)])
    t.equal(left.rows.length, 0)
  })

  t.test('logout revokes the family and denylists the access token until it expires', async (t) => {
    const clock = new ManualClock()
    const auth = service({ accessTtlSec: 300, clock })
    const { username, tokens } = await loggedIn(auth)
    const elsewhere = await auth.login({ username, password: PASSWORD })
    await auth.logout(tokens.refresh_token, tokens.access_token)
    await t.rejects(auth.verifyAccess(tokens.access_token), new HubError('unauthorized', 'access token revoked'))
    await t.rejects(auth.refresh(tokens.refresh_token), { code: 'unauthorized' })
    t.ok(await auth.verifyAccess(elsewhere.access_token), 'the other session lives on')
    t.ok(await auth.refresh(elsewhere.refresh_token))
    await t.resolves(auth.logout(tokens.refresh_token, 'garbage'), 'logging out twice, or with a bad access token, is fine')
    await clock.advance(300_000)
    await t.rejects(auth.verifyAccess(tokens.access_token), new HubError('unauthorized', 'access token expired'))
  })

  t.test('a disabled user is forbidden; disabling clears the status cache at once and tells every node', async (t) => {
    const clock = new ManualClock()
    const counted = countingStatusReads(db)
    const auth = createAuthService({ store: new AuthStore(counted.db), secret: SECRET, registration: 'open', passwordParams: TEST_SCRYPT, clock })
    const bus = createMemoryBus()
    const control: ControlMessage[] = []
    bus.onControl((m) => void control.push(m))
    const admin = new UserAdmin({ auth, bus })
    const { user, username, tokens } = await loggedIn(auth)

    for (let i = 0; i < 20; i++) await auth.verifyAccess(tokens.access_token)
    t.equal(counted.reads(), 1, 'twenty verifications within the TTL read the row once')
    await clock.advance(1000)
    await auth.verifyAccess(tokens.access_token)
    t.equal(counted.reads(), 2, 'the cache lives at most one second')

    // A change made behind the service's back (another node) shows within the TTL.
    await db.query('UPDATE users SET disabled = true WHERE id = $1', [user.id])
    t.ok(await auth.verifyAccess(tokens.access_token), 'still cached')
    await clock.advance(1000)
    await t.rejects(auth.verifyAccess(tokens.access_token), new HubError('forbidden', 'user is disabled'))

    await admin.update('an-admin', user.id, { disabled: false })
    t.ok(await auth.verifyAccess(tokens.access_token), 're-enabled: accepted at once, no waiting for the TTL')
    t.same(control, [], 'enabling does not announce a disable')

    const view = await admin.update('an-admin', user.id, { disabled: true })
    t.match(view, { id: user.id, username, role: 'user', disabled: true })
    t.same(control, [{ type: 'user_disabled', user: user.id }], 'every node is told')
    await t.rejects(auth.verifyAccess(tokens.access_token), new HubError('forbidden', 'user is disabled'), 'refused at once, same clock')
    await t.rejects(auth.login({ username, password: PASSWORD }), new HubError('forbidden', 'user is disabled'))
    await t.rejects(auth.login({ username, password: 'wrong password!' }), { code: 'unauthorized' }, 'a wrong password does not learn the account is disabled')
    await t.rejects(auth.refresh(tokens.refresh_token), { code: 'unauthorized' }, 'refresh tokens were revoked')
    await t.rejects(admin.update('an-admin', 'no-such-user', { disabled: true }), { code: 'not_found' })
    t.equal(control.length, 1, 'a user that does not exist is not announced')
    await t.rejects(admin.update(user.id, user.id, { disabled: true }), new HubError('invalid', 'admins cannot disable or demote themselves'))
  })

  t.test('roles come from the row, so a demotion takes effect without new tokens', async (t) => {
    const auth = service()
    const { user, tokens } = await loggedIn(auth)
    await auth.updateUser(user.id, { role: 'admin' })
    t.match(await auth.verifyAccess(tokens.access_token), { role: 'admin' })
    await auth.updateUser(user.id, { role: 'user' })
    t.match(await auth.verifyAccess(tokens.access_token), { role: 'user' })
  })

  t.test('listUsers pages through users in name order, without secrets', async (t) => {
    const auth = service()
    const all: Array<{ id: string; username: string }> = []
    let after: string | undefined
    for (;;) {
      const page = await auth.listUsers({ limit: 3, after })
      all.push(...page.items)
      for (const item of page.items) t.same(Object.keys(item).sort(), ['created_at', 'disabled', 'id', 'role', 'username'])
      if (!page.next) break
      after = page.next
    }
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int8 AS n FROM users')
    t.equal(all.length, rows[0]!.n, 'every user exactly once')
    const names = all.map((u) => u.username.toLowerCase())
    t.same(names, [...names].sort(), 'ordered by lowercase name')
  })

  t.test('upsertAdmin creates the admin, then keeps it an enabled admin with the configured password', async (t) => {
    const auth = service()
    const name = uniqueName('root')
    const created = await auth.upsertAdmin(name, 'first-admin-password')
    t.match(created, { username: name, role: 'admin', disabled: false })
    const state = await db.query('SELECT seq FROM user_state WHERE user_id = $1', [created.id])
    t.equal(state.rows.length, 1, 'the admin has a sync counter too')
    await auth.updateUser(created.id, { role: 'user', disabled: true })
    const again = await auth.upsertAdmin(name.toUpperCase(), 'second-admin-password')
    t.match(again, { id: created.id, role: 'admin', disabled: false }, 'same user, restored')
    await t.rejects(auth.login({ username: name, password: 'first-admin-password' }), { code: 'unauthorized' })
    const tokens = await auth.login({ username: name, password: 'second-admin-password' })
    t.match(await auth.verifyAccess(tokens.access_token), { userId: created.id, role: 'admin' })
    await t.rejects(auth.upsertAdmin('x', 'second-admin-password'), { code: 'invalid' })

    const racing = uniqueName('root')
    const both = await Promise.all([auth.upsertAdmin(racing, 'racing-password-1'), auth.upsertAdmin(racing, 'racing-password-1')])
    t.equal(both[0].id, both[1].id, 'two nodes starting together end with one admin')
  })
})
