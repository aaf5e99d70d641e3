/**
 * A scripted, in-process hub behind the client's two transport ports (SocketPort, RestPort),
 * on a virtual clock: one user's stream, the mid rule, tokens that expire, and every fault the
 * model test needs on command (dropped sockets, refused upgrades, a hub that is down, `bye`s,
 * duplicated frames, history resets). It keeps the protocol's rules the client relies on; the
 * same client code runs against the real hub in test/client/*.test.ts.
 */
import type { ClientFrame, HubFrame } from '../../protocol/frames.ts'
import type { Op, Result } from '../../protocol/ops.ts'
import type { Change } from '../../protocol/records.ts'
import type { RestAnswer, RestPort, RestRequest, SocketEvents, SocketLink, SocketPort } from '../../src/client/transport.ts'
import type { VirtualClock } from './virtual-clock.ts'

const ALL_SCOPE = ['chat.history', 'characters.cards', 'characters.per_settings', 'providers.config', 'providers.keys', 'user.text_inputs', 'user.settings']

interface FakeSocket {
  id: number
  owner: string
  events: SocketEvents
  open: boolean
  authed: boolean
  deviceId?: string
  token?: string
  /** The stream position of this socket's subscription, or undefined when not subscribed. */
  cursor?: number
  subRef?: number
  /** The last changes frame sent (for duplicates). */
  last?: HubFrame
}

export class ScriptedHub implements SocketPort, RestPort {
  log: Change[] = []
  epoch = 'epoch-1'
  private epochs = 1
  readonly devices = new Map<string, { lastMid: number; answers: Map<number, Result>; revoked: boolean }>()
  private readonly tokens = new Map<string, number>() // token → expires at
  private readonly refreshTokens = new Set<string>()
  private tokenSeq = 0
  private sockets = new Map<number, FakeSocket>()
  private socketSeq = 0
  private readonly waiters = new Set<() => void>()
  /** Faults. */
  refuseUpgrades = false
  down = false
  latency = 2
  tokenTtlMs = 60_000
  /** Every device ack received: device, cursor. */
  readonly acks: Array<{ device: string; cursor: number }> = []
  /** Problems the hub noticed in what clients sent (must stay empty). */
  readonly violations: string[] = []
  /** Ops applied per device, in order (mids). */
  readonly applied: Array<{ device: string; mid: number; id: string }> = []

  constructor(
    private readonly clock: VirtualClock,
    readonly password = 'correct horse battery',
  ) {}

  get head(): number {
    return this.log.length
  }

  /** The transport ports of one client (its sockets are tagged with `owner`, so a test can cut them). */
  portsFor(owner: string): { socket: SocketPort; rest: RestPort } {
    return {
      socket: { connect: (url, events) => this.connectAs(owner, url, events) },
      rest: { request: (base, req) => this.request(base, req) },
    }
  }

  connect(url: string, events: SocketEvents): SocketLink {
    return this.connectAs('anon', url, events)
  }

  // ---- faults ---------------------------------------------------------------------------------

  /** Cuts the sockets of `owner` (all when omitted) without a close frame (1006). */
  drop(owner?: string): void {
    for (const s of this.sockets.values()) if (!owner || s.owner === owner) this.close(s, 1006, '')
  }

  /** Drains: `bye draining` with retry_ms and close 1012. */
  drain(retryMs?: number): void {
    for (const s of [...this.sockets.values()]) {
      if (s.authed) this.send(s, { t: 'bye', reason: 'draining', ...(retryMs !== undefined ? { retry_ms: retryMs } : {}) })
      this.close(s, 1012, 'draining')
    }
  }

  /** Closes slow consumers (1013, no bye). */
  slowConsumer(owner?: string): void {
    for (const s of [...this.sockets.values()]) if (!owner || s.owner === owner) this.close(s, 1013, 'slow_consumer')
  }

