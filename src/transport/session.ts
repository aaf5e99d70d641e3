import type { Logger } from 'pino'
import { decodeFrame, encodeFrame, type Encoding } from '../../protocol/codec.ts'
import { CLOSE, HubError, type ErrorCode } from '../../protocol/errors.ts'
import type { AuthFrame, ByeReason, ClientFrame, PushFrame, ResetReason, SubFrame } from '../../protocol/frames.ts'
import type { Limits } from '../../protocol/limits.ts'
import { PROTOCOL_VERSION } from '../../protocol/version.ts'
import { parseClientFrame, refOf } from '../../protocol/validate.ts'
import type { AccessVerifier, Principal } from '../auth/principal.ts'
import type { AckRecorder } from '../sync/ack-recorder.ts'
import type { SyncEngine } from '../sync/engine.ts'
import type { Feeds, FeedListener, LiveBatch } from '../sync/feed.ts'
import type { SyncStore } from '../store/sync-store.ts'
import type { Change } from '../../protocol/records.ts'
import { encodeChanges } from './change-frames.ts'
import { rowToWireChange } from '../sync/changes.ts'
import type { Connection, SocketSession } from './connection.ts'
import type { RegisteredSession, SessionRegistry } from './session-registry.ts'

export interface SessionDeps {
  nodeId: string
  limits: Limits
  authTimeoutMs: number
  /** A socket whose unsent bytes exceed this is a slow consumer: closed, it resumes by cursor. */
  sendBufferBytes: number
  backlogPageSize: number
  verifier: AccessVerifier
  engine: SyncEngine
  store: SyncStore
  feeds: Feeds
  registry: SessionRegistry
  acks: AckRecorder
  log: Logger
  /** Bad frames tolerated per window before the socket is closed with 1008. */
  badFrameLimit?: number
  hooks?: {
    badFrame?(code: ErrorCode): void
    bye?(reason: ByeReason): void
    delivered?(frames: number): void
  }
}

type Mode = 'idle' | 'catching_up' | 'live'
const BAD_FRAME_WINDOW_MS = 10_000

/**
 * One socket's conversation: auth → sub → backlog → `synced` → live changes, pushes and acks.
 * Delivery keeps one cursor per socket: a batch is sent only when it starts at the cursor;
 * anything else (a gap, a batch that arrives while the backlog is read) goes through the store,
 * so the socket sees every change exactly once and in order.
 */
export class Session implements SocketSession, FeedListener, RegisteredSession {
  private encoding: Encoding | undefined
  private principal: Principal | undefined
  private device: AuthFrame['device'] | undefined
  private authing = false
  private queued: ClientFrame[] = []
  private authTimer: NodeJS.Timeout | undefined
  private expiryTimer: NodeJS.Timeout | undefined
  private badFrames: number[] = []
  private isClosed = false

  // Subscription state.
  private mode: Mode = 'idle'
  private cursor = 0
  private subGen = 0
  private filter: Set<string> | null = null
  private filterKey = ''
  /** The collections the `sub` asked for (undefined: all in scope). */
  private requested: string[] | undefined
  /** The newest scope a scope change brought, and how many arrived: a sub's own read may be older. */
  private announcedScope: { scope: string[]; count: number } = { scope: [], count: 0 }
  private backfillAfterCatchUp: string[] = []
  private pendingLive: LiveBatch[] = []
  private detach: (() => void) | undefined
  private drainWaiters: Array<() => void> = []

  constructor(
    private readonly conn: Connection,
    private readonly deps: SessionDeps,
  ) {
    this.authTimer = setTimeout(() => this.bye('token_expired'), deps.authTimeoutMs)
  }

  get userId(): string {
    return this.principal?.userId ?? ''
  }
  get deviceId(): string {
    return this.device?.id ?? ''
  }

  // ---- transport callbacks ------------------------------------------------------------------

