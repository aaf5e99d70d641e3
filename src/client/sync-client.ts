import type { Encoding } from '../../protocol/codec.ts'
import { HubError, type ErrorCode } from '../../protocol/errors.ts'
import type { AuthOkFrame, ByeFrame, HubFrame } from '../../protocol/frames.ts'
import type { Limits } from '../../protocol/limits.ts'
import type { Result } from '../../protocol/ops.ts'
import { Backoff } from './backoff.ts'
import { systemClock, Timer, type Clock } from './clock.ts'
import { afterSocketEnd, type SocketEnd } from './close-policy.ts'
import { Emitter } from './events.ts'
import { HubApi, RestError } from './hub-api.ts'
import { Inbox, type ChangeBatch, type ChangeHandler, type ResetHandler, type ResetInfo, type Via } from './inbox.ts'
import { LocalView, type CollectionView, type DataOf } from './local-view.ts'
import { Outbox, type OpInput, type Settled } from './outbox.ts'
import { fetchRestPort, type FetchLike } from './rest-adapter.ts'
import { RestSync } from './rest-sync.ts'
import { ScopeWatch } from './scope-watch.ts'
import { platformWebSocket, webSocketPort, type WebSocketFactory } from './socket-adapter.ts'
import { SocketSession } from './socket-session.ts'
import { MemoryStorage } from './storage/memory.ts'
import type { Meta, StorageAdapter } from './storage/port.ts'
import { StateWriter } from './storage/writer.ts'
import { FatalAuthError, TokenSource, type AuthOptions, type TokenReason } from './tokens.ts'
import type { RestPort, SocketPort } from './transport.ts'

/** What the app sees of the connection. */
export type Status = 'connecting' | 'live' | 'polling' | 'offline' | 'stopped'

/** The state machine's states (src/client/CLIENT.md). */
export type ConnState = 'idle' | 'connecting' | 'authenticating' | 'catching_up' | 'live' | 'backing_off' | 'polling' | 'stopped'

export interface SyncClientOptions {
  /** The hub's base URL (`http://…` or `https://…`); the socket is `/v1/ws` under it. Several: tried in turn. */
  url: string | readonly string[]
  /** A token provider, or a username and password (the client logs in and keeps the refresh token). */
  auth: AuthOptions
  /** This device. Without an id the client makes one up once and keeps it in its storage. */
  device?: { id?: string; name?: string; platform?: string }
  /** Where cursor, epoch, mids, outbox and refresh token live (default: memory, lost with the process). */
  storage?: StorageAdapter
  /** Sync only these collections (default: the user's whole scope). */
  collections?: readonly string[]
  /** Called with each batch of changes, once, in seq order; the cursor is written after it returns. */
  onChanges?: ChangeHandler
  /** Called when the hub resets the history: drop the synced state; the stream restarts from 0. */
  onReset?: ResetHandler
  /** Keep a local view of the synced records (client.collection(name)), stored with the cursor. */
  view?: boolean
  /** Scope keys of operator-declared collections (built-in ones are known), for backfills found over REST. */
  collectionScopes?: Record<string, string>
  encoding?: Encoding
  /** Adapters: the socket and REST ports, or the platform pieces they are built on. */
  socket?: SocketPort
  webSocket?: WebSocketFactory
  rest?: RestPort
  fetch?: FetchLike
  /** Injected time and randomness (tests). */
  clock?: Clock
  random?: () => number
  /** Reconnect backoff (full jitter): first ceiling and cap, ms. Default 250 and 30,000. */
  reconnect?: { baseMs?: number; maxMs?: number }
  /** While polling, socket probes back off from baseMs to maxMs. Default 500 and 5,000. */
  probe?: { baseMs?: number; maxMs?: number }
  /** Socket failures in a row before switching to REST polling. Default 2. */
  fallbackAfter?: number
  /** A socket live this long has proven the path (its failures are forgotten). Default 10,000 ms. */
  stableMs?: number
  /** Long-poll seconds of each pull while polling. Default 20. */
  pollWaitSec?: number
  /** Device acks at most this often (ms). Default 2,000. */
  ackIntervalMs?: number
  /** Socket open to auth_ok (ms). Default 10,000. */
  handshakeTimeoutMs?: number
  /** Heartbeat ping interval (ms); two without any frame in between close the socket. Default 20,000. */
  pingIntervalMs?: number
  /** The hub's limits, when its operator changed them. */
  limits?: Partial<Limits>
}

