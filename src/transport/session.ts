import { CLOSE, HubError, type ErrorCode } from '../../protocol/errors.ts'
import type { ByeReason, ClientFrame, HubFrame, PushFrame, ResetReason } from '../../protocol/frames.ts'
import type { Limits } from '../../protocol/limits.ts'
import type { AckRecorder } from '../sync/ack-recorder.ts'
import type { ChangeSource } from '../sync/change-source.ts'
import type { StreamState, SyncEngine } from '../sync/engine.ts'
import { Subscription } from '../sync/subscription.ts'
import type { Connection, SocketSession } from './connection.ts'
import { BadFrameWindow, isBadFrameCode, readClientFrame } from './frame-gate.ts'
import type { LiveFrames } from './live-frames.ts'
import { SessionAuth, type AuthenticatingSocket, type SessionAuthDeps } from './session-auth.ts'
import { systemClock, type Clock } from '../time/clock.ts'
import type { RegisteredSession, SessionRegistry } from './session-registry.ts'
import { SocketSink, type SinkOwner, type SocketSinkOptions } from './socket-sink.ts'

export interface SessionDeps extends SessionAuthDeps, SocketSinkOptions {
  limits: Limits
  /** A socket whose unsent bytes exceed this is a slow consumer: closed, it resumes by cursor. */
  sendBufferBytes: number
  backlogPageSize: number
  engine: Pick<SyncEngine, 'submit' | 'admitDevice' | 'streamState'>
  /** The user's stream as subscriptions read and follow it. */
  changes: ChangeSource
  /** The node's encoded live frames, shared by every socket. */
  liveFrames: LiveFrames
  registry: SessionRegistry
  acks: AckRecorder
  /** Bad frames tolerated per window before the socket is closed with 1008. */
  badFrameLimit?: number
  /** Time for the auth deadline, the token's expiry and the bad-frame window (the system clock by default). */
  clock?: Clock
  hooks?: {
    badFrame?(code: ErrorCode): void
    bye?(reason: ByeReason): void
    delivered?(frames: number): void
  }
}

const BAD_FRAME_WINDOW_MS = 10_000

/**
 * One socket's conversation: frames in (checked at the gate), authentication, then each
 * request dispatched: `sub` to the socket's Subscription, pushes to the engine, acks to the
 * recorder. The socket's ending, whichever side starts it, runs once and stops everything.
 * The session is also what its handshake and its sink call back (no closures per socket: a node
 * holds many idle ones).
 */
export class Session implements SocketSession, RegisteredSession, AuthenticatingSocket, SinkOwner {
  private readonly sink: SocketSink
  private readonly auth: SessionAuth
  private readonly clock: Clock
  private badFrames: BadFrameWindow | undefined
  private subscription: Subscription | undefined
  private encodingKnown = false
  private isEnded = false

  constructor(
    private readonly conn: Connection,
    private readonly deps: SessionDeps,
  ) {
    this.clock = deps.clock ?? systemClock
    this.sink = new SocketSink(conn, deps, this)
    this.auth = new SessionAuth(deps, this.clock, this)
  }

  get userId(): string {
    return this.auth.principal?.userId ?? ''
  }
  get deviceId(): string {
    return this.auth.device?.id ?? ''
  }
  /** The connection ended (closed by either side); nothing is sent or done any more. */
  get ended(): boolean {
    return this.isEnded
  }

  // ---- transport callbacks (SocketSession) --------------------------------------------------

  message(data: Uint8Array, isBinary: boolean): void {
    if (this.isEnded) return
    if (!this.encodingKnown) {
      this.encodingKnown = true
      this.sink.encoding = isBinary ? 'msgpack' : 'json'
    }
    const inbound = readClientFrame(data, isBinary, this.deps.limits)
    if ('refused' in inbound) return this.refuse(inbound.refused, inbound.ref)
    if (!this.auth.authenticated) return this.auth.accept(inbound.frame)
    this.dispatch(inbound.frame)
  }

  /** The transport's `drain`: the socket's send buffer went below its threshold, it is writable again. */
  drain(): void {
    this.sink.writable()
  }

  /** The transport's `closed`: the connection ended. */
  closed(): void {
    this.end()
  }

  // ---- requests (the handshake calls these too: AuthenticatingSocket) ----------------------

  send(frame: HubFrame): void {
    this.sink.send(frame)
  }