  message(data: Uint8Array, isBinary: boolean): void {
    if (this.isClosed) return
    this.encoding ??= isBinary ? 'msgpack' : 'json'
    if (data.byteLength > this.deps.limits.maxFrameBytes) {
      // Frames reach here only below the server's hard cap, so reading the ref is affordable
      // and lets the client match the refusal to its request.
      let ref: number | undefined
      try {
        ref = refOf(decodeFrame(data, isBinary, false))
      } catch {}
      return this.refuse(new HubError('too_large', `frame is ${data.byteLength} bytes, over the ${this.deps.limits.maxFrameBytes} limit`), ref)
    }
    let frame: ClientFrame
    let raw: Record<string, unknown> | undefined
    try {
      raw = decodeFrame(data, isBinary)
      if (raw.t === 'push' && Array.isArray(raw.ops) && raw.ops.length > this.deps.limits.maxOpsPerPush) {
        throw new HubError('too_large', `${raw.ops.length} ops in one push, over the ${this.deps.limits.maxOpsPerPush} limit`)
      }
      frame = parseClientFrame(raw)
    } catch (err) {
      return this.refuse(err, refOf(raw))
    }
    if (!this.principal) {
      if (this.authing) return void this.queued.push(frame)
      if (frame.t !== 'auth') return this.closeWith('unauthorized', 'the first frame must be auth', refOf(frame))
      this.authing = true
      void this.authenticate(frame)
      return
    }
    this.dispatch(frame)
  }

  drain(): void {
    for (const w of this.drainWaiters.splice(0)) w()
  }

  closed(): void {
    if (this.isClosed) return
    this.isClosed = true
    clearTimeout(this.authTimer)
    clearTimeout(this.expiryTimer)
    this.detach?.()
    this.detach = undefined
    this.mode = 'idle'
    if (this.principal) this.deps.registry.remove(this)
    this.drain()
  }

  // ---- frames -------------------------------------------------------------------------------

  private dispatch(frame: ClientFrame): void {
    switch (frame.t) {
      case 'auth':
        return this.send({ t: 'error', ref: frame.ref, code: 'invalid', message: 'already authenticated; use refresh' })
      case 'refresh':
        return void this.refresh(frame.ref, frame.token)
      case 'ping':
        return void this.ping(frame.ref)
      case 'sub':
        return void this.subscribe(frame)
      case 'push':
        return this.push(frame)
      case 'ack':
        return this.deps.acks.record(this.userId, this.deviceId, frame.cursor)
    }
  }

  private async authenticate(frame: AuthFrame): Promise<void> {
    try {
      const principal = await this.deps.verifier.verifyAccess(frame.token)
      const active = await this.deps.store.touchDevice({ userId: principal.userId, id: frame.device.id, name: frame.device.name, platform: frame.device.platform, now: Date.now() })
      if (!active) throw new HubError('forbidden', 'this device was revoked')
      const state = await this.deps.store.userState(principal.userId)
      if (!state) throw new HubError('unauthorized', 'unknown user')
      if (this.isClosed) return
      this.principal = principal
      this.device = frame.device
      clearTimeout(this.authTimer)
      this.armExpiry()
      this.deps.registry.add(this)
      this.send({
        t: 'auth_ok',
        ref: frame.ref,
        user_id: principal.userId,
        device_id: frame.device.id,
        cursor: state.seq,
        epoch: state.epoch,
        expires_at: principal.expiresAt,
        server_time: Date.now(),
        node: this.deps.nodeId,
        protocol: PROTOCOL_VERSION,
      })
      const queued = this.queued.splice(0)
      for (const f of queued) if (!this.isClosed) this.dispatch(f)
    } catch (err) {
      // Only a bad token is `unauthorized`: a client told so would drop its credentials.
      if (!(err instanceof HubError)) this.deps.log.error({ err }, 'socket authentication failed')
      const code = err instanceof HubError ? (err.code === 'forbidden' || err.code === 'unavailable' ? err.code : 'unauthorized') : 'unavailable'
      this.closeWith(code, err instanceof HubError ? err.message : 'the hub cannot check tokens right now; retry later', frame.ref)
    } finally {
      this.authing = false
    }
  }

  private async refresh(ref: number, token: string): Promise<void> {
    try {
      const principal = await this.deps.verifier.verifyAccess(token)
      if (principal.userId !== this.userId) throw new HubError('unauthorized', 'token belongs to another user')
      const state = await this.deps.store.userState(principal.userId)
      if (this.isClosed) return
      this.principal = principal
      this.armExpiry()
      this.send({
        t: 'auth_ok',
        ref,
        user_id: principal.userId,
        device_id: this.deviceId,
        cursor: state?.seq ?? this.cursor,
        epoch: state?.epoch ?? '',
        expires_at: principal.expiresAt,
        server_time: Date.now(),
        node: this.deps.nodeId,
        protocol: PROTOCOL_VERSION,
      })
    } catch (err) {
      this.closeWith(err instanceof HubError && err.code === 'forbidden' ? 'forbidden' : 'unauthorized', (err as Error).message, ref)
    }
  }

