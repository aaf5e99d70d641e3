/**
 * A fast-check model of the subscription (src/sync/SUBSCRIPTION.md): random interleavings of
 * commits, live batches that arrive, arrive twice or never (gaps), the store answering reads in
 * any order or failing them, a reader that stops and reads again, scope widenings and
 * narrowings, resets, and resubscribes, all in process (in-memory source, recording sink).
 *
 * The reference is a client written from the protocol: it applies what it receives, checks every
 * frame against the invariants as it arrives, reacts as a client must (a reset: start again from
 * 0; an error: subscribe again; a closed socket: reconnect, pull what a widening it was promised
 * did not bring, subscribe from its cursor). At the end, once everything in flight has arrived
 * (and a position check delivered what the lost publishes held back), the client's cursor is the
 * head and its records equal the store's, collection by collection, for everything its stream covers.
 *
 * Replay: SUBSCRIPTION_MODEL_SEED=<seed> (and SUBSCRIPTION_MODEL_PATH=<path> from a failure's
 * report) reruns a case exactly; SUBSCRIPTION_MODEL_RUNS sets how many cases run (400).
 */
import fc from 'fast-check'
import t from 'tap'
import type { Change } from '../../protocol/records.ts'
import { Subscription } from '../../src/sync/subscription.ts'
import type { LiveBatch } from '../../src/sync/feed.ts'
import { MemoryChangeSource } from './memory-change-source.ts'
import { RecordingSink, type Sent } from './recording-sink.ts'
import { settle, USER } from './subscription-harness.ts'

const SEED = Number(process.env.SUBSCRIPTION_MODEL_SEED ?? 20260601)
const RUNS = Number(process.env.SUBSCRIPTION_MODEL_RUNS ?? 400)
const PATH = process.env.SUBSCRIPTION_MODEL_PATH

const SCOPE_OF: Record<string, string> = { conversations: 'chat.history', settings: 'user.settings', characters: 'characters.cards' }
const COLLECTIONS = Object.keys(SCOPE_OF)
const SCOPE_KEYS = Object.values(SCOPE_OF)

type Action =
  | { k: 'commit'; puts: Array<{ coll: string; id: number }> }
  | { k: 'deliver' }
  | { k: 'lose' }
  | { k: 'again' }
  | { k: 'answer'; i: number }
  | { k: 'fail'; i: number }
  | { k: 'slow' }
  | { k: 'quick' }
  | { k: 'scope'; keys: string[] }
  | { k: 'reset' }
  | { k: 'resub'; collections?: string[] }

const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('commit' as const), puts: fc.array(fc.record({ coll: fc.constantFrom(...COLLECTIONS), id: fc.nat(3) }), { minLength: 1, maxLength: 3 }) }) },
  { weight: 6, arbitrary: fc.constant({ k: 'deliver' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'lose' as const }) },
  { weight: 1, arbitrary: fc.constant({ k: 'again' as const }) },
  { weight: 8, arbitrary: fc.record({ k: fc.constant('answer' as const), i: fc.nat(4) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('fail' as const), i: fc.nat(4) }) },
  { weight: 2, arbitrary: fc.constant({ k: 'slow' as const }) },
  { weight: 2, arbitrary: fc.constant({ k: 'quick' as const }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant('scope' as const), keys: fc.subarray(SCOPE_KEYS) }) },
  { weight: 1, arbitrary: fc.constant({ k: 'reset' as const }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('resub' as const), collections: fc.option(fc.subarray(COLLECTIONS, { minLength: 1 }), { nil: undefined }) }) },
)

const keyOf = (c: { collection: string; id: string }) => `${c.collection}/${c.id}`

/** A device's socket: one subscription, one sink; a new one after the socket closes. */
interface Socket {
  sub: Subscription
  sink: RecordingSink
}

/** The reference client: what it holds, and every way the stream broke the protocol. */
class Client {
  cursor = 0
  epoch: string | undefined
  readonly records = new Map<string, number>()
  /** idle: no `sub` outstanding; syncing: `sub` sent, no `synced` yet; live: after `synced`. */
  phase: 'idle' | 'syncing' | 'live' = 'idle'
  ref = 0
  requested: string[] | undefined
  /** The scope as this client last learnt it (at its `sub`, or from a `scope` frame). */
  scope: string[] | null = null
  /** Collections a widening added whose backfill has not ended. */
  readonly awaiting = new Set<string>()
  /** Collections narrowed away while awaited: their backfill may still end (or not). */
  readonly excused = new Set<string>()
  /** Collections a widening added while no stream ran (or whose backfill died with a socket): pulled on the next `sub`. */
  readonly missed = new Set<string>()
  readonly violations: string[] = []
  /** Something happened that makes the client subscribe again (reset, error, closed socket). */
  mustResubscribe = false