  /** Every token issued so far stops working; sockets holding one get `bye token_expired`, 4401. */
  expireTokens(): void {
    this.tokens.clear()
    for (const s of [...this.sockets.values()]) {
      if (!s.authed) continue
      this.send(s, { t: 'bye', reason: 'token_expired' })
      this.close(s, 4401, 'token_expired')
    }
  }

  /** Sends the last changes frame of each subscribed socket of `owner` again (a duplicate). */
  duplicate(owner?: string): void {
    for (const s of this.sockets.values()) if ((!owner || s.owner === owner) && s.last) this.send(s, s.last)
  }

  /** Replaces the history (an overwriting import): the same records under new seqs, a new epoch, an unasked reset. */
  resetHistory(): void {
    const latest = new Map<string, Change>()
    for (const c of this.log) latest.set(`${c.collection}/${c.id}`, c)
    this.log = [...latest.values()].map((c, i) => ({ ...c, seq: i + 1, rev: i + 1 }))
    this.epoch = `epoch-${++this.epochs}`
    for (const s of this.sockets.values()) {
      if (!s.authed) continue
      s.cursor = undefined
      this.send(s, { t: 'reset', reason: 'epoch_changed', epoch: this.epoch })
    }
    this.wake()
  }

  revoke(deviceId: string): void {
    this.device(deviceId).revoked = true
    for (const s of [...this.sockets.values()]) {
      if (s.deviceId !== deviceId) continue
      this.send(s, { t: 'bye', reason: 'revoked' })
      this.close(s, 4403, 'revoked')
    }
  }

  // ---- socket ---------------------------------------------------------------------------------

  private connectAs(owner: string, url: string, events: SocketEvents): SocketLink {
    const s: FakeSocket = { id: ++this.socketSeq, owner, events, open: false, authed: false }
    if (!url.endsWith('/v1/ws')) this.violations.push(`socket url ${url}`)
    this.later(() => {
      if (this.down) return events.close(1006, 'connection refused')
      if (this.refuseUpgrades) return events.close(1006, '', 403)
      s.open = true
      this.sockets.set(s.id, s)
      events.open()
    })
    return {
      send: (frame) => this.later(() => this.onFrame(s, frame)),
      close: () => {
        if (!s.open) return
        s.open = false
        this.sockets.delete(s.id)
      },
    }
  }

  private close(s: FakeSocket, code: number, reason: string): void {
    if (!s.open) return
    s.open = false
    this.sockets.delete(s.id)
    this.later(() => s.events.close(code, reason))
  }

  private send(s: FakeSocket, frame: HubFrame): void {
    if (!s.open) return
    if (frame.t === 'changes') s.last = frame
    this.later(() => {
      if (s.open || frame.t === 'bye' || frame.t === 'error') s.events.frame(frame)
    })
  }

  private later(fn: () => void): void {
    this.clock.setTimeout(fn, this.latency)
  }

