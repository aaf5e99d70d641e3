import type { AuthOkFrame, ByeFrame, ClientFrame, ErrorFrame, HubFrame } from '../../protocol/frames.ts'
import { Timer, type Clock } from './clock.ts'
import type { SocketEnd } from './close-policy.ts'
import type { SocketLink, SocketPort } from './transport.ts'

export interface SessionOptions {
  url: string
  token: string
  device: { id: string; name?: string; platform?: string }
  /** The token was fetched fresh after the hub refused the previous one. */
  freshToken: boolean
  /** From opening the socket to auth_ok (ms). */
  handshakeTimeoutMs: number
  /** A ping this often; a socket from which nothing arrived between two pings is dead (ms). */
  pingIntervalMs: number
}

export interface SessionEvents {
  authenticated(session: SocketSession, frame: AuthOkFrame): void
  /** Every frame after auth_ok (replies included). */
  frame(session: SocketSession, frame: HubFrame): void
  ended(session: SocketSession, end: SocketEnd): void
}

type Outgoing = ClientFrame extends infer F ? (F extends { ref: number } ? Omit<F, 'ref'> : F) : never

/**
 * One socket's life: open, `auth` (sub and pushes may follow at once), a heartbeat that notices
 * a dead path, and one `ended` report with everything the close policy needs (the `bye`, the
 * last `error`, how long it was live).
 */
export class SocketSession {
  authenticated = false
  /** Hub node name from auth_ok. */
  node: string | undefined
  private link: SocketLink
  private nextRef = 0
  private authRef = 0
  private bye: ByeFrame | undefined
  private lastError: ErrorFrame | undefined
  private liveAt: number | undefined
  private framesSincePing = 1
  private readonly handshake: Timer
  private readonly heartbeat: Timer
  private ended = false

  constructor(
    port: SocketPort,
    private readonly opts: SessionOptions,
    private readonly clock: Clock,
    private readonly events: SessionEvents,
  ) {
    this.handshake = new Timer(clock)
    this.heartbeat = new Timer(clock)
    this.handshake.set(opts.handshakeTimeoutMs, () => this.close(4000, 'no auth_ok in time'))
    this.link = port.connect(opts.url, {
      open: () => {
        this.authRef = this.send({ t: 'auth', token: opts.token, device: opts.device })
      },
      frame: (f) => this.onFrame(f),
      close: (code, reason, status) => this.onClose(code, reason, status),
    })
  }

  get url(): string {
    return this.opts.url
  }

  /** Sends a frame; returns its ref (0 for the device ack, which has none). */
  send(frame: Outgoing): number {
    if (frame.t === 'ack') {
      this.link.send(frame as ClientFrame)
      return 0
    }
    const ref = ++this.nextRef
    this.link.send({ ...frame, ref } as ClientFrame)
    return ref
  }

  /** The stream is live (synced): from now on the socket's age counts as health. */
  markLive(): void {
    this.liveAt ??= this.clock.now()
  }

  close(code = 1000, reason = ''): void {
    this.link.close(code, reason)
  }

  private onFrame(frame: HubFrame): void {
    if (this.ended) return
    this.framesSincePing++
    if (frame.t === 'bye') this.bye = frame
    if (frame.t === 'error') this.lastError = frame
    if (!this.authenticated) {
      if (frame.t === 'auth_ok' && frame.ref === this.authRef) {
        this.authenticated = true
        this.node = frame.node
        this.handshake.clear()
        this.beat()
        this.events.authenticated(this, frame)
      }
      // Anything else before auth_ok is a refusal on its way to the close.
      return
    }
    this.events.frame(this, frame)
  }

  private beat(): void {
    this.heartbeat.set(this.opts.pingIntervalMs, () => {
      if (this.framesSincePing === 0) return this.close(4000, 'no answer to ping')
      this.framesSincePing = 0
      this.send({ t: 'ping' })
      this.beat()
    })
  }

  private onClose(code: number, reason: string, refusedStatus?: number): void {
    if (this.ended) return
    this.ended = true
    this.handshake.clear()
    this.heartbeat.clear()
    this.events.ended(this, {
      code,
      reason,
      ...(this.bye ? { bye: this.bye } : {}),
      ...(this.lastError ? { error: this.lastError } : {}),
      ...(refusedStatus !== undefined ? { refusedStatus } : {}),
      authenticated: this.authenticated,
      liveMs: this.liveAt === undefined ? undefined : this.clock.now() - this.liveAt,
      freshToken: this.opts.freshToken,
    })
  }
}