  private async ping(ref: number): Promise<void> {
    try {
      const state = await this.deps.store.userState(this.userId)
      this.send({ t: 'pong', ref, server_time: Date.now(), cursor: state?.seq ?? this.cursor })
    } catch (err) {
      this.refuse(err, ref)
    }
  }

  private push(frame: PushFrame): void {
    this.deps.engine.submit(this.userId, this.deviceId, frame.ops, {
      ok: (outcome) => this.send({ t: 'ack', ref: frame.ref, cursor: outcome.cursor, results: outcome.results }),
      failed: (err) => {
        if (err instanceof HubError && err.code === 'forbidden') return this.bye('revoked')
        this.refuse(err, frame.ref)
      },
      together: (send) => this.conn.cork(send),
    })
  }

  // ---- the change stream --------------------------------------------------------------------

  private async subscribe(frame: SubFrame): Promise<void> {
    const gen = ++this.subGen
    this.detach?.()
    this.detach = undefined
    this.mode = 'idle'
    try {
      const changesBefore = this.announcedScope.count
      const state = await this.deps.store.userState(this.userId)
      if (!state) throw new HubError('unauthorized', 'unknown user')
      if (gen !== this.subGen || this.isClosed) return
      // A scope change announced while the state was read is at least as new as what was read.
      const scope = this.announcedScope.count !== changesBefore ? this.announcedScope.scope : state.scope
      this.requested = frame.collections
      this.setFilter(this.deps.engine.collectionFilter(scope, frame.collections))
      this.cursor = frame.since
      this.pendingLive = []
      this.mode = 'catching_up'
      // Attach before the first read: whatever commits meanwhile is buffered, then merged.
      // The read waits until the bus subscription is live, so no publish falls between them.
      this.detach = this.deps.feeds.attach(this.userId, this)
      await this.deps.feeds.ready()
      if (gen !== this.subGen || this.isClosed) return
      const caughtUp = await this.catchUp(gen, frame.epoch, frame.ref)
      if (caughtUp) this.send({ t: 'synced', ref: frame.ref, cursor: this.cursor })
      // A scope widened while the backlog was read: fill in what it added before that point.
      const added = this.backfillAfterCatchUp.splice(0)
      if (caughtUp && added.length > 0) await this.backfill(gen, added)
    } catch (err) {
      if (gen === this.subGen) this.mode = 'idle'
      this.refuse(err, frame.ref)
    }
  }

  private setFilter(filter: string[] | null): void {
    this.filter = filter ? new Set(filter) : null
    this.filterKey = filter ? [...filter].sort().join(',') : '*'
  }

  /**
   * The user's scope changed. The stream is re-filtered at once; a widening is followed by
   * `backfill` frames holding the added collections' records the socket was not sent (seq up
   * to its cursor). Live changes wait meanwhile, so a backfilled record is never sent after a
   * newer version of it; later versions arrive as usual in `changes`.
   */
  scopeChanged(scope: string[]): void {
    if (this.isClosed || !this.principal) return
    this.announcedScope = { scope, count: this.announcedScope.count + 1 }
    const all = this.deps.engine.registry.names()
    const before = this.filter ? [...this.filter] : all
    const next = this.deps.engine.collectionFilter(scope, this.requested)
    const after = next ?? all
    const added = after.filter((c) => !before.includes(c))
    const removed = before.filter((c) => !after.includes(c))
    this.setFilter(next)
    this.send({ t: 'scope', scope, added, removed })
    if (added.length === 0 || this.mode === 'idle') return
    if (this.mode === 'catching_up') return void this.backfillAfterCatchUp.push(...added)
    void this.backfill(this.subGen, added).catch(() => {
      // The store is unreachable: the client reconnects and resubscribes, backfill included.
      this.conn.close(CLOSE.tryAgain, 'unavailable')
      this.closed()
    })
  }

