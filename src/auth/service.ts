import type { z } from 'zod'
import { HubError } from '../../protocol/errors.ts'
import { LoginBody, Password, RegisterBody, Username, type MeResponse, type TokenResponse, type UserView } from '../../protocol/rest.ts'
import { parseOrThrow } from '../../protocol/validate.ts'
import { createMemoryDenylist, type TokenDenylist } from '../cluster/denylist.ts'
import type { AuthStore } from '../store/auth-store.ts'
import { systemClock, type Clock } from '../time/clock.ts'
import type { AdminInvite } from '../store/invite-store.ts'
import type { AdminUser, UserRow } from '../store/user-store.ts'
import { claimInvite, createInvite, type Invite } from './invites.ts'
import { checkNewPassword, DEFAULT_SCRYPT, hashPassword, needsRehash, verifyPassword, type ScryptParams } from './passwords.ts'
import type { AccessVerifier, Principal } from './principal.ts'
import { RefreshTokens } from './refresh-tokens.ts'
import type { Role } from './roles.ts'
import { createAccessTokenSigner } from './tokens.ts'
import { UserStatusCache } from './user-status-cache.ts'

/** `open`: anyone may register; `invite`: an unused, unexpired invite is required; `none`: nobody registers. */
export type RegistrationMode = 'open' | 'invite' | 'none'

/** How passwords are hashed and checked (scrypt, passwords.ts); a test may wrap it to watch the calls. */
export interface PasswordHasher {
  hash(password: string, params: ScryptParams): Promise<string>
  verify(password: string, stored: string): Promise<boolean>
}

export interface AuthServiceOptions {
  store: AuthStore
  /** The operator secret; the signing key is derived from it (HKDF, own purpose label). */
  secret: string | Uint8Array
  registration: RegistrationMode
  /** Access-token lifetime; default 15 minutes. */
  accessTtlSec?: number
  /** Refresh-token lifetime, renewed on every rotation; default 30 days. */
  refreshTtlSec?: number
  /** Where logged-out access tokens are remembered; in-process by default. */
  denylist?: TokenDenylist
  /** How long a user's disabled flag and role may be served from memory; at most 1000 ms. */
  statusCacheMs?: number
  passwordParams?: ScryptParams
  passwords?: PasswordHasher
  /** Token lifetimes, invite expiry and the status cache run on it. */
  clock?: Clock
}

export type Tokens = z.infer<typeof TokenResponse>
export type User = z.infer<typeof UserView>
export type Me = z.infer<typeof MeResponse>
export type { AdminUser } from '../store/user-store.ts'
export type { AdminInvite } from '../store/invite-store.ts'
export type { Invite } from './invites.ts'

export interface AuthService extends AccessVerifier {
  register(input: { username: string; password: string; invite?: string }): Promise<User>
  /** Same `unauthorized` answer, after one password check alike, for an unknown user and a wrong password. */
  login(input: { username: string; password: string }, deviceId?: string): Promise<Tokens>
  /** Rotates the refresh token; a reused one revokes its whole family. */
  refresh(refreshToken: string): Promise<Tokens>
  /** Revokes the refresh token's family; the access token, when given and valid, is refused until it expires. */
  logout(refreshToken: string, accessToken?: string): Promise<void>
  me(userId: string): Promise<Me>
  createInvite(createdBy: string | null, invite: { role: Role; expires_in: number }): Promise<Invite>
  listInvites(): Promise<AdminInvite[]>
  listUsers(page: { limit: number; after?: string }): Promise<{ items: AdminUser[]; next?: string }>
  /**
   * Changes a user's disabled flag and/or role; disabling revokes its refresh tokens. This node
   * stops trusting its cached status at once; telling the other nodes is the caller's
   * (sync/user-admin.ts).
   */
  updateUser(userId: string, patch: { disabled?: boolean; role?: Role }): Promise<AdminUser>
  /** Creates the configured admin, or makes the existing user of that name an enabled admin with that password. */
  upsertAdmin(username: string, password: string): Promise<AdminUser>
  /** Drops the cached status of a user (a change made on another node). */
  forgetUser(userId: string): void
  /** Deletes expired refresh tokens; returns how many. */
  pruneRefreshTokens(): Promise<number>
}

export const DEFAULT_ACCESS_TTL_SEC = 15 * 60
export const DEFAULT_REFRESH_TTL_SEC = 30 * 24 * 3600
const BAD_LOGIN = 'wrong username or password'
const INVITES_LISTED = 1000
const SCRYPT: PasswordHasher = { hash: hashPassword, verify: verifyPassword }