  constructor(private readonly source: MemoryChangeSource) {}

  private violation(what: string): void {
    this.violations.push(what)
  }

  private covered(): (collection: string) => boolean {
    const filter = this.source.filterFor(this.scope, this.requested)
    return (c) => filter.covers(c)
  }

  /**
   * Sends `sub` from the cursor. What the stream will not bring is pulled first, up to the cursor
   * (PROTOCOL.md, Sync scope: a REST pull): collections a widening added while no stream ran or
   * whose backfill died with a socket, and collections this `sub` asks for that the last did not.
   */
  subscribe(socket: Socket, collections?: string[]): void {
    const before = this.covered()
    this.requested = collections
    this.scope = this.source.scopeNow(USER)
    const after = this.covered()
    const pull = new Set([...this.missed].filter(after))
    for (const c of COLLECTIONS) if (after(c) && !before(c) && !this.awaiting.has(c)) pull.add(c)
    for (const r of this.source.records(USER)) if (pull.has(r.collection) && r.seq <= this.cursor) this.apply(r, 'pull')
    this.missed.clear()
    // A backfill the stream still owes is sent after `synced`, unless this `sub` no longer covers it.
    for (const c of this.awaiting) if (!after(c)) (this.awaiting.delete(c), this.excused.add(c))
    this.phase = 'syncing'
    this.ref++
    this.mustResubscribe = false
    const ref = this.ref
    void socket.sub.subscribe({ ref, since: this.cursor, ...(this.cursor > 0 && this.epoch ? { epoch: this.epoch } : {}), ...(collections ? { collections } : {}) }).catch(() => {
      if (ref !== this.ref) return
      this.phase = 'idle' // the `sub` was answered with an error
      this.mustResubscribe = true
    })
  }

  /** The socket closed under the client (a retry): a widening's backfill in flight died with it. */
  lostSocket(): void {
    for (const c of this.awaiting) this.missed.add(c)
    this.awaiting.clear()
    this.excused.clear()
    this.phase = 'idle'
    this.mustResubscribe = true
  }

  receive(s: Sent): void {
    if (s.via === 'retry') return this.lostSocket()
    const f = s.frame
    switch (f.t) {
      case 'changes': {
        if (this.phase === 'idle') this.violation(`changes ${f.from}→${f.to} while no stream runs (a stale generation)`)
        if (s.via === 'live' && this.phase === 'syncing') this.violation(`live changes ${f.from}→${f.to} before synced`)
        if (s.via === 'live' && this.awaiting.size > 0) this.violation(`live changes ${f.from}→${f.to} while the backfill of ${[...this.awaiting]} runs`)
        if (f.from !== this.cursor) this.violation(`changes from ${f.from} at cursor ${this.cursor}`)
        let last = f.from
        const covered = this.covered()
        for (const item of f.items) {
          if (!(item.seq > last && item.seq <= f.to)) this.violation(`item seq ${item.seq} out of order in ${f.from}→${f.to}`)
          if (!covered(item.collection)) this.violation(`${keyOf(item)}@${item.seq} sent though the stream does not cover ${item.collection}`)
          last = item.seq
          this.apply(item, 'changes')
        }
        this.cursor = f.to
        return
      }
      case 'backfill': {
        if (this.phase === 'idle') this.violation(`backfill while no stream runs (a stale generation)`)
        for (const c of f.collections) if (!this.awaiting.has(c) && !this.excused.has(c)) this.violation(`backfill of ${c} nobody asked for`)
        const covered = this.covered()
        for (const item of f.items) {
          if (!f.collections.includes(item.collection)) this.violation(`backfill of ${f.collections} carried ${keyOf(item)}`)
          if (!covered(item.collection)) this.violation(`backfill sent ${keyOf(item)} though the stream no longer covers it`)
          if (item.seq > this.cursor) this.violation(`backfill item ${keyOf(item)}@${item.seq} beyond cursor ${this.cursor}`)
          this.apply(item, 'backfill')
        }
        if (!f.more) for (const c of f.collections) (this.awaiting.delete(c), this.excused.delete(c))
        return
      }
      case 'synced':
        if (this.phase !== 'syncing' || f.ref !== this.ref) this.violation(`synced ${f.ref} while ${this.phase} with sub ${this.ref} (a stale generation)`)
        if (f.cursor !== this.cursor) this.violation(`synced at ${f.cursor}, the stream at ${this.cursor}`)
        this.phase = 'live'
        return
      case 'scope':
        this.scope = f.scope
        for (const c of f.removed) if (this.awaiting.delete(c)) this.excused.add(c)
        for (const c of f.added) {
          this.excused.delete(c)
          if (this.phase === 'idle') this.missed.add(c)
          else this.awaiting.add(c)
        }
        return
      case 'reset':
        if (f.ref !== undefined && (f.ref !== this.ref || this.phase !== 'syncing')) this.violation(`reset answering sub ${f.ref}, the last is ${this.ref}`)
        this.records.clear()
        this.cursor = 0
        this.epoch = f.epoch
        this.awaiting.clear()
        this.excused.clear()
        this.missed.clear()
        this.phase = 'idle'
        this.mustResubscribe = true
        return
    }
  }