  /**
   * The user's history was replaced on some node (an import's overwrite): whatever this socket
   * holds belongs to the old history. Any subscription ends (a late page of it is dropped by
   * the generation check) and the client is told to start again from 0 under the new epoch.
   */
  reset(reason: ResetReason, epoch?: string): void {
    if (this.isClosed || !this.principal) return
    this.subGen++
    this.detach?.()
    this.detach = undefined
    this.mode = 'idle'
    this.pendingLive = []
    this.backfillAfterCatchUp = []
    this.send({ t: 'reset', reason, ...(epoch !== undefined ? { epoch } : {}) })
  }

  private async backfill(gen: number, collections: string[]): Promise<void> {
    this.mode = 'catching_up'
    // A widening that lands while this backfill is sent queues its collections: they follow
    // here, before live changes resume.
    for (let next = collections; next.length > 0; next = this.backfillAfterCatchUp.splice(0)) {
      const upTo = this.cursor
      let since = 0
      for (;;) {
        const page = await this.deps.store.pull(this.userId, { since, limit: this.deps.backlogPageSize, collections: next, maxBytes: this.backlogPageBytes })
        if (gen !== this.subGen || this.isClosed) return
        const rows = (page?.rows ?? []).filter((r) => r.seq <= upTo)
        const more = page !== undefined && page.cut && rows.length === page.rows.length && rows.length > 0
        const frame = encodeFrame({ t: 'backfill', collections: next, items: rows.map((r) => rowToWireChange(r, this.deps.engine.codec)), ...(more ? { more: true } : {}) }, this.encoding!)
        if (!(await this.sendBacklog([frame], gen))) return
        if (!more) break
        since = rows.at(-1)!.seq
      }
    }
    this.mode = 'live'
    for (const batch of this.pendingLive.splice(0)) this.onBatch(batch)
  }

  /** Reads the store from the cursor to the head, then replays what arrived live meanwhile. */
  private async catchUp(gen: number, epoch?: string, ref?: number): Promise<boolean> {
    this.mode = 'catching_up'
    // Pages are bounded in bytes too, so a backlog of large records streams in small steps.
    const read = (since: number, epoch?: string) => {
      const filter = this.filter ? [...this.filter] : null
      const page = this.deps.engine.readPage(this.userId, { since, limit: this.deps.backlogPageSize, collections: filter, epoch, maxBytes: this.backlogPageBytes })
      page.catch(() => {}) // a prefetch the loop left behind (socket closed, sub replaced) fails quietly
      return page
    }
    let next = read(this.cursor, epoch)
    for (;;) {
      const page = await next
      if (gen !== this.subGen || this.isClosed) return false
      if ('reset' in page) {
        this.mode = 'idle'
        this.detach?.()
        this.detach = undefined
        this.send({ t: 'reset', ...(ref !== undefined ? { ref } : {}), reason: page.reset, epoch: page.epoch })
        return false
      }
      // The next page is read while this one goes out: store and socket work side by side.
      if (page.more) next = read(page.cursor)
      if (page.items.length > 0 || page.cursor > this.cursor) {
        const frames = encodeChanges(this.cursor, page.cursor, page.items, this.encoding!, this.deps.limits.maxFrameBytes)
        if (!(await this.sendBacklog(frames, gen))) return false
      }
      this.cursor = page.cursor
      if (!page.more) break
    }
    this.deps.feeds.seed(this.userId, this.cursor)
    this.mode = 'live'
    const buffered = this.pendingLive.splice(0)
    for (const batch of buffered) this.onBatch(batch)
    return true
  }

  onBatch(batch: LiveBatch): void {
    if (this.mode === 'catching_up') return void this.pendingLive.push(batch)
    if (this.mode !== 'live' || batch.to <= this.cursor) return
    if (batch.from > this.cursor) {
      // A hole between what this socket has and this batch: read it from the store.
      this.pendingLive.push(batch)
      const gen = this.subGen
      const fill = async () => {
        // A widening that landed during the catch-up is backfilled once it is done.
        const added = (await this.catchUp(gen)) ? this.backfillAfterCatchUp.splice(0) : []
        if (added.length > 0) await this.backfill(gen, added)
      }
      void fill().catch(() => {
        // The store is unreachable: the client reconnects and resumes from its cursor.
        this.conn.close(CLOSE.tryAgain, 'unavailable')
        this.closed()
      })
      return
    }
    let frames: Array<Uint8Array | string>
    if (batch.from === this.cursor) {
      const key = `${this.encoding}|${this.filterKey}`
      frames = batch.cache.get(key)!
      if (!frames) batch.cache.set(key, (frames = this.encodeLive(batch.from, batch.to, batch.changes)))
    } else {
      frames = this.encodeLive(this.cursor, batch.to, batch.changes.filter((c) => c.seq > this.cursor))
    }
    this.cursor = batch.to
    this.sendFrames(frames)
  }