export function createAuthService(opts: AuthServiceOptions): AuthService {
  const { store } = opts
  const clock = opts.clock ?? systemClock
  const now = clock.now
  const accessTtlSec = opts.accessTtlSec ?? DEFAULT_ACCESS_TTL_SEC
  const passwordParams = opts.passwordParams ?? DEFAULT_SCRYPT
  const passwords = opts.passwords ?? SCRYPT
  const signer = createAccessTokenSigner(opts.secret, now)
  const denylist = opts.denylist ?? createMemoryDenylist(clock)
  const refreshTokens = new RefreshTokens(store, opts.refreshTtlSec ?? DEFAULT_REFRESH_TTL_SEC, now)
  const status = new UserStatusCache((id) => store.users.status(id), Math.min(opts.statusCacheMs ?? 1000, 1000), now)
  // An unknown username is checked against this, so it costs one scrypt like a wrong password.
  // Made up front so even the first such login takes no longer than a real one.
  const dummyHash = passwords.hash('not-a-password-of-anyone', passwordParams)

  const tokensFor = async (user: { id: string; username: string; role: Role }, refreshToken: string): Promise<Tokens> => {
    const { token } = await signer.sign(user, accessTtlSec)
    return { access_token: token, refresh_token: refreshToken, token_type: 'bearer', expires_in: accessTtlSec }
  }
  const insertUser = async (tables: Pick<AuthStore, 'users'>, user: { username: string; passwordHash: string; role: Role; now: number }): Promise<UserRow> => {
    const created = await tables.users.insert(user)
    if (!created) throw new HubError('invalid', 'username is already taken')
    return created
  }

  const service: AuthService = {
    async verifyAccess(token: string): Promise<Principal> {
      const claims = await signer.verify(token)
      if (await denylist.has(claims.jti)) throw new HubError('unauthorized', 'access token revoked')
      const user = await status.get(claims.sub)
      if (!user) throw new HubError('unauthorized', 'invalid access token')
      if (user.disabled) throw new HubError('forbidden', 'user is disabled')
      // Role and name come from the row, so a demotion takes effect without waiting for expiry.
      return { userId: claims.sub, username: user.username, role: user.role, tokenId: claims.jti, expiresAt: claims.exp * 1000 }
    },

    async register(input) {
      const body = parseOrThrow(RegisterBody, input, 'body')
      if (opts.registration === 'none') throw new HubError('forbidden', 'registration is closed')
      if (opts.registration !== 'open' && body.invite === undefined) throw new HubError('forbidden', 'registration requires an invite')
      await checkNewPassword(body.password, { username: body.username })
      const passwordHash = await passwords.hash(body.password, passwordParams)
      const user = await store.transaction(async (tx) => {
        const t = now()
        const role = body.invite === undefined ? 'user' : await claimInvite(tx.invites, body.invite, t)
        const created = await insertUser(tx, { username: body.username, passwordHash, role, now: t })
        if (body.invite !== undefined) await tx.invites.markUsed(body.invite, created.id, t)
        return created
      })
      return { id: user.id, username: user.username, role: user.role }
    },

    async login(input, deviceId) {
      const body = parseOrThrow(LoginBody, input, 'body')
      const user = await store.users.findByName(body.username)
      const ok = await passwords.verify(body.password, user?.password_hash ?? (await dummyHash))
      if (!user || !ok) throw new HubError('unauthorized', BAD_LOGIN)
      if (user.disabled) throw new HubError('forbidden', 'user is disabled')
      if (needsRehash(user.password_hash, passwordParams)) await store.users.setPasswordHash(user.id, await passwords.hash(body.password, passwordParams))
      return tokensFor(user, await refreshTokens.issue(user.id, deviceId))
    },

    async refresh(refreshToken) {
      const outcome = await refreshTokens.rotate(refreshToken)
      if (!outcome.ok) {
        if (outcome.reason === 'disabled') throw new HubError('forbidden', 'user is disabled')
        throw new HubError('unauthorized', outcome.reason === 'expired' ? 'refresh token expired' : 'refresh token is not valid')
      }
      return tokensFor(outcome.user, outcome.token)
    },

    async logout(refreshToken, accessToken) {
      await refreshTokens.revokeFamilyOf(refreshToken)
      if (accessToken === undefined) return
      // An access token that does not verify needs no denylisting: it is refused anyway.
      const claims = await signer.verify(accessToken).catch(() => undefined)
      if (claims) await denylist.add(claims.jti, claims.exp * 1000)
    },

    async me(userId) {
      const user = await store.users.view(userId)
      if (!user) throw new HubError('not_found', 'no such user')
      return { id: user.id, username: user.username, role: user.role, created_at: user.created_at }
    },

    createInvite(createdBy, invite) {
      return createInvite(store.invites, { role: invite.role, createdBy, now: now(), expiresInSec: invite.expires_in })
    },

    listInvites: () => store.invites.list(INVITES_LISTED),

    listUsers: (page) => store.users.list(page),

    async updateUser(userId, patch) {
      const user = await store.users.update(userId, patch)
      if (!user) throw new HubError('not_found', 'no such user')
      status.forget(userId)
      if (patch.disabled === true) await refreshTokens.revokeUser(userId)
      return user
    },

    async upsertAdmin(username, password) {
      const name = parseOrThrow(Username, username, 'admin username')
      const pass = parseOrThrow(Password, password, 'admin password')
      for (let attempt = 0; ; attempt++) {
        const existing = await store.users.findByName(name)
        if (existing) {
          if (!(await passwords.verify(pass, existing.password_hash))) await store.users.setPasswordHash(existing.id, await passwords.hash(pass, passwordParams))
          return service.updateUser(existing.id, { role: 'admin', disabled: false })
        }
        const passwordHash = await passwords.hash(pass, passwordParams)
        try {
          const created = await store.transaction((tx) => insertUser(tx, { username: name, passwordHash, role: 'admin', now: now() }))
          return { id: created.id, username: created.username, role: created.role, disabled: false, created_at: created.created_at }
        } catch (err) {
          // Another node created it between our look-up and insert: take the update path.
          if (!(err instanceof HubError && err.code === 'invalid') || attempt > 0) throw err
        }
      }
    },

    forgetUser: (userId) => status.forget(userId),
    pruneRefreshTokens: () => refreshTokens.pruneExpired(),
  }
  return service
}

/** The service as a hub node configures it; `extra` adds what only a running node has. */
export function authServiceFromConfig(
  config: { secret: string; registration: RegistrationMode; accessTtlSec: number; refreshTtlSec: number },
  store: AuthStore,
  extra: Pick<AuthServiceOptions, 'denylist' | 'clock' | 'passwordParams'> = {},
): AuthService {
  return createAuthService({
    store,
    secret: config.secret,
    registration: config.registration,
    accessTtlSec: config.accessTtlSec,
    refreshTtlSec: config.refreshTtlSec,
    ...extra,
  })
}