/** An error the client reports: the hub's code, where it came from, and whether the client stopped. */
export interface ClientError {
  code: ErrorCode | 'handler_failed' | 'storage_failed'
  message: string
  fatal: boolean
  cause?: unknown
}

export type ConnectionEvent =
  | { event: 'open'; url: string; node: string | undefined; via: 'socket' }
  | { event: 'close'; url: string; node: string | undefined; code: number; reason: string; bye?: ByeFrame }

export interface ClientEvents extends Record<string, unknown> {
  status: Status
  state: ConnState
  /** A batch the handler applied (after onChanges returned). */
  changes: ChangeBatch
  /** The device is up to date (socket `synced`, or a pull with nothing more). */
  synced: { cursor: number; via: Via }
  reset: ResetInfo
  scope: { scope: string[] }
  /** Every op the hub answered (ops of earlier runs too). */
  result: Settled
  /** A put that conflicted: the hub kept its version and saved this one as a copy. */
  conflict: Settled
  error: ClientError
  connection: ConnectionEvent
  /** Ops handed to a transport (their mids). */
  sent: { mids: number[]; via: Via }
  /** Every hub frame as the socket received it, before the client acts on it (devtools, tests of the hub). */
  frame: { frame: HubFrame; url: string; node: string | undefined }
}

const WS_PATH = '/v1/ws'

/**
 * The synchub client: one device's connection to a hub that never loses a write and never misses
 * a change. See src/client/CLIENT.md for the state machine and the invariants.
 */
export class SyncClient {
  private readonly events = new Emitter<ClientEvents>()
  private readonly clock: Clock
  private readonly random: () => number
  private readonly storage: StorageAdapter
  private readonly writer: StateWriter
  private readonly urls: string[]
  private readonly api: HubApi
  private readonly socketPort: SocketPort
  private readonly reconnectBackoff: Backoff
  private readonly probeBackoff: Backoff
  private readonly pushRetry: Backoff
  private readonly timers: { reconnect: Timer; probe: Timer; refresh: Timer; ack: Timer; stable: Timer; push: Timer; mids: Timer }
  private urlIndex = 0
  private state: ConnState = 'idle'
  private statusValue: Status = 'connecting'
  private failures = 0
  private freshTokenNext = false
  private session: SocketSession | undefined
  private subRef = 0
  private refreshRef = 0
  private pushRef = 0
  private lastAck = { cursor: 0, at: -Infinity }
  private persistedCursor = 0
  private restUnreachable = false
  private loaded: Promise<void> | undefined
  private meta!: Meta
  private outboxPart!: Outbox
  private inboxPart!: Inbox
  private tokens!: TokenSource
  private restSync!: RestSync
  private scopeWatch!: ScopeWatch
  private viewPart: LocalView | undefined
  private deviceIdValue: string | undefined
  private midsConfirm: Promise<boolean> | undefined