  /** Authenticated: the socket gets its subscription and joins the node's sessions. */
  opened(state: StreamState): void {
    const bounds = { limit: this.deps.backlogPageSize, maxBytes: Math.max(64 * 1024, this.deps.sendBufferBytes / 2) }
    this.subscription = new Subscription(this.userId, this.deps.changes, this.sink, bounds, state.scope)
    this.deps.registry.add(this)
  }

  dispatch(frame: ClientFrame): void {
    switch (frame.t) {
      case 'auth':
        return this.sink.send({ t: 'error', ref: frame.ref, code: 'invalid', message: 'already authenticated; use refresh' })
      case 'refresh':
        return void this.auth.refresh(frame.ref, frame.token)
      case 'ping':
        return void this.ping(frame.ref)
      case 'sub':
        return void this.subscription!.subscribe(frame).catch((err) => this.refuse(err, frame.ref))
      case 'push':
        return this.push(frame)
      case 'ack':
        return this.deps.acks.record(this.userId, this.deviceId, frame.cursor)
    }
  }

  private async ping(ref: number): Promise<void> {
    try {
      const state = await this.deps.engine.streamState(this.userId)
      this.sink.send({ t: 'pong', ref, server_time: this.clock.now(), cursor: state.seq })
    } catch (err) {
      this.refuse(err, ref)
    }
  }

  private push(frame: PushFrame): void {
    this.deps.engine.submit(this.userId, this.deviceId, frame.ops, {
      ok: (outcome) => this.sink.send({ t: 'ack', ref: frame.ref, cursor: outcome.cursor, results: outcome.results }),
      failed: (err) => {
        if (err instanceof HubError && err.code === 'forbidden') return this.bye('revoked')
        this.refuse(err, frame.ref)
      },
      together: (send) => this.sink.together(send),
    })
  }

  // ---- events from the cluster (RegisteredSession) ------------------------------------------

  /** The user's scope changed: the subscription re-filters, and backfills after a widening. */
  scopeChanged(scope: string[]): void {
    this.subscription?.scopeChanged(scope)
  }

  /** The user's history was replaced: the socket is told `reset` and its subscription ends. */
  reset(reason: ResetReason, epoch?: string): void {
    this.subscription?.reset(reason, epoch)
  }

  // ---- endings and errors (the sink calls these too: SinkOwner) -----------------------------

  /** Says goodbye with a reason and the close code that goes with it. */
  bye(reason: ByeReason, retryMs?: number): void {
    if (this.isEnded) return
    const code = { draining: CLOSE.draining, token_expired: CLOSE.tokenExpired, revoked: CLOSE.revoked, slow_consumer: CLOSE.tryAgain }[reason]
    this.deps.hooks?.bye?.(reason)
    if (reason !== 'slow_consumer') this.sink.send({ t: 'bye', reason, ...(retryMs !== undefined ? { retry_ms: retryMs } : {}) })
    this.close(code, reason)
  }

  slowConsumer(): void {
    this.bye('slow_consumer')
  }

  retryLater(): void {
    this.close(CLOSE.tryAgain, 'unavailable')
  }

  /** Answers with an error and closes with the code's close code. */
  closeWith(code: ErrorCode, message: string, ref?: number): void {
    this.sink.send({ t: 'error', ...(ref !== undefined ? { ref } : {}), code, message })
    this.close(new HubError(code, message).closeCode, code)
  }

  /** Answers a bad frame or failed request; a client that keeps sending bad frames is closed. */
  private refuse(err: unknown, ref?: number): void {
    const hubError = err instanceof HubError ? err : new HubError('internal', 'internal error')
    if (!(err instanceof HubError)) this.deps.log.error({ err }, 'session request failed')
    this.sink.send({ t: 'error', ...(ref !== undefined ? { ref } : {}), code: hubError.code, message: hubError.message })
    if (!isBadFrameCode(hubError.code)) return
    this.deps.hooks?.badFrame?.(hubError.code)
    this.badFrames ??= new BadFrameWindow(this.deps.badFrameLimit ?? 20, BAD_FRAME_WINDOW_MS, this.clock)
    if (this.badFrames.record()) this.close(CLOSE.policy, 'too many bad frames')
  }

  /** Closes the connection from this side; the session ends at once (the transport's `closed` then finds it ended). */
  private close(code: number, reason: string): void {
    this.conn.close(code, reason)
    this.end()
  }

  private end(): void {
    if (this.isEnded) return
    this.isEnded = true
    this.auth.end()
    this.subscription?.end()
    this.sink.end()
    if (this.auth.authenticated) this.deps.registry.remove(this)
  }
}
