import type { Logger } from 'pino'
import { HubError, type ErrorCode } from '../../protocol/errors.ts'
import type { AuthFrame, AuthOkFrame, ClientFrame, HubFrame } from '../../protocol/frames.ts'
import { refOf } from '../../protocol/validate.ts'
import { PROTOCOL_VERSION } from '../../protocol/version.ts'
import type { AccessVerifier, Principal } from '../auth/principal.ts'
import type { StreamState, SyncEngine } from '../sync/engine.ts'
import type { Clock, Timer } from '../time/clock.ts'

export interface SessionAuthDeps {
  nodeId: string
  authTimeoutMs: number
  verifier: AccessVerifier
  engine: Pick<SyncEngine, 'admitDevice' | 'streamState'>
  log: Logger
}

/** What the handshake asks of its socket (the Session). */
export interface AuthenticatingSocket {
  readonly ended: boolean
  send(frame: HubFrame): void
  /** The socket is authenticated (`state`: where the user's stream stands): it joins the node's sessions before `auth_ok` goes out. */
  opened(state: StreamState): void
  /** Runs a frame that was held until `auth_ok`. */
  dispatch(frame: ClientFrame): void
  /** Answers with an error and closes. */
  closeWith(code: ErrorCode, message: string, ref?: number): void
  /** No `auth` in time, or the token expired without a refresh. */
  bye(reason: 'token_expired'): void
}

/**
 * A socket's authentication: the `auth` handshake and the frames that wait for it, `refresh`,
 * and the one timer a socket has: the auth deadline, then the token's expiry.
 */
export class SessionAuth {
  principal: Principal | undefined
  device: AuthFrame['device'] | undefined
  private authing = false
  private queued: ClientFrame[] | undefined
  /** The socket's one timer: the auth deadline, then the token's expiry. */
  private timer: Timer

  constructor(
    private readonly deps: SessionAuthDeps,
    private readonly clock: Clock,
    private readonly socket: AuthenticatingSocket,
  ) {
    this.timer = clock.after(deps.authTimeoutMs, () => socket.bye('token_expired'))
  }

  get authenticated(): boolean {
    return this.principal !== undefined
  }

  /**
   * A valid frame on a socket not yet authenticated: `auth` starts the handshake; frames sent
   * after it wait for its answer and run in order right after `auth_ok`.
   */
  accept(frame: ClientFrame): void {
    if (this.authing) return void (this.queued ??= []).push(frame)
    if (frame.t !== 'auth') return this.socket.closeWith('unauthorized', 'the first frame must be auth', refOf(frame))
    this.authing = true
    void this.authenticate(frame)
  }

  /** A new access token for the socket: same user, new expiry; the subscription goes on untouched. */
  async refresh(ref: number, token: string): Promise<void> {
    try {
      const principal = await this.deps.verifier.verifyAccess(token)
      if (principal.userId !== this.principal?.userId) throw new HubError('unauthorized', 'token belongs to another user')
      const state = await this.deps.engine.streamState(principal.userId)
      if (this.socket.ended) return
      this.principal = principal
      this.armExpiry()
      this.socket.send(this.authOk(ref, state))
    } catch (err) {
      this.failWith(err, ref)
    }
  }

  /** The socket ended: no timer fires any more. */
  end(): void {
    this.timer.cancel()
  }

  private async authenticate(frame: AuthFrame): Promise<void> {
    try {
      const principal = await this.deps.verifier.verifyAccess(frame.token)
      const state = await this.deps.engine.admitDevice(principal.userId, frame.device)
      if (this.socket.ended) return
      this.principal = principal
      this.device = frame.device
      this.armExpiry()
      this.socket.opened(state)
      this.socket.send(this.authOk(frame.ref, state))
      const queued = this.queued ?? []
      this.queued = undefined
      for (const f of queued) if (!this.socket.ended) this.socket.dispatch(f)
    } catch (err) {
      this.failWith(err, frame.ref)
    } finally {
      this.authing = false
    }
  }

  /** Only a bad token is `unauthorized`: a client told so drops its credentials. */
  private failWith(err: unknown, ref: number): void {
    if (!(err instanceof HubError)) this.deps.log.error({ err }, 'socket authentication failed')
    const code = err instanceof HubError ? (err.code === 'forbidden' || err.code === 'unavailable' ? err.code : 'unauthorized') : 'unavailable'
    this.socket.closeWith(code, err instanceof HubError ? err.message : 'the hub cannot check tokens right now; retry later', ref)
  }

  private armExpiry(): void {
    this.timer.cancel()
    this.timer = this.clock.after(this.principal!.expiresAt - this.clock.now(), () => this.socket.bye('token_expired'))
  }

  private authOk(ref: number, state: StreamState): AuthOkFrame {
    return {
      t: 'auth_ok',
      ref,
      user_id: this.principal!.userId,
      device_id: this.device!.id,
      cursor: state.seq,
      epoch: state.epoch,
      expires_at: this.principal!.expiresAt,
      server_time: this.clock.now(),
      node: this.deps.nodeId,
      protocol: PROTOCOL_VERSION,
    }
  }
}