  constructor(private readonly opts: SyncClientOptions) {
    this.clock = opts.clock ?? systemClock
    this.random = opts.random ?? Math.random
    this.storage = opts.storage ?? new MemoryStorage()
    this.writer = new StateWriter(this.storage)
    this.urls = (typeof opts.url === 'string' ? [opts.url] : [...opts.url]).map((u) => u.replace(/\/+$/, ''))
    if (this.urls.length === 0 || this.urls.some((u) => !/^https?:\/\//.test(u))) throw new HubError('invalid', 'url: the hub base URL(s), http://… or https://…')
    this.api = new HubApi(opts.rest ?? fetchRestPort(opts.fetch), this.urls[0]!)
    this.socketPort = opts.socket ?? webSocketPort(opts.webSocket ?? platformWebSocket, opts.encoding)
    this.reconnectBackoff = new Backoff({ baseMs: opts.reconnect?.baseMs ?? 250, maxMs: opts.reconnect?.maxMs ?? 30_000 }, this.random)
    this.probeBackoff = new Backoff({ baseMs: opts.probe?.baseMs ?? 500, maxMs: opts.probe?.maxMs ?? 5_000 }, this.random)
    this.pushRetry = new Backoff({ baseMs: 500, maxMs: 30_000 }, this.random)
    const t = () => new Timer(this.clock)
    this.timers = { reconnect: t(), probe: t(), refresh: t(), ack: t(), stable: t(), push: t(), mids: t() }
  }

  // ---- the app's side ---------------------------------------------------------------------------

  /** Loads the stored state and starts connecting; resolves once loaded (not once connected). */
  start(): Promise<void> {
    this.loaded ??= this.load().then(() => {
      if (this.state === 'idle') this.connect()
    })
    return this.loaded
  }

  /**
   * Enqueues an op (its mid is assigned now). Resolves with the hub's Result once the op is
   * committed; rejects with the hub's code only when the hub refused it, or at once (no mid used)
   * when the op is malformed. Offline, the op waits in the outbox.
   */
  async push(op: OpInput): Promise<Result> {
    await this.start()
    if (this.state === 'stopped') throw new HubError('unavailable', 'the client is stopped')
    return this.outboxPart.enqueue(op).result
  }

  /**
   * Like push(), also telling the op's mid once it is assigned (before it is sent). `appState`
   * merges into the app's slots (see saveAppState) in the same atomic write as the op.
   */
  async enqueue(op: OpInput, opts: { appState?: Record<string, unknown> } = {}): Promise<{ mid: number; result: Promise<Result> }> {
    await this.start()
    if (this.state === 'stopped') throw new HubError('unavailable', 'the client is stopped')
    if (!opts.appState) return this.outboxPart.enqueue(op)
    const app = { ...this.meta.app, ...opts.appState }
    const queued = this.outboxPart.enqueue(op, app)
    this.meta.app = app
    return queued
  }

  get status(): Status {
    return this.statusValue
  }

  get connectionState(): ConnState {
    return this.state
  }

  /** The cursor the app has applied (and the client persisted or is persisting). */
  get cursor(): number {
    return this.inboxPart?.cursor ?? 0
  }

  get epoch(): string | undefined {
    return this.inboxPart?.epoch
  }

  get deviceId(): string | undefined {
    return this.deviceIdValue
  }

  /** Ops waiting for the hub's answer. */
  get outbox(): number {
    return this.outboxPart?.size ?? 0
  }

  /** The app's slots in the stored state (see Meta.app). */
  get appState(): Record<string, unknown> {
    return this.meta?.app ?? {}
  }

  /** Writes the app's slots (merged) with the client's state, atomically. */
  async saveAppState(values: Record<string, unknown>): Promise<void> {
    await this.start()
    this.meta.app = { ...this.meta.app, ...values }
    await this.writer.write({ meta: { app: this.meta.app } })
  }

  on<K extends keyof ClientEvents>(event: K, fn: (value: ClientEvents[K]) => void): () => void {
    return this.events.on(event, fn)
  }

  /** A collection of the local view (the client must run with `view: true`). */
  collection<C extends string>(name: C): CollectionView<DataOf<C>> {
    if (!this.viewPart) throw new HubError('invalid', 'the local view is off: start the client with view: true')
    return this.viewPart.collection(name)
  }

  /** Resolves when the device is next up to date (immediately if it is now). */
  whenSynced(): Promise<void> {
    if (this.state === 'live') return Promise.resolve()
    return new Promise((resolve) => this.events.once('synced', () => resolve()))
  }

  /** Resolves once every op enqueued so far is answered. */
  async flushed(): Promise<void> {
    await this.start()
    while (this.outboxPart.size > 0 && this.state !== 'stopped') await new Promise((r) => this.events.once('result', r))
  }

  /** Closes the socket, finishes the batch being applied, writes the cursor and releases the storage. */
  async stop(): Promise<void> {
    if (this.state === 'stopped') return
    await this.loaded?.catch(() => {})
    this.halt()
    await this.inboxPart?.idle()
    await this.writer.idle()
    await this.storage.close()
  }

  // ---- loading ------------------------------------------------------------------------------------

  private async load(): Promise<void> {
    const snap = await this.storage.load()
    this.meta = snap.meta
    let deviceId = this.opts.device?.id ?? snap.meta.deviceId
    const initial: Meta = { ...snap.meta }
    if (!deviceId) {
      // A device id of our own: the hub has never seen it, so its mids start at 1 for sure.
      deviceId = newId(this.random)
      initial.midsConfirmed = true
    }
    if (snap.meta.deviceId && snap.meta.deviceId !== deviceId) {
      throw new HubError('invalid', `the storage holds the state of device ${snap.meta.deviceId}, not ${deviceId}`)
    }
    initial.deviceId = deviceId
    this.meta = initial
    if (initial.deviceId !== snap.meta.deviceId || initial.midsConfirmed !== snap.meta.midsConfirmed) {
      await this.writer.write({ meta: { deviceId, ...(initial.midsConfirmed ? { midsConfirmed: true } : {}) } })
    }
    this.deviceIdValue = deviceId
    if (this.opts.view) {
      this.viewPart = new LocalView()
      this.viewPart.load(snap.records)
    }
    this.tokens = new TokenSource(this.opts.auth, this.api, this.clock, () => deviceId, snap.meta.refreshToken, (token) =>
      this.writer.write({ meta: { refreshToken: token } }),
    )
    this.outboxPart = new Outbox(this.writer, snap.meta.nextMid, snap.outbox, this.clock, this.opts.limits)
    this.outboxPart.onSendable = () => this.kick()
    this.inboxPart = new Inbox(
      {
        writer: this.writer,
        clock: this.clock,
        random: this.random,
        view: this.viewPart,
        onChanges: this.opts.onChanges,
        onReset: this.opts.onReset,
        persisted: (cursor) => this.ackCursor(cursor),
        applied: (batch) => this.events.emit('changes', batch),
        scopeApplied: (scope) => {
          this.meta.scope = scope
          this.events.emit('scope', { scope })
        },
        handlerFailed: (err, what) =>
          this.events.emit('error', { code: 'handler_failed', message: `the change handler threw; it gets the same ${'reason' in what ? 'reset' : 'batch'} again: ${(err as Error)?.message ?? err}`, fatal: false, cause: err }),
      },
      snap.meta.cursor,
      snap.meta.epoch,
    )
    this.scopeWatch = new ScopeWatch({
      api: this.api,
      token: (r) => this.tokens.get(r),
      inbox: this.inboxPart,
      known: () => this.meta.scope,
      collections: this.opts.collections,
      collectionScopes: this.opts.collectionScopes,
      failed: (err) => {
        if (err instanceof HubError) this.events.emit('error', { code: err.code, message: `scope check: ${err.message}`, fatal: false, cause: err })
      },
    })
    this.restSync = new RestSync({
      api: this.api,
      token: (r) => this.token(r),
      deviceId,
      inbox: this.inboxPart,
      outbox: this.outboxPart,
      clock: this.clock,
      random: this.random,
      collections: this.opts.collections,
      waitSec: this.opts.pollWaitSec ?? 20,
      backoff: { baseMs: this.opts.reconnect?.baseMs ?? 250, maxMs: this.opts.reconnect?.maxMs ?? 30_000 },
      midsReady: () => this.midsReady(),
      results: (results, via) => this.onResults(results, via),
      sent: (mids) => this.events.emit('sent', { mids, via: 'rest' }),
      reachable: (ok, err) => {
        this.restUnreachable = !ok
        if (this.state === 'polling') this.setStatus(ok ? 'polling' : 'offline')
        if (!ok && err && !(err instanceof RestError)) return
      },
      caughtUp: () => this.events.emit('synced', { cursor: this.inboxPart.streamTo, via: 'rest' }),
      refused: (err) => this.fail(err.code, err.message),
    })
  }

  // ---- the state machine ------------------------------------------------------------------------

  private setState(next: ConnState): void {
    if (this.state === next) return
    this.state = next
    this.events.emit('state', next)
    const status: Status =
      next === 'live' ? 'live' : next === 'polling' ? (this.restUnreachable ? 'offline' : 'polling') : next === 'backing_off' ? 'offline' : next === 'stopped' ? 'stopped' : 'connecting'
    this.setStatus(status)
  }

  private setStatus(status: Status): void {
    if (this.statusValue === status) return
    this.statusValue = status
    this.events.emit('status', status)
  }

  private get url(): string {
    return this.urls[this.urlIndex % this.urls.length]!
  }

  /** connecting: get a token, open the socket (a probe when polling). */
  private connect(): void {
    if (this.state === 'stopped') return
    const probing = this.state === 'polling'
    if (!probing) this.setState('connecting')
    const fresh = this.freshTokenNext
    this.freshTokenNext = false
    void this.token(fresh ? 'refused' : 'initial').then(
      (token) => {
        if (this.state === 'stopped' || this.session) return
        if (!probing && this.state !== 'connecting') return
        if (probing && this.state !== 'polling') return
        const url = this.url
        this.session = new SocketSession(
          this.socketPort,
          {
            url: url.replace(/^http/, 'ws') + WS_PATH,
            token,
            device: { id: this.deviceIdValue!, ...(this.opts.device?.name ? { name: this.opts.device.name } : {}), ...(this.opts.device?.platform ? { platform: this.opts.device.platform } : {}) },
            freshToken: fresh,
            handshakeTimeoutMs: this.opts.handshakeTimeoutMs ?? 10_000,
            pingIntervalMs: this.opts.pingIntervalMs ?? 20_000,
          },
          this.clock,
          {
            authenticated: (s, f) => this.onAuthenticated(s, f),
            frame: (s, f) => this.onFrame(s, f),
            ended: (s, end) => this.onSocketEnd(s, end),
          },
        )
        if (!probing) this.setState('authenticating')
      },
      (err) => {
        if (this.state === 'stopped') return
        if (err instanceof FatalAuthError) return this.fail(err.code, err.message)
        // Unreachable is what the status says; a hub's refusal is worth an error event.
        if (err instanceof HubError) this.events.emit('error', { code: err.code, message: `no token: ${err.message}`, fatal: false, cause: err })
        this.afterFailure({ action: 'reconnect', freshToken: fresh, failure: true, rotate: true })
      },
    )
  }

  private token(reason: TokenReason): Promise<string> {
    return this.tokens.get(reason).then((token) => {
      this.scheduleRefresh()
      return token
    })
  }

  private onAuthenticated(s: SocketSession, frame: AuthOkFrame): void {
    if (s !== this.session) return
    this.tokens.noteExpiry(frame.expires_at, frame.server_time)
    this.scheduleRefresh()
    this.events.emit('connection', { event: 'open', url: s.url, node: frame.node, via: 'socket' })
    if (this.state === 'polling') {
      // The probe got through: leave REST where it stands; the socket resumes from the same cursor.
      this.restSync.stop()
      this.timers.probe.clear()
      this.probeBackoff.reset()
    }
    this.setState('catching_up')
    this.inboxPart.adoptEpoch(frame.epoch)
    this.subscribe()
    this.kick()
    this.scopeWatch.check()
  }

  private subscribe(): void {
    const s = this.session
    if (!s) return
    const inbox = this.inboxPart
    this.subRef = s.send({
      t: 'sub',
      since: inbox.streamTo,
      ...(inbox.epoch !== undefined && (inbox.streamTo > 0 || inbox.cursor > 0) ? { epoch: inbox.epoch } : {}),
      ...(this.opts.collections ? { collections: [...this.opts.collections] } : {}),
    })
  }

  private onFrame(s: SocketSession, f: HubFrame): void {
    if (s !== this.session) return
    if (this.events.listenerCount('frame') > 0) this.events.emit('frame', { frame: f, url: s.url, node: s.node })
    switch (f.t) {
      case 'changes':
        if (this.inboxPart.acceptChanges(f, 'socket') === 'gap') this.subscribe()
        return
      case 'synced':
        if (f.ref !== this.subRef) return
        s.markLive()
        this.reconnectBackoff.reset()
        this.setState('live')
        // A socket live for stableMs has proven the path: earlier failures no longer count.
        this.timers.stable.set(this.opts.stableMs ?? 10_000, () => {
          if (this.session === s) this.failures = 0
        })
        this.events.emit('synced', { cursor: f.cursor, via: 'socket' })
        return
      case 'reset':
        if (f.ref !== undefined && f.ref !== this.subRef) return
        this.events.emit('reset', { reason: f.reason, epoch: f.epoch })
        if (this.state === 'live') this.setState('catching_up')
        void this.inboxPart.acceptReset({ reason: f.reason, epoch: f.epoch }).then(() => {
          if (this.session === s) this.subscribe()
        })
        return
      case 'scope':
        this.inboxPart.acceptScope(f)
        return
      case 'backfill':
        this.inboxPart.acceptBackfill(f, 'socket')
        return
      case 'ack':
        if (f.ref !== this.pushRef) return
        this.pushRef = 0
        this.onResults(f.results, 'socket')
        return
      case 'auth_ok':
        if (f.ref === this.refreshRef) {
          this.tokens.noteExpiry(f.expires_at, f.server_time)
          this.scheduleRefresh()
        }
        return
      case 'error':
        if (f.ref !== undefined && f.ref === this.pushRef) {
          this.pushRef = 0
          if (f.code === 'too_large') this.outboxPart.shrink()
          else {
            // unavailable or internal: nothing was applied; the same ops go again after a pause.
            this.outboxPart.giveBack()
            this.timers.push.set(this.pushRetry.next(), () => this.kick())
          }
          return
        }
        if (f.code !== 'unauthorized' && f.code !== 'forbidden') this.events.emit('error', { code: f.code, message: f.message, fatal: false })
        return
      default:
        return // pong, bye: the session keeps what it needs
    }
  }

  private onSocketEnd(s: SocketSession, end: SocketEnd): void {
    if (s !== this.session) return
    this.session = undefined
    this.pushRef = 0
    this.subRef = 0
    this.refreshRef = 0
    this.timers.stable.clear()
    this.timers.ack.clear()
    this.inboxPart.discardPartial()
    this.outboxPart.giveBack()
    if (end.authenticated) this.events.emit('connection', { event: 'close', url: s.url, node: s.node, code: end.code, reason: end.reason, ...(end.bye ? { bye: end.bye } : {}) })
    if (this.state === 'stopped') return
    const decision = afterSocketEnd(end, { stableMs: this.opts.stableMs ?? 10_000, random: this.random })
    if (decision.action === 'stop') return this.fail(decision.code, decision.message)
    if (this.state === 'polling') {
      // A probe that failed: REST goes on; probe again later (at once with a fresh token after a 4401).
      if (decision.freshToken) this.freshTokenNext = true
      const delay = decision.freshToken && decision.delayMs === 0 ? 0 : this.probeBackoff.next()
      if (decision.rotate) this.urlIndex++
      this.timers.probe.set(delay, () => this.connect())
      return
    }
    this.afterFailure(decision)
  }

  /** backing_off, or polling once the socket failed `fallbackAfter` times in a row. */
  private afterFailure(decision: Extract<ReturnType<typeof afterSocketEnd>, { action: 'reconnect' }>): void {
    if (decision.rotate) this.urlIndex++
    if (decision.freshToken) this.freshTokenNext = true
    if (decision.failure) this.failures++
    if (decision.failure && this.failures >= (this.opts.fallbackAfter ?? 2)) return this.enterPolling()
    let delay = decision.delayMs ?? this.reconnectBackoff.next()
    if (decision.floorMs !== undefined) delay = Math.max(delay, decision.floorMs)
    this.setState('backing_off')
    this.timers.reconnect.set(delay, () => this.connect())
  }

  /** polling: REST pulls and pushes from the same cursor and outbox; the socket is probed with backoff. */
  private enterPolling(): void {
    this.restUnreachable = false
    this.setState('polling')
    this.restSync.start()
    this.scopeWatch.check()
    this.timers.probe.set(this.probeBackoff.next(), () => this.connect())
  }

  /** stopped, with an error the app must act on (revoked device, refused credentials). */
  private fail(code: ErrorCode, message: string): void {
    if (this.state === 'stopped') return
    this.events.emit('error', { code, message, fatal: true })
    this.halt()
    void this.inboxPart
      .idle()
      .then(() => this.writer.idle())
      .then(() => this.storage.close())
  }

  private halt(): void {
    this.setState('stopped')
    this.inboxPart?.close()
    for (const timer of Object.values(this.timers)) timer.clear()
    this.restSync?.stop()
    const s = this.session
    this.session = undefined
    s?.close(1000, 'client stopped')
  }

  // ---- pushing ------------------------------------------------------------------------------------

  /** Sends the next outbox batch on whichever transport is up. */
  private kick(): void {
    if (this.state === 'polling') return this.restSync.kick()
    const s = this.session
    if (!s || !s.authenticated || this.pushRef !== 0 || this.outboxPart.busy || this.outboxPart.size === 0) return
    void this.midsReady().then((ready) => {
      if (!ready || this.session !== s || this.pushRef !== 0) return
      const batch = this.outboxPart.take()
      if (!batch) return
      this.pushRef = s.send({ t: 'push', ops: batch.map((e) => e.op) })
      this.events.emit('sent', { mids: batch.map((e) => e.mid), via: 'socket' })
    })
  }

  private onResults(results: Result[], _via: Via): void {
    const { settled, outOfOrder } = this.outboxPart.settle(results)
    this.pushRetry.reset()
    for (const s of settled) {
      if (s.result.ok && s.result.copy) this.events.emit('conflict', s)
      this.events.emit('result', s)
    }
    if (outOfOrder) {
      // The hub has not seen the mids before these: count them again from what it has.
      this.meta.midsConfirmed = false
      this.midsConfirm = undefined
    }
    this.kick()
  }

  /**
   * True once the outbox's mids are known to follow the hub's count for this device. A state
   * that starts afresh for a device id the hub already knows would otherwise reuse old mids and
   * get old answers back (`dup`): the hub's last mid comes from GET /v1/devices first.
   */
  private midsReady(): Promise<boolean> {
    if (this.meta.midsConfirmed) return Promise.resolve(true)
    this.midsConfirm ??= (async () => {
      try {
        const { items } = await this.api.devices(await this.tokens.get('initial'))
        const lastMid = items.find((d) => d.id === this.deviceIdValue)?.last_mid ?? 0
        await this.outboxPart.renumber(lastMid)
        this.meta.midsConfirmed = true
        return true
      } catch (err) {
        if (err instanceof HubError) this.events.emit('error', { code: err.code, message: `could not read this device's last mid: ${err.message}`, fatal: false, cause: err })
        this.timers.mids.set(this.pushRetry.next(), () => {
          this.midsConfirm = undefined
          this.kick()
        })
        return false
      }
    })()
    return this.midsConfirm
  }

  // ---- tokens and acks ------------------------------------------------------------------------

  private scheduleRefresh(): void {
    const inMs = this.tokens.refreshIn()
    if (inMs === undefined || this.state === 'stopped') return
    this.timers.refresh.set(inMs, () => {
      void this.tokens.get('expiring').then(
        (token) => {
          const s = this.session
          if (s?.authenticated && this.session === s) this.refreshRef = s.send({ t: 'refresh', token })
          this.scheduleRefresh()
        },
        (err) => {
          if (err instanceof FatalAuthError) return this.fail(err.code, err.message)
          if (err instanceof HubError) this.events.emit('error', { code: err.code, message: `token refresh failed: ${err.message}`, fatal: false, cause: err })
          this.timers.refresh.set(this.pushRetry.next(), () => this.scheduleRefresh())
        },
      )
    })
  }

  /** The cursor is durable: tell the hub (device ack), at most every ackIntervalMs. */
  private ackCursor(cursor: number): void {
    this.persistedCursor = Math.max(this.persistedCursor, cursor)
    const s = this.session
    if (!s?.authenticated || cursor <= this.lastAck.cursor) return
    const wait = this.lastAck.at + (this.opts.ackIntervalMs ?? 2000) - this.clock.now()
    if (wait > 0) {
      if (!this.timers.ack.armed) this.timers.ack.set(wait, () => this.ackCursor(this.persistedCursor))
      return
    }
    this.lastAck = { cursor, at: this.clock.now() }
    s.send({ t: 'ack', cursor })
  }
}

/** A UUID (v4 layout) from the platform, or from `random` where it has no crypto. */
function newId(random: () => number): string {
  const c = (globalThis as { crypto?: { randomUUID?: () => string } }).crypto
  if (c?.randomUUID) return c.randomUUID()
  const hex = Array.from({ length: 32 }, () => Math.floor(random() * 16).toString(16))
  hex[12] = '4'
  hex[16] = ((parseInt(hex[16]!, 16) & 3) | 8).toString(16)
  const h = hex.join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}
