import { HubError } from '../../protocol/errors.ts'
import type { Clock } from './clock.ts'
import { RestError, type HubApi, type Tokens } from './hub-api.ts'

export type TokenReason = 'initial' | 'expiring' | 'refused'

/** The app's own token source: called at start, before the token expires, and when the hub refused it. */
export type TokenProvider = (ctx: { reason: TokenReason }) => Promise<string | { token: string; expiresAt?: number }>

export type AuthOptions = { getToken: TokenProvider } | { username: string; password: string }

/** A credential problem no retry will fix (wrong password, disabled account): the client stops. */
export class FatalAuthError extends HubError {}

/**
 * Access tokens for the client: from the app's provider, or from a username/password login
 * whose refresh token is kept in the client's storage and rotated on every refresh. One fetch
 * at a time; callers asking meanwhile share its answer.
 */
export class TokenSource {
  private token: string | undefined
  /** Local clock time at which the token expires, when known. */
  private expiresAt: number | undefined
  private issuedAt = 0
  private inflight: Promise<string> | undefined

  constructor(
    private readonly auth: AuthOptions,
    private readonly api: HubApi,
    private readonly clock: Clock,
    private readonly deviceId: () => string,
    private refreshToken: string | undefined,
    private readonly saveRefreshToken: (token: string | null) => Promise<void>,
  ) {}

  get current(): string | undefined {
    return this.token
  }

  /** A token: the one held while it is valid for `initial`, a new one otherwise. */
  get(reason: TokenReason): Promise<string> {
    if (reason === 'initial' && this.token && !this.nearExpiry()) return Promise.resolve(this.token)
    if (this.inflight) return this.inflight
    this.inflight = this.fetch(reason).finally(() => (this.inflight = undefined))
    return this.inflight
  }

  /** The hub's word on the current token's expiry (auth_ok): `expires_at` on the hub's clock. */
  noteExpiry(expiresAt: number, serverTime: number): void {
    this.expiresAt = this.clock.now() + (expiresAt - serverTime)
  }

  /** Milliseconds until the token should be renewed (a quarter of its life, at most a minute, before it ends). */
  refreshIn(): number | undefined {
    if (this.expiresAt === undefined) return undefined
    const life = Math.max(0, this.expiresAt - this.issuedAt)
    const margin = Math.min(60_000, life / 4)
    return Math.max(0, this.expiresAt - margin - this.clock.now())
  }

  private nearExpiry(): boolean {
    const left = this.refreshIn()
    return left !== undefined && left <= 0
  }

  private async fetch(reason: TokenReason): Promise<string> {
    if ('getToken' in this.auth) {
      const got = await this.auth.getToken({ reason })
      const token = typeof got === 'string' ? got : got.token
      this.hold(token, typeof got === 'string' ? undefined : got.expiresAt)
      return token
    }
    let tokens: Tokens | undefined
    if (this.refreshToken) {
      try {
        tokens = await this.api.refresh(this.refreshToken)
      } catch (err) {
        // Used up or revoked (its family is gone): a fresh login follows.
        if (!(err instanceof RestError && (err.code === 'unauthorized' || err.code === 'invalid'))) throw err
        this.refreshToken = undefined
        await this.saveRefreshToken(null)
      }
    }
    if (!tokens) {
      try {
        tokens = await this.api.login(this.auth.username, this.auth.password, this.deviceId())
      } catch (err) {
        if (err instanceof RestError && (err.code === 'unauthorized' || err.code === 'forbidden' || err.code === 'invalid')) {
          throw new FatalAuthError(err.code, `login refused: ${err.message}`)
        }
        throw err
      }
    }
    // Kept before it is used: a refresh token is good once, and the old one is used up now.
    this.refreshToken = tokens.refresh_token
    await this.saveRefreshToken(tokens.refresh_token)
    this.hold(tokens.access_token, this.clock.now() + tokens.expires_in * 1000)
    return tokens.access_token
  }

  private hold(token: string, expiresAt: number | undefined): void {
    this.token = token
    this.issuedAt = this.clock.now()
    this.expiresAt = expiresAt
  }
}