  private onFrame(s: FakeSocket, f: ClientFrame): void {
    if (!s.open) return
    if (!s.authed) {
      if (f.t !== 'auth') return void this.violations.push(`${f.t} before auth`)
      const device = this.device(f.device.id)
      if (!this.tokenValid(f.token)) {
        this.send(s, { t: 'error', ref: f.ref, code: 'unauthorized', message: 'bad token' })
        return this.close(s, 4401, 'unauthorized')
      }
      if (device.revoked) {
        this.send(s, { t: 'error', ref: f.ref, code: 'forbidden', message: 'revoked' })
        return this.close(s, 4403, 'forbidden')
      }
      s.authed = true
      s.deviceId = f.device.id
      s.token = f.token
      return this.send(s, { t: 'auth_ok', ref: f.ref, user_id: 'u1', device_id: f.device.id, cursor: this.head, epoch: this.epoch, expires_at: this.tokens.get(f.token)!, server_time: this.clock.now(), node: 'scripted' })
    }
    switch (f.t) {
      case 'sub': {
        s.subRef = f.ref
        if (f.epoch !== undefined && f.epoch !== this.epoch) return this.resetSocket(s, f.ref, 'epoch_changed')
        if (f.since > this.head) return this.resetSocket(s, f.ref, 'cursor_ahead')
        // The backlog in pages of 3, then synced; live frames follow.
        let from = f.since
        const items = this.log.slice(f.since)
        for (let i = 0; i < items.length; i += 3) {
          const page = items.slice(i, i + 3)
          const to = page[page.length - 1]!.seq
          this.send(s, { t: 'changes', from, to, items: page })
          from = to
        }
        s.cursor = from
        return this.send(s, { t: 'synced', ref: f.ref, cursor: from })
      }
      case 'push': {
        const { results, cursor } = this.apply(s.deviceId!, f.ops)
        return this.send(s, { t: 'ack', ref: f.ref, cursor, results })
      }
      case 'refresh':
        if (!this.tokenValid(f.token)) {
          this.send(s, { t: 'error', ref: f.ref, code: 'unauthorized', message: 'bad token' })
          return this.close(s, 4401, 'unauthorized')
        }
        s.token = f.token
        return this.send(s, { t: 'auth_ok', ref: f.ref, user_id: 'u1', device_id: s.deviceId!, cursor: this.head, epoch: this.epoch, expires_at: this.tokens.get(f.token)!, server_time: this.clock.now(), node: 'scripted' })
      case 'ping':
        return this.send(s, { t: 'pong', ref: f.ref, server_time: this.clock.now(), cursor: this.head })
      case 'ack':
        this.acks.push({ device: s.deviceId!, cursor: f.cursor })
        return
      case 'auth':
        return this.send(s, { t: 'error', ref: f.ref, code: 'invalid', message: 'already authenticated' })
    }
  }

  private resetSocket(s: FakeSocket, ref: number, reason: 'epoch_changed' | 'cursor_ahead'): void {
    s.cursor = undefined
    this.send(s, { t: 'reset', ref, reason, epoch: this.epoch })
  }

  // ---- the write path (mid rule) --------------------------------------------------------------

  private device(id: string) {
    let d = this.devices.get(id)
    if (!d) this.devices.set(id, (d = { lastMid: 0, answers: new Map(), revoked: false }))
    return d
  }

  private apply(deviceId: string, ops: Op[]): { results: Result[]; cursor: number } {
    const device = this.device(deviceId)
    const before = this.head
    const results: Result[] = []
    for (const op of ops) {
      if (op.mid <= device.lastMid) {
        results.push({ ...(device.answers.get(op.mid) ?? { ok: true }), dup: true } as Result)
        continue
      }
      if (op.mid !== device.lastMid + 1) {
        this.violations.push(`${deviceId}: mid ${op.mid} after ${device.lastMid}`)
        results.push({ ok: false, code: 'out_of_order', message: `expected ${device.lastMid + 1}` })
        continue
      }
      device.lastMid = op.mid
      let result: Result
      if (op.op === 'put' && op.collection === 'settings' && (op.data as { value?: unknown }).value === 'refuse-me') {
        result = { ok: false, code: 'invalid', message: 'refused by the script' }
      } else if (op.op === 'put') {
        const seq = this.head + 1
        const now = this.clock.now()
        this.log.push({ seq, collection: op.collection, id: op.id, data: op.data, rev: seq, created_at: now, updated_at: now, device_id: deviceId })
        this.applied.push({ device: deviceId, mid: op.mid, id: op.id })
        result = { ok: true, seq, id: op.id }
      } else {
        result = { ok: false, code: 'invalid', message: 'the script only knows puts' }
      }
      device.answers.set(op.mid, result)
      results.push(result)
    }
    if (this.head > before) this.fanOut(before)
    return { results, cursor: this.head }
  }

  /** Live delivery of the changes after `before` to every subscribed socket. */
  private fanOut(before: number): void {
    for (const s of this.sockets.values()) {
      if (s.cursor === undefined || !s.authed) continue
      const from = s.cursor
      const items = this.log.slice(from)
      if (items.length === 0) continue
      s.cursor = this.head
      this.send(s, { t: 'changes', from, to: this.head, items })
    }
    void before
    this.wake()
  }