  private apply(item: Change | { collection: string; id: string; seq: number }, via: string): void {
    const held = this.records.get(keyOf(item))
    if (held !== undefined && (held > item.seq || (held === item.seq && via === 'changes'))) {
      this.violation(`${via} sent ${keyOf(item)}@${item.seq} while the client holds @${held} (sent twice, or older)`)
    }
    if (held === undefined || held <= item.seq) this.records.set(keyOf(item), item.seq)
  }
}

/** One run: a user, a device whose socket may be replaced, a feed whose batches the actions move. */
class World {
  readonly source = new MemoryChangeSource({ manual: true })
  readonly client = new Client(this.source)
  readonly sockets: Socket[] = []
  readonly queued: LiveBatch[] = []
  readonly trace: string[] = []
  lastDelivered: LiveBatch | undefined
  feedHead = 0
  slow = false

  constructor() {
    this.source.addUser(USER)
    this.client.epoch = this.source.epoch(USER)
    this.connect()
  }

  get socket(): Socket {
    return this.sockets.at(-1)!
  }

  connect(): void {
    const sink = new RecordingSink()
    const sub = new Subscription(USER, this.source, sink, { limit: 3, maxBytes: 1 << 20 }, this.source.scopeNow(USER))
    const socket = { sub, sink }
    sink.onSent = (s) => {
      if (socket !== this.socket) return void this.client.violations.push(`a frame on a closed socket: ${JSON.stringify(s)}`)
      this.trace.push(`  ← ${describe(s)}`)
      this.client.receive(s)
      // The session closes the socket for a retry: the subscription and the sink end with it.
      if (s.via === 'retry') (sub.end(), sink.end())
    }
    if (this.slow) sink.stall()
    this.sockets.push(socket)
  }

  deliver(batch: LiveBatch): void {
    this.lastDelivered = batch
    this.feedHead = Math.max(this.feedHead, batch.to)
    this.source.deliver(batch)
  }

  async run(a: Action): Promise<void> {
    this.trace.push(describeAction(a))
    const pending = this.source.pending
    switch (a.k) {
      case 'commit':
        this.queued.push(this.source.commit(USER, a.puts.map((p) => ({ collection: p.coll, id: `r${p.id}` }))))
        break
      case 'deliver':
        if (this.queued.length > 0) this.deliver(this.queued.shift()!)
        break
      case 'lose':
        this.queued.shift()
        break
      case 'again':
        if (this.lastDelivered) this.source.deliver(this.lastDelivered)
        break
      case 'answer':
        if (pending.length > 0) pending[a.i % pending.length]!.release()
        break
      case 'fail':
        if (pending.length > 0) pending[a.i % pending.length]!.fail()
        break
      case 'slow':
        this.slow = true
        this.socket.sink.stall()
        break
      case 'quick':
        this.slow = false
        this.socket.sink.drain()
        break
      case 'scope':
        this.source.setScope(USER, a.keys)
        this.socket.sub.scopeChanged(a.keys)
        break
      case 'reset':
        this.socket.sub.reset('epoch_changed', this.source.newEpoch(USER))
        break
      case 'resub':
        this.client.subscribe(this.socket, a.collections)
        break
    }
    await this.react()
  }