  private encodeLive(from: number, to: number, changes: Change[]): Array<Uint8Array | string> {
    const items = this.filter ? changes.filter((c) => this.filter!.has(c.collection)) : changes
    return encodeChanges(from, to, items, this.encoding!, this.deps.limits.maxFrameBytes)
  }

  private sendFrames(frames: Array<Uint8Array | string>): void {
    for (const f of frames) this.conn.send(f)
    this.deps.hooks?.delivered?.(frames.length)
    if (this.conn.bufferedAmount > this.deps.sendBufferBytes) this.bye('slow_consumer')
  }

  /**
   * Backlog frames are paced by the socket instead: the hub waits for the client to read
   * rather than calling a catching-up device slow, which would make it reconnect forever.
   */
  private async sendBacklog(frames: Array<Uint8Array | string>, gen: number): Promise<boolean> {
    for (const frame of frames) {
      if (this.conn.bufferedAmount > this.deps.sendBufferBytes / 2) await this.waitDrain()
      if (gen !== this.subGen || this.isClosed) return false
      this.conn.send(frame)
    }
    this.deps.hooks?.delivered?.(frames.length)
    return true
  }

  private get backlogPageBytes(): number {
    return Math.max(64 * 1024, this.deps.sendBufferBytes / 2)
  }

  private waitDrain(): Promise<void> {
    if (this.isClosed) return Promise.resolve()
    return new Promise((resolve) => this.drainWaiters.push(resolve))
  }

  // ---- endings and errors -------------------------------------------------------------------

  private armExpiry(): void {
    clearTimeout(this.expiryTimer)
    const ms = Math.max(0, this.principal!.expiresAt - Date.now())
    // setTimeout holds at most ~24.8 days; tokens live minutes.
    this.expiryTimer = setTimeout(() => this.bye('token_expired'), Math.min(ms, 2 ** 31 - 1))
  }

  /** Says goodbye with a reason and the close code that goes with it. */
  bye(reason: ByeReason, retryMs?: number): void {
    if (this.isClosed) return
    const code = { draining: CLOSE.draining, token_expired: CLOSE.tokenExpired, revoked: CLOSE.revoked, slow_consumer: CLOSE.tryAgain }[reason]
    this.deps.hooks?.bye?.(reason)
    if (reason !== 'slow_consumer') this.send({ t: 'bye', reason, ...(retryMs !== undefined ? { retry_ms: retryMs } : {}) })
    this.conn.close(code, reason)
    this.closed()
  }

  private closeWith(code: ErrorCode, message: string, ref?: number): void {
    this.send({ t: 'error', ...(ref !== undefined ? { ref } : {}), code, message })
    this.conn.close(new HubError(code, message).closeCode, code)
    this.closed()
  }

  /** Answers a bad frame or failed request; a client that keeps sending bad frames is closed. */
  private refuse(err: unknown, ref?: number): void {
    const hubError = err instanceof HubError ? err : new HubError('internal', 'internal error')
    if (!(err instanceof HubError)) this.deps.log.error({ err }, 'session request failed')
    this.send({ t: 'error', ...(ref !== undefined ? { ref } : {}), code: hubError.code, message: hubError.message })
    if (hubError.code === 'bad_frame' || hubError.code === 'invalid' || hubError.code === 'too_large') {
      this.deps.hooks?.badFrame?.(hubError.code)
      const now = Date.now()
      this.badFrames = this.badFrames.filter((t) => now - t < BAD_FRAME_WINDOW_MS)
      this.badFrames.push(now)
      if (this.badFrames.length > (this.deps.badFrameLimit ?? 20)) {
        this.conn.close(CLOSE.policy, 'too many bad frames')
        this.closed()
      }
    }
  }

  private send(frame: object): void {
    if (this.isClosed) return
    this.conn.send(encodeFrame(frame, this.encoding ?? 'msgpack'))
  }
}