  // ---- tokens ---------------------------------------------------------------------------------

  private issue(): { access_token: string; refresh_token: string; token_type: 'bearer'; expires_in: number } {
    const access = `at-${++this.tokenSeq}`
    const refresh = `rt-${this.tokenSeq}`
    this.tokens.set(access, this.clock.now() + this.tokenTtlMs)
    this.refreshTokens.add(refresh)
    return { access_token: access, refresh_token: refresh, token_type: 'bearer', expires_in: this.tokenTtlMs / 1000 }
  }

  private tokenValid(token: string | undefined): boolean {
    const exp = token ? this.tokens.get(token) : undefined
    return exp !== undefined && exp > this.clock.now()
  }

  // ---- REST -----------------------------------------------------------------------------------

  async request(_base: string, req: RestRequest): Promise<RestAnswer> {
    await new Promise((r) => this.clock.setTimeout(() => r(undefined), this.latency))
    if (this.down) throw new TypeError('fetch failed (the scripted hub is down)')
    const url = new URL(req.path, 'http://hub')
    const error = (status: number, code: string, message: string): RestAnswer => ({ status, body: { error: { code, message } } })
    if (url.pathname === '/v1/auth/login') {
      const body = req.body as { password: string }
      return body.password === this.password ? { status: 200, body: this.issue() } : error(401, 'unauthorized', 'wrong password')
    }
    if (url.pathname === '/v1/auth/refresh') {
      const rt = (req.body as { refresh_token: string }).refresh_token
      if (!this.refreshTokens.delete(rt)) return error(401, 'unauthorized', 'refresh token used or unknown')
      return { status: 200, body: this.issue() }
    }
    if (!this.tokenValid(req.token)) return error(401, 'unauthorized', 'bad token')
    if (url.pathname === '/v1/sync/scope') return { status: 200, body: { scope: ALL_SCOPE } }
    if (url.pathname === '/v1/devices') return { status: 200, body: { items: [...this.devices].map(([id, d]) => ({ id, last_mid: d.lastMid })) } }
    if (url.pathname === '/v1/sync/push') {
      if (!req.deviceId) return error(400, 'invalid', 'Device-Id')
      if (this.device(req.deviceId).revoked) return error(403, 'forbidden', 'revoked')
      return { status: 200, body: this.apply(req.deviceId, (req.body as { ops: Op[] }).ops) }
    }
    if (url.pathname === '/v1/sync/pull') {
      const since = Number(url.searchParams.get('since') ?? 0)
      const limit = Number(url.searchParams.get('limit') ?? 1000)
      const wait = Number(url.searchParams.get('wait') ?? 0)
      const epoch = url.searchParams.get('epoch')
      const answer = (): RestAnswer => {
        if (epoch && epoch !== this.epoch) return { status: 200, body: { reset: 'epoch_changed', epoch: this.epoch } }
        if (since > this.head) return { status: 200, body: { reset: 'cursor_ahead', epoch: this.epoch } }
        const items = this.log.slice(since, since + limit)
        const more = since + items.length < this.head
        return { status: 200, body: { items, cursor: more ? items[items.length - 1]!.seq : this.head, more, epoch: this.epoch } }
      }
      if (wait > 0 && since >= this.head && !(epoch && epoch !== this.epoch)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            this.waiters.delete(done)
            this.clock.clearTimeout(timer)
            resolve()
          }
          const timer = this.clock.setTimeout(done, wait * 1000)
          this.waiters.add(done)
          req.signal?.addEventListener('abort', done, { once: true })
        })
        if (req.signal?.aborted) throw new DOMException('aborted', 'AbortError')
        if (this.down) throw new TypeError('fetch failed (the scripted hub is down)')
      }
      return answer()
    }
    return error(404, 'not_found', url.pathname)
  }

  private wake(): void {
    for (const w of [...this.waiters]) w()
  }
}