  /** Lets the subscription run, then the client do what it must. */
  async react(): Promise<void> {
    await settle()
    if (this.socket.sink.ended && this.client.mustResubscribe) this.connect()
    if (this.client.mustResubscribe) {
      this.trace.push('client subscribes again')
      this.client.subscribe(this.socket, this.client.requested)
      await settle()
    }
  }

  /** Lets everything in flight arrive; a position check delivers what lost publishes held back. */
  async quiesce(): Promise<void> {
    this.trace.push('-- everything in flight arrives')
    this.slow = false
    for (let round = 0; round < 200; round++) {
      this.socket.sink.drain()
      while (this.queued.length > 0) this.deliver(this.queued.shift()!)
      if (this.source.pending.length > 0) this.source.pending[0]!.release()
      await this.react()
      if (this.client.phase === 'idle') this.client.subscribe(this.socket, this.client.requested)
      const quiet = this.source.pending.length === 0 && this.socket.sink.waitingSends === 0 && this.client.phase === 'live'
      if (!quiet) continue
      if (this.feedHead < this.source.head(USER)) {
        this.trace.push(`position check: the feed fills ${this.feedHead}→${this.source.head(USER)}`)
        this.deliver(this.source.fillBatch(USER, this.feedHead))
        continue
      }
      if (this.client.awaiting.size === 0) return
    }
    throw new Error(`the stream did not settle: client ${this.client.phase} at ${this.client.cursor}, head ${this.source.head(USER)}, awaiting ${[...this.client.awaiting]}, pending ${this.source.pending.map((p) => p.what)}`)
  }

  check(): string[] {
    const problems = [...this.client.violations]
    for (const s of this.sockets) if (s.sink.afterEnd.length > 0) problems.push(`sent after its socket ended: ${s.sink.afterEnd}`)
    const head = this.source.head(USER)
    if (this.client.cursor !== head) problems.push(`client at ${this.client.cursor}, head ${head}`)
    const filter = this.source.filterFor(this.source.scopeNow(USER), this.client.requested)
    const want = new Map(this.source.records(USER).filter((r) => filter.covers(r.collection)).map((r) => [keyOf(r), r.seq]))
    const have = new Map([...this.client.records].filter(([k]) => filter.covers(k.split('/')[0]!)))
    for (const [k, seq] of want) if (have.get(k) !== seq) problems.push(`${k}: store @${seq}, client @${have.get(k)}`)
    for (const k of have.keys()) if (!want.has(k)) problems.push(`${k}: the client holds a record the store does not`)
    return problems
  }
}

function describe(s: Sent): string {
  if (s.via === 'retry') return 'closed for a retry'
  const f = s.frame
  if (f.t === 'changes') return `${s.via} changes ${f.from}→${f.to} [${f.items.map((i) => `${keyOf(i)}@${i.seq}`)}]`
  if (f.t === 'backfill') return `backfill ${f.collections} [${f.items.map((i) => `${keyOf(i)}@${i.seq}`)}]${f.more ? ' more' : ''}`
  return JSON.stringify(f)
}

function describeAction(a: Action): string {
  switch (a.k) {
    case 'commit':
      return `commit ${a.puts.map((p) => `${p.coll}/r${p.id}`)}`
    case 'answer':
    case 'fail':
      return `${a.k} read #${a.i}`
    case 'scope':
      return `scope ${JSON.stringify(a.keys)}`
    case 'resub':
      return `resub${a.collections ? ` ${JSON.stringify(a.collections)}` : ''}`
    default:
      return a.k
  }
}

t.test('the subscription against a reference client, under random interleavings', async (t) => {
  const started = performance.now()
  const stats = new Map<string, number>()
  await fc.assert(
    fc.asyncProperty(fc.array(action, { minLength: 5, maxLength: 60, size: 'max' }), async (actions) => {
      const w = new World()
      w.client.subscribe(w.socket)
      for (const a of actions) {
        stats.set(a.k, (stats.get(a.k) ?? 0) + 1)
        await w.run(a)
      }
      await w.quiesce()
      const problems = w.check()
      if (problems.length > 0) throw new Error(`${problems.join('\n')}\n--- what happened ---\n${w.trace.join('\n')}`)
    }),
    { seed: SEED, numRuns: RUNS, ...(PATH ? { path: PATH } : {}) },
  )
  t.pass(`${RUNS} runs (seed ${SEED}) in ${Math.round(performance.now() - started)} ms: ${[...stats].map(([k, n]) => `${k} ${n}`).join(', ')}`)
})
