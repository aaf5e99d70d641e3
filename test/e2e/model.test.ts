/**
 * Model-based test (issue 4): three devices of one user (phone, tablet, laptop: each its own
 * socket, replica, mid counter and outbox) run random sequences of puts (create, update with the
 * current / a stale / the device's own / no base, message status edits and immutable edits,
 * schema-invalid data), deletes, restores, regens, forks, clears, scope changes (PUT
 * /v1/sync/scope), replays of used mids (also with changed content), mid gaps, pushes over REST,
 * pushes of two devices at the same moment, lost acks, pushes lost in flight, offline outboxes,
 * disconnects and reconnects (resume by cursor, REST catch-up of a widening missed while away).
 * Every Result is compared with a reference model written from the protocol
 * (test/helpers/sync-model.ts), seq included. At the end every device's replica equals the
 * server's records (a fresh REST pull) and the model's, in the final scope and then in the full
 * scope (after a widening backfills them); the hub's head and every device's last_mid are the
 * model's; every record an acked op created exists; and there is exactly one conflict copy per
 * first answer that named one (replays created none).
 *
 * Commands run one after another (except the concurrent pushes, where the model accepts either
 * commit order and keeps the one the answers show). After each command the test waits until every
 * connected device has applied the stream up to the head, so a run is deterministic for a seed.
 *
 * Seeds: MODEL_SEED (default 20260404) + the variant's index in HUB_VARIANTS. Knobs: MODEL_RUNS
 * (10), MODEL_MIN_COMMANDS (20), MODEL_COMMANDS (max, 50), MODEL_VARIANTS=pglite+ws,... ,
 * MODEL_SHRINK=0 (no shrinking), MODEL_TRACE=1 (print every run's concrete ops). A failure prints
 * the seed, the counterexample path, the shrunk command list and the concrete ops and answers of
 * the failing run.
 *
 * The last test pins a bug this model work found: a second scope widening that lands while the
 * first backfill is still being sent must get its own backfill.
 */
import t from 'tap'
import fc from 'fast-check'
import { encodeFrame } from '../../protocol/codec.ts'
import type { Op } from '../../protocol/ops.ts'
import type { Change } from '../../protocol/records.ts'
import type { SyncClient } from '../../src/client/socket-client.ts'
import { RestClient } from '../../src/client/rest-client.ts'
import { eachHub, HUB_VARIANTS, waitUntil, type TestHub, type TestUser } from '../helpers/hub.ts'
import {
  ALL_SCOPE_KEYS,
  COLLECTION_SCOPE,
  SyncModel,
  isPlaceholder,
  normalizeChange,
  resultMatches,
  sortNormalized,
  type Data,
  type Expected,
} from '../helpers/sync-model.ts'

const SEED = Number(process.env.MODEL_SEED ?? 20260404)
const RUNS = Number(process.env.MODEL_RUNS ?? 10)
const MIN_COMMANDS = Number(process.env.MODEL_MIN_COMMANDS ?? 20)
const MAX_COMMANDS = Number(process.env.MODEL_COMMANDS ?? 50)
const VARIANTS = process.env.MODEL_VARIANTS ? HUB_VARIANTS.filter((v) => process.env.MODEL_VARIANTS!.split(',').includes(v.name)) : HUB_VARIANTS
const SETTLE_MS = 10_000

// ---- abstract ops: what the generator makes; resolved against the model when issued ----------

type CreateColl = 'conversations' | 'settings' | 'characters'
type AbstractOp =
  | { k: 'create'; coll: CreateColl; n: number }
  | { k: 'message'; conv: number; role: 'user' | 'assistant'; status: boolean; n: number }
  | { k: 'update'; pick: number; base: 'current' | 'stale' | 'local' | 'none'; change: 'data' | 'content' | 'same'; n: number }
  | { k: 'bad'; coll: 'settings' | 'conversations' | 'messages' | 'nope'; n: number }
  | { k: 'del' | 'restore'; target: 'conv' | 'msg' | 'other' | 'missing'; pick: number }
  | { k: 'regen'; conv: number; old: 'newest' | 'any'; fresh: boolean; mismatch: boolean; n: number }
  | { k: 'fork'; conv: number; msg: number; sameConv: boolean; fresh: boolean; n: number }
  | { k: 'clear'; conv: number }

const showAbstract = (a: AbstractOp): string => {
  const { k, ...rest } = a
  return `${k}(${Object.values(rest).join(',')})`
}

// ---- a device: its socket, its replica, its mid counter and outbox --------------------------

const DEVICE_NAMES = ['phone', 'tablet', 'laptop']
const recKey = (c: { collection: string; id: string }) => `${c.collection}/${c.id}`
const collectionsOf = (scope: readonly string[]) => Object.keys(COLLECTION_SCOPE).filter((c) => scope.includes(COLLECTION_SCOPE[c]!))

class Device {
  socket: SyncClient | undefined
  /** The `to` of the last frame applied. */
  cursor = 0
  epoch: string | undefined
  /** The device's replica: the latest change of every record it was sent. */
  readonly local = new Map<string, Change>()
  /** The scope whose collections `local` holds in full (undefined: never synced). */
  knownScope: string[] | undefined
  private pendingScope: string[] | undefined
  /** Collections a `scope` frame added whose final `backfill` frame has not arrived yet. */
  private readonly awaitingBackfill = new Set<string>()
  scopeSeen = 0
  scopeExpected = 0
  /** The next mid to assign. */
  nextMid = 1
  /** Ops not known to be acked, in mid order; replayed as they are on reconnect. */
  outbox: Op[] = []
  /** Every op whose mid was handed to the hub, for replays. */
  readonly sent = new Map<number, Op>()
  readonly violations: string[] = []
  resets = 0
  readonly rest: RestClient

  constructor(
    readonly name: string,
    readonly user: TestUser,
    hubUrl: string,
  ) {
    this.rest = new RestClient(hubUrl, user.token, name)
  }

  get id(): string {
    return this.name
  }
  get online(): boolean {
    return this.socket !== undefined
  }
  get backfilling(): boolean {
    return this.awaitingBackfill.size > 0
  }

  private violation(what: string): void {
    this.violations.push(`${this.name}: ${what}`)
  }

  /** Connects, catches up what a scope widening it missed, and subscribes from its cursor. */
  async connect(): Promise<void> {
    const client = await this.user.connect(this.id)
    this.socket = client
    this.scopeSeen = this.scopeExpected = 0
    this.awaitingBackfill.clear()
    this.pendingScope = undefined
    client.on('changes', (f) => client === this.socket && this.onChanges(client, f))
    client.on('scope', (f) => client === this.socket && this.onScope(f))
    client.on('backfill', (f) => client === this.socket && this.onBackfill(f))
    client.on('close', (code: number) => {
      if (client === this.socket) {
        this.violation(`socket closed by the hub (${code})`)
        this.socket = undefined
      }
    })
    const { scope } = await this.rest.call('GET', '/v1/sync/scope')
    // A widening this device missed while away: its `backfill` went to sockets that were
    // subscribed, so pull the added collections up to the cursor (PROTOCOL.md, Sync scope).
    if (this.knownScope && this.cursor > 0) {
      const had = collectionsOf(this.knownScope)
      const added = collectionsOf(scope).filter((c) => !had.includes(c))
      if (added.length > 0) await this.pullUpToCursor(added)
    }
    this.knownScope = scope
    try {
      await client.subscribe(this.cursor, this.cursor > 0 && this.epoch ? { epoch: this.epoch } : {})
    } catch (err) {
      const reset = (err as { reset?: { reason: string; epoch?: string } }).reset
      if (!reset) throw err
      // Nothing in this test purges or rewrites history: a reset is a finding, but handle it.
      this.resets++
      this.violation(`unexpected reset ${reset.reason} at cursor ${this.cursor}`)
      this.local.clear()
      this.cursor = 0
      await client.subscribe(0)
    }
    this.epoch = client.auth.epoch
  }

  private async pullUpToCursor(collections: string[]): Promise<void> {
    let since = 0
    for (;;) {
      const page = await this.rest.pull({ since, limit: 1000, collections })
      if ('reset' in page) throw new Error(`${this.name}: pull reset ${page.reset}`)
      for (const item of page.items as Change[]) {
        if (item.seq > this.cursor) continue // the stream brings it
        const cur = this.local.get(recKey(item))
        if (!cur || cur.rev < item.rev) this.local.set(recKey(item), item)
      }
      if (!page.more) return
      since = page.cursor
    }
  }

  disconnect(how: 'kill' | 'close'): void {
    const s = this.socket!
    this.socket = undefined
    if (how === 'kill') s.kill()
    else void s.close()
  }

  private onChanges(client: SyncClient, f: { from: number; to: number; items: Change[] }): void {
    if (f.from !== this.cursor) this.violation(`changes from ${f.from} while at cursor ${this.cursor}`)
    for (const item of f.items) {
      if (!(item.seq > f.from && item.seq <= f.to)) this.violation(`item seq ${item.seq} outside (${f.from}, ${f.to}]`)
      if (item.rev !== item.seq) this.violation(`${recKey(item)}: rev ${item.rev} != seq ${item.seq}`)
      const cur = this.local.get(recKey(item))
      if (cur && cur.rev >= item.rev) this.violation(`${recKey(item)}: stream sent rev ${item.rev} after rev ${cur.rev}`)
      this.local.set(recKey(item), item)
    }
    this.cursor = f.to
    client.ack(f.to)
  }

  private onScope(f: { scope: string[]; added: string[]; removed: string[] }): void {
    this.scopeSeen++
    for (const c of f.removed) this.awaitingBackfill.delete(c)
    for (const c of f.added) this.awaitingBackfill.add(c)
    // The replica covers the new scope once every added collection is backfilled.
    if (this.awaitingBackfill.size > 0) this.pendingScope = f.scope
    else this.knownScope = f.scope
  }

  private onBackfill(f: { collections: string[]; items: Change[]; more?: boolean }): void {
    for (const item of f.items) {
      if (!f.collections.includes(item.collection)) this.violation(`backfill of ${f.collections} carried ${recKey(item)}`)
      if (item.seq > this.cursor) this.violation(`backfill item ${recKey(item)} seq ${item.seq} beyond cursor ${this.cursor}`)
      const cur = this.local.get(recKey(item))
      if (cur && cur.rev > item.rev) this.violation(`backfill sent ${recKey(item)} rev ${item.rev} older than rev ${cur.rev}`)
      this.local.set(recKey(item), item)
    }
    if (!f.more) {
      for (const c of f.collections) this.awaitingBackfill.delete(c)
      if (this.awaitingBackfill.size === 0 && this.pendingScope) {
        this.knownScope = this.pendingScope
        this.pendingScope = undefined
      }
    }
  }
}

// ---- the world one property run works on ----------------------------------------------------

interface World {
  h: TestHub
  user: TestUser
  model: SyncModel
  devices: Device[]
  ids: number
  /** The concrete ops and answers of this run, for the failure report. */
  trace: string[]
  stats: Map<string, number>
}

const count = (w: World, what: string) => w.stats.set(what, (w.stats.get(what) ?? 0) + 1)
const fresh = (w: World, prefix: string) => `${prefix}-${++w.ids}`
const pick = <T>(xs: T[], n: number): T | undefined => (xs.length > 0 ? xs[n % xs.length] : undefined)

function fail(w: World, message: string): never {
  throw new Error(`${message}\n--- concrete ops of this run ---\n${w.trace.join('\n')}`)
}

async function waitFor(w: World, pred: () => boolean, what: () => string, ms = SETTLE_MS): Promise<void> {
  const deadline = Date.now() + ms
  while (!pred()) {
    if (Date.now() > deadline) fail(w, `timed out waiting for ${what()}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

/** Waits until every connected device has applied the stream up to the head and any backfill. */
async function settle(w: World): Promise<void> {
  const done = (d: Device) => !d.online || (d.cursor === w.model.seq && !d.backfilling && d.scopeSeen >= d.scopeExpected)
  await waitFor(
    w,
    () => w.devices.every(done),
    () => `devices to reach seq ${w.model.seq}: ${w.devices.map((d) => `${d.name} online=${d.online} cursor=${d.cursor} backfilling=${d.backfilling} scope ${d.scopeSeen}/${d.scopeExpected}`).join('; ')}`,
  )
  const violations = w.devices.flatMap((d) => d.violations)
  if (violations.length > 0) fail(w, `stream violations:\n${violations.join('\n')}`)
}

// ---- turning abstract ops into concrete ones ---------------------------------------------------

/**
 * Mostly a live conversation (for fork and clear one with messages, for regen one whose newest
 * message is an assistant's, when there is such a one); now and then any conversation (the bin
 * included), or one that does not exist.
 */
function pickConversation(w: World, n: number, want: 'any' | 'messages' | 'reply' = 'any'): string {
  const all = w.model.known('conversations')
  const i = Math.floor(n / 10)
  if (all.length === 0 || n % 10 === 9) return `conv-none-${i % 3}`
  const live = all.filter((c) => !c.deleted)
  if (n % 10 === 8 || live.length === 0) return pick(all, i)!.id
  const fit = live.filter((c) => {
    const newest = w.model.liveMessagesOf(c.id).at(-1)
    return want === 'any' || (newest !== undefined && (want === 'messages' || newest.data.role === 'assistant'))
  })
  return pick(fit.length > 0 ? fit : live, i)!.id
}

const NEXT_STATUS: Record<string, string> = { sending: 'sent', sent: 'delivered', delivered: 'failed', failed: 'sending' }

function resolve(w: World, dev: Device, a: AbstractOp, mid: number): Op {
  const m = w.model
  switch (a.k) {
    case 'create':
      if (a.coll === 'conversations') return { op: 'put', mid, collection: 'conversations', id: fresh(w, 'conv'), data: { title: `title ${a.n}` } }
      // Settings and characters reuse a few ids: creating one that exists is a put without base.
      if (a.coll === 'settings') return { op: 'put', mid, collection: 'settings', id: `set-${a.n % 3}`, data: { value: a.n } }
      return { op: 'put', mid, collection: 'characters', id: `chr-${a.n % 3}`, data: { name: `name ${a.n}` } }
    case 'message': {
      // Chats start with a conversation: until one exists, this op creates it.
      if (m.known('conversations').length === 0) return { op: 'put', mid, collection: 'conversations', id: fresh(w, 'conv'), data: { title: `title ${a.n}` } }
      const conversation_id = pickConversation(w, a.conv)
      const data: Data = { conversation_id, role: a.role, content: `say ${a.n}`, ...(a.status ? { status: 'sending' } : {}) }
      return { op: 'put', mid, collection: 'messages', id: fresh(w, 'msg'), data }
    }
    case 'update': {
      const rec = pick(m.known(), a.pick)
      if (!rec) return { op: 'put', mid, collection: 'settings', id: `set-${a.n % 3}`, data: { value: a.n } }
      const local = dev.local.get(recKey(rec))
      // The device edits what it has; a record it never saw, as the model knows it.
      const seen = structuredClone((local?.data ?? rec.data) as Data)
      let data: Data
      if (rec.collection === 'messages') {
        if (a.change === 'content') data = { ...seen, content: `${String(seen.content)} (edited)` }
        else if (a.change === 'same') data = seen
        else {
          const status = NEXT_STATUS[String(seen.status)] ?? 'sent'
          data = { ...seen, status, ...(status === 'delivered' ? { delivered_at: a.n } : {}) }
        }
      } else if (a.change === 'same') data = seen
      else {
        const field = rec.collection === 'conversations' ? 'title' : rec.collection === 'characters' ? 'name' : 'value'
        data = { ...seen, [field]: field === 'value' ? a.n : `${field} ${a.n}` }
      }
      const base = a.base === 'current' ? rec.rev : a.base === 'stale' ? rec.rev - 1 : a.base === 'local' ? local?.rev : undefined
      return { op: 'put', mid, collection: rec.collection, id: rec.id, data, ...(base !== undefined ? { base } : {}) }
    }
    case 'bad': {
      const data: Data =
        a.coll === 'settings'
          ? { val: a.n }
          : a.coll === 'conversations'
            ? { title: a.n }
            : a.coll === 'messages'
              ? { conversation_id: pickConversation(w, a.n), role: 'robot', content: 'beep' }
              : { anything: true }
      return { op: 'put', mid, collection: a.coll, id: fresh(w, 'bad'), data }
    }
    case 'del':
    case 'restore': {
      const pool =
        a.target === 'conv'
          ? m.known('conversations')
          : a.target === 'msg'
            ? m.known('messages')
            : a.target === 'other'
              ? [...m.known('settings'), ...m.known('characters')]
              : []
      const rec = pick(pool, a.pick)
      const [collection, id] = rec ? [rec.collection, rec.id] : [a.target === 'msg' ? 'messages' : 'conversations', `missing-${a.pick % 3}`]
      return { op: a.k, mid, collection, id }
    }
    case 'regen': {
      const conversation = pickConversation(w, a.conv, 'reply')
      const all = m.messagesOf(conversation).filter((r) => !isPlaceholder(r.id))
      const newest = m.liveMessagesOf(conversation).at(-1)
      const old = (a.old === 'newest' && newest && !isPlaceholder(newest.id) ? newest : pick(all, a.n))?.id ?? `msg-none-${a.n % 3}`
      const id = a.fresh ? fresh(w, 'msg') : (pick(m.known('messages'), a.n)?.id ?? fresh(w, 'msg'))
      const data = { conversation_id: a.mismatch ? `${conversation}-other` : conversation, role: 'assistant', content: `regenerated ${a.n}` }
      return { op: 'regen', mid, conversation, old, message: { id, data } }
    }
    case 'fork': {
      const conversation = pickConversation(w, a.conv, 'messages')
      const own = m.messagesOf(conversation).filter((r) => !isPlaceholder(r.id))
      // Mostly a live message of the conversation; else any of its messages, or any message.
      const pool = !a.sameConv ? m.known('messages') : a.n % 4 === 3 ? own : own.filter((r) => !r.deleted)
      const message = pick(pool, a.msg)?.id ?? `msg-none-${a.msg % 3}`
      const id = a.fresh ? fresh(w, 'conv') : (pick(m.known('conversations'), a.n)?.id ?? fresh(w, 'conv'))
      return { op: 'fork', mid, from: { conversation, message }, conversation: { id, data: { title: `fork ${a.n}` } } }
    }
    case 'clear':
      return { op: 'clear', mid, conversation: pickConversation(w, a.conv, 'messages') }
  }
}

function showOp(op: Op): string {
  switch (op.op) {
    case 'put':
      return `#${op.mid} put ${op.collection}/${op.id}${op.base !== undefined ? ` base=${op.base}` : ''} ${JSON.stringify(op.data)}`
    case 'del':
    case 'restore':
      return `#${op.mid} ${op.op} ${op.collection}/${op.id}`
    case 'regen':
      return `#${op.mid} regen ${op.conversation} old=${op.old} new=${op.message.id} ${JSON.stringify(op.message.data)}`
    case 'fork':
      return `#${op.mid} fork ${op.from.conversation}@${op.from.message} -> ${op.conversation.id}`
    case 'clear':
      return `#${op.mid} clear ${op.conversation}`
  }
}

const showResult = (r: Record<string, unknown>) => JSON.stringify(r, (k, v) => (k === 'message' ? undefined : v))
const showExpected = (e: Expected) => JSON.stringify(e)

/** Records the answer category of every op, for the coverage summary. */
function tally(w: World, op: Op, actual: Record<string, unknown>): void {
  const what = actual.ok ? (actual.copy ? 'copy' : 'ok') : String(actual.code)
  count(w, `${op.op} ${what}${actual.dup ? ' (replay)' : ''}`)
}

// ---- pushing ------------------------------------------------------------------------------------

/** All records of the user's stream as a fresh REST pull shows them (the current scope). */
async function pullAll(rest: RestClient, since = 0): Promise<Change[]> {
  const items: Change[] = []
  for (;;) {
    const page = await rest.pull({ since, limit: 1000 })
    if ('reset' in page) throw new Error(`pull reset ${page.reset}`)
    items.push(...page.items)
    if (!page.more) return items
    since = page.cursor
  }
}

/**
 * Learns the ids the hub chose for conflict and fork copies. A conflict copy cannot be touched
 * again in the push that made it (later ops cannot name it), so it is the change at its
 * predicted seq; a fork copy can (a clear of the new conversation), so it is found by its
 * conversation and `forked_from`.
 */
async function bindPlaceholders(w: World): Promise<void> {
  const placeholders = w.model.placeholders()
  if (placeholders.length === 0) return
  const first = Math.min(...placeholders.map((p) => p.createdSeq))
  const pulled = await pullAll(w.user.rest, first - 1)
  const bySeq = new Map(pulled.map((c) => [c.seq, c]))
  for (const p of placeholders) {
    const change = p.conflictOf !== undefined
      ? bySeq.get(p.createdSeq)
      : pulled.find((c) => c.collection === 'messages' && c.data.conversation_id === p.parent && c.data.forked_from === p.data.forked_from)
    if (!change || change.collection !== p.collection) {
      fail(w, `the model predicts a ${p.collection} copy (${JSON.stringify(p.data)}) created at seq ${p.createdSeq}; the hub has ${change ? recKey(change) : 'nothing'} there`)
    }
    if (w.model.get(p.collection, change.id)) fail(w, `the hub's copy id ${change.id} is an id that already existed`)
    w.model.bind(p.id, change.id)
  }
}

/** Pushes `ops` (already numbered) from `dev`, predicting each answer first. */
async function pushAndCheck(w: World, dev: Device, outbox: Op[], newOps: AbstractOp[], via: 'socket' | 'rest', lose: 'none' | 'after_ack' | 'in_flight'): Promise<void> {
  const before = w.model.clone()
  const ops: Op[] = []
  const expected: Expected[] = []
  for (const op of outbox) {
    ops.push(op)
    expected.push(w.model.apply(dev.id, op))
  }
  // New ops are resolved after the ones before them are predicted: a push can create a
  // conversation and then write into it.
  for (const a of newOps) {
    const op = resolve(w, dev, a, dev.nextMid++)
    ops.push(op)
    expected.push(w.model.apply(dev.id, op))
  }
  if (ops.length === 0) return
  for (const op of ops) dev.sent.set(op.mid, op)
  const head = `${dev.name} ${via}${lose !== 'none' ? ` (${lose})` : ''}`

  if (via === 'socket' && lose === 'in_flight') {
    // The push leaves and the connection drops before any answer: did the hub apply it?
    const socket = dev.socket!
    dev.socket = undefined
    socket.sendRaw(encodeFrame({ t: 'push', ref: 1_000_000, ops }, 'msgpack'))
    socket.kill()
    const lastMid = ops.at(-1)!.mid
    let applied = false
    const deadline = Date.now() + 3000
    while (Date.now() < deadline) {
      const { items } = await w.user.rest.call('GET', '/v1/devices')
      if ((items.find((d: { id: string }) => d.id === dev.id)?.last_mid ?? 0) >= lastMid) {
        applied = true
        break
      }
      await new Promise((r) => setTimeout(r, 10))
    }
    w.trace.push(`${head}: ${ops.map(showOp).join(' | ')} → ${applied ? 'applied' : 'never arrived'}, answers lost`)
    count(w, applied ? 'push lost in flight, applied' : 'push lost in flight, not applied')
    if (applied) await bindPlaceholders(w)
    else w.model.restoreFrom(before)
    dev.outbox = ops
    return
  }

  const reply = via === 'rest' ? await dev.rest.push(ops) : await dev.socket!.push(ops)
  const results = reply.results as Array<Record<string, unknown>>
  w.trace.push(`${head}: ${ops.map((op, i) => `${showOp(op)} → ${showResult(results[i] ?? {})}`).join(' | ')} (cursor ${reply.cursor})`)
  if (results.length !== ops.length) fail(w, `${head}: ${results.length} results for ${ops.length} ops`)
  ops.forEach((op, i) => {
    tally(w, op, results[i]!)
    if (!resultMatches(expected[i]!, results[i]!)) {
      fail(w, `${head}: ${showOp(op)}\n  expected ${showExpected(expected[i]!)}\n  got      ${showResult(results[i]!)}`)
    }
  })
  if (reply.cursor !== w.model.seq) fail(w, `${head}: ack cursor ${reply.cursor}, the model's head is ${w.model.seq}`)
  await bindPlaceholders(w)
  // Now bound: a conflict copy's id is the one the hub answered (and will answer to replays).
  ops.forEach((op, i) => {
    const bound = expected[i]!.dup ? { ...w.model.answerOf(dev.id, op.mid)!, dup: true as const } : w.model.answerOf(dev.id, op.mid)
    if (bound && bound.ok && bound.copy !== undefined && bound.copy !== results[i]!.copy) {
      fail(w, `${head}: ${showOp(op)} answered copy ${String(results[i]!.copy)}; the hub stored copy ${bound.copy}`)
    }
  })
  if (via === 'socket' && lose === 'after_ack') {
    // Applied, but the device never recorded the ack: the ops stay in its outbox.
    dev.outbox = ops
    dev.disconnect('kill')
    count(w, 'ack lost')
  } else dev.outbox = []
}

// ---- commands -----------------------------------------------------------------------------------

type Cmd = fc.AsyncCommand<World, World>

class PushCmd implements Cmd {
  constructor(readonly p: { d: number; ops: AbstractOp[]; via: 'socket' | 'rest'; lose: 'none' | 'after_ack' | 'in_flight' }) {}
  check = () => true
  async run(w: World): Promise<void> {
    const dev = w.devices[this.p.d]!
    if (this.p.via === 'socket' && !dev.online) {
      // Offline: the ops wait in the outbox with their mids, against what the device knows now.
      const queued = this.p.ops.map((a) => resolve(w, dev, a, dev.nextMid++))
      dev.outbox.push(...queued)
      w.trace.push(`${dev.name} offline, queued: ${queued.map(showOp).join(' | ')}`)
      count(w, 'ops queued offline')
    } else await pushAndCheck(w, dev, dev.outbox, this.p.ops, this.p.via, this.p.via === 'socket' ? this.p.lose : 'none')
    await settle(w)
  }
  toString() {
    return `push(${DEVICE_NAMES[this.p.d]} ${this.p.via}${this.p.lose !== 'none' ? ' ' + this.p.lose : ''}: ${this.p.ops.map(showAbstract).join(' ')})`
  }
}

/**
 * Two devices push at the same moment: the hub may commit them in either order (or in one group
 * commit), each push whole. The model tries both orders and keeps the one the answers show.
 */
class ConcurrentCmd implements Cmd {
  constructor(readonly p: { a: number; b: number; opsA: AbstractOp[]; opsB: AbstractOp[] }) {}
  check = (w: Readonly<World>) => this.p.a !== this.p.b && w.devices[this.p.a]!.online && w.devices[this.p.b]!.online
  async run(w: World): Promise<void> {
    const [da, db] = [w.devices[this.p.a]!, w.devices[this.p.b]!]
    // Both are written against the state before either commits; neither has an outbox (online).
    const opsA = this.p.opsA.map((x) => resolve(w, da, x, da.nextMid++))
    const opsB = this.p.opsB.map((x) => resolve(w, db, x, db.nextMid++))
    for (const op of opsA) da.sent.set(op.mid, op)
    for (const op of opsB) db.sent.set(op.mid, op)
    const [ra, rb] = await Promise.all([da.socket!.push(opsA), db.socket!.push(opsB)])
    const got = { a: ra.results as Array<Record<string, unknown>>, b: rb.results as Array<Record<string, unknown>> }
    const show = (ops: Op[], results: Array<Record<string, unknown>>) => ops.map((op, i) => `${showOp(op)} → ${showResult(results[i] ?? {})}`).join(' | ')
    w.trace.push(`${da.name} ‖ ${db.name} at once:\n    ${da.name}: ${show(opsA, got.a)} (cursor ${ra.cursor})\n    ${db.name}: ${show(opsB, got.b)} (cursor ${rb.cursor})`)
    const tried: string[] = []
    let chosen: SyncModel | undefined
    for (const order of [['a', 'b'], ['b', 'a']] as const) {
      const m = w.model.clone()
      const ok = order.every((side) => {
        const [dev, ops, results, cursor] = side === 'a' ? [da, opsA, got.a, ra.cursor] : [db, opsB, got.b, rb.cursor]
        const expected = ops.map((op) => m.apply(dev.id, op))
        tried.push(`${dev.name} first-or-second: ${expected.map(showExpected).join(' ')} head ${m.seq}`)
        return results.length === ops.length && expected.every((e, i) => resultMatches(e, results[i]!)) && cursor === m.seq
      })
      if (ok) {
        chosen = m
        count(w, `concurrent pushes, ${order[0] === 'a' ? 'first' : 'second'} sent committed first`)
        break
      }
    }
    if (!chosen) fail(w, `concurrent pushes of ${da.name} and ${db.name} match neither commit order; the model predicted:\n  ${tried.join('\n  ')}`)
    w.model.restoreFrom(chosen)
    opsA.forEach((op, i) => tally(w, op, got.a[i]!))
    opsB.forEach((op, i) => tally(w, op, got.b[i]!))
    await bindPlaceholders(w)
    for (const [dev, ops, results] of [[da, opsA, got.a], [db, opsB, got.b]] as const) {
      ops.forEach((op, i) => {
        const bound = w.model.answerOf(dev.id, op.mid)
        if (bound?.ok && bound.copy !== undefined && bound.copy !== results[i]!.copy) fail(w, `${dev.name}: ${showOp(op)} answered copy ${String(results[i]!.copy)}; the hub stored ${bound.copy}`)
      })
    }
    await settle(w)
  }
  toString() {
    return `concurrent(${DEVICE_NAMES[this.p.a]}: ${this.p.opsA.map(showAbstract).join(' ')} ‖ ${DEVICE_NAMES[this.p.b]}: ${this.p.opsB.map(showAbstract).join(' ')})`
  }
}

/** Re-sends an op whose mid the hub already used (changed or not): dup, the first answer, nothing new. */
class ReplayCmd implements Cmd {
  constructor(readonly p: { d: number; pick: number; mutate: boolean }) {}
  check = (w: Readonly<World>) => w.model.lastMid(DEVICE_NAMES[this.p.d]!) > 0
  async run(w: World): Promise<void> {
    const dev = w.devices[this.p.d]!
    const mid = 1 + (this.p.pick % w.model.lastMid(dev.id))
    const orig = dev.sent.get(mid)!
    // A replay is recognised by its mid alone; its content is not looked at.
    const op: Op = !this.p.mutate
      ? orig
      : orig.op === 'put'
        ? { ...orig, data: { ...orig.data, replayed: true }, base: 0 }
        : orig.op === 'del' || orig.op === 'restore'
          ? { ...orig, id: `${orig.id}-changed` }
          : { op: 'clear', mid, conversation: 'replayed-with-other-content' }
    const expected = w.model.apply(dev.id, op)
    const reply = dev.online ? await dev.socket!.push([op]) : await dev.rest.push([op])
    const actual = reply.results[0] as Record<string, unknown>
    w.trace.push(`${dev.name} replay via ${dev.online ? 'socket' : 'rest'}: ${showOp(op)} → ${showResult(actual)}`)
    tally(w, op, actual)
    if (!resultMatches(expected, actual)) fail(w, `replay ${dev.name} ${showOp(op)}\n  expected ${showExpected(expected)}\n  got      ${showResult(actual)}`)
    if (reply.cursor !== w.model.seq) fail(w, `replay ${dev.name} ${showOp(op)}: ack cursor ${reply.cursor}, the model's head is ${w.model.seq}`)
    await settle(w)
  }
  toString() {
    return `replay(${DEVICE_NAMES[this.p.d]} #${this.p.pick}${this.p.mutate ? ' mutated' : ''})`
  }
}

/** An op that skips a mid: `out_of_order`, and the skipped mid is not used up. */
class GapCmd implements Cmd {
  constructor(readonly p: { d: number; skip: number }) {}
  check = () => true
  async run(w: World): Promise<void> {
    const dev = w.devices[this.p.d]!
    const op: Op = { op: 'put', mid: dev.nextMid + 1 + this.p.skip, collection: 'settings', id: 'gap', data: { value: 'must not be stored' } }
    const expected = w.model.apply(dev.id, op)
    const reply = dev.online ? await dev.socket!.push([op]) : await dev.rest.push([op])
    const actual = reply.results[0] as Record<string, unknown>
    w.trace.push(`${dev.name} gap: ${showOp(op)} → ${showResult(actual)}`)
    tally(w, op, actual)
    if (!resultMatches(expected, actual)) fail(w, `gap ${dev.name} ${showOp(op)}\n  expected ${showExpected(expected)}\n  got      ${showResult(actual)}`)
    await settle(w)
  }
  toString() {
    return `gap(${DEVICE_NAMES[this.p.d]} +${this.p.skip + 1})`
  }
}

/** PUT /v1/sync/scope: every connected device is told, and backfilled after a widening. */
async function setScope(w: World, scope: string[]): Promise<void> {
  const reply = await w.user.rest.call('PUT', '/v1/sync/scope', { scope })
  w.model.scope = [...new Set(scope)]
  if (JSON.stringify(reply.scope) !== JSON.stringify(w.model.scope)) fail(w, `PUT scope ${JSON.stringify(scope)} answered ${JSON.stringify(reply.scope)}`)
  for (const d of w.devices) if (d.online) d.scopeExpected++
  w.trace.push(`scope → ${JSON.stringify(w.model.scope)}`)
  count(w, 'scope changes')
  await settle(w)
}

class ScopeCmd implements Cmd {
  constructor(readonly scope: string[]) {}
  check = () => true
  run = (w: World) => setScope(w, this.scope)
  toString() {
    return `scope(${this.scope.join(',')})`
  }
}

class DisconnectCmd implements Cmd {
  constructor(readonly p: { d: number; how: 'kill' | 'close' }) {}
  check = (w: Readonly<World>) => w.devices[this.p.d]!.online
  async run(w: World): Promise<void> {
    w.devices[this.p.d]!.disconnect(this.p.how)
    w.trace.push(`${DEVICE_NAMES[this.p.d]} disconnects (${this.p.how})`)
    count(w, 'disconnects')
  }
  toString() {
    return `disconnect(${DEVICE_NAMES[this.p.d]} ${this.p.how})`
  }
}

async function reconnect(w: World, dev: Device): Promise<void> {
  await dev.connect()
  w.trace.push(`${dev.name} reconnects at cursor ${dev.cursor}, outbox ${dev.outbox.map((o) => o.mid).join(',') || 'empty'}`)
  count(w, 'reconnects')
  if (dev.outbox.length > 0) await pushAndCheck(w, dev, dev.outbox, [], 'socket', 'none')
  await settle(w)
}

class ReconnectCmd implements Cmd {
  constructor(readonly d: number) {}
  check = (w: Readonly<World>) => !w.devices[this.d]!.online
  run = (w: World) => reconnect(w, w.devices[this.d]!)
  toString() {
    return `reconnect(${DEVICE_NAMES[this.d]})`
  }
}

// ---- generators ---------------------------------------------------------------------------------

// Choices are taken modulo the candidates: unbiased, so no residue is favoured.
const n = fc.noBias(fc.nat(9999))
const device = fc.integer({ min: 0, max: 2 })
const abstractOp: fc.Arbitrary<AbstractOp> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ k: fc.constant('create' as const), coll: fc.constantFrom<CreateColl>('conversations', 'conversations', 'conversations', 'settings', 'characters'), n }) },
  {
    weight: 5,
    arbitrary: fc.record({ k: fc.constant('message' as const), conv: n, role: fc.constantFrom<'user' | 'assistant'>('user', 'assistant'), status: fc.boolean(), n }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      k: fc.constant('update' as const),
      pick: n,
      base: fc.constantFrom<'current' | 'stale' | 'local' | 'none'>('current', 'current', 'local', 'stale', 'none'),
      change: fc.constantFrom<'data' | 'content' | 'same'>('data', 'data', 'data', 'content', 'same'),
      n,
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('bad' as const), coll: fc.constantFrom<'settings' | 'conversations' | 'messages' | 'nope'>('settings', 'conversations', 'messages', 'nope'), n }) },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constantFrom<'del' | 'restore'>('del', 'restore'),
      target: fc.constantFrom<'conv' | 'msg' | 'other' | 'missing'>('conv', 'msg', 'msg', 'other', 'missing'),
      pick: n,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant('regen' as const),
      conv: n,
      old: fc.constantFrom<'newest' | 'any'>('newest', 'newest', 'newest', 'any'),
      fresh: fc.constantFrom(true, true, true, false),
      mismatch: fc.constantFrom(false, false, false, false, true),
      n,
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({ k: fc.constant('fork' as const), conv: n, msg: n, sameConv: fc.constantFrom(true, true, true, false), fresh: fc.constantFrom(true, true, true, false), n }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('clear' as const), conv: n }) },
)

const command: fc.Arbitrary<Cmd> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .record({
        d: device,
        ops: fc.array(abstractOp, { minLength: 1, maxLength: 3 }),
        via: fc.constantFrom<'socket' | 'rest'>('socket', 'socket', 'socket', 'rest'),
        lose: fc.constantFrom<'none' | 'after_ack' | 'in_flight'>('none', 'none', 'none', 'none', 'none', 'after_ack', 'in_flight'),
      })
      .map((p) => new PushCmd(p)),
  },
  {
    weight: 3,
    arbitrary: fc
      .record({ a: device, b: device, opsA: fc.array(abstractOp, { minLength: 1, maxLength: 3 }), opsB: fc.array(abstractOp, { minLength: 1, maxLength: 3 }) })
      .map((p) => new ConcurrentCmd(p)),
  },
  { weight: 2, arbitrary: fc.record({ d: device, pick: n, mutate: fc.boolean() }).map((p) => new ReplayCmd(p)) },
  { weight: 1, arbitrary: fc.record({ d: device, skip: fc.nat(2) }).map((p) => new GapCmd(p)) },
  {
    weight: 1,
    arbitrary: fc
      .oneof(
        { weight: 2, arbitrary: fc.constant(ALL_SCOPE_KEYS) },
        // Narrowing: chat.history stays in two times out of three, so the chat ops keep running.
        { weight: 2, arbitrary: fc.subarray(['user.settings', 'characters.cards']).map((keys) => ['chat.history', ...keys]) },
        { weight: 1, arbitrary: fc.subarray(['chat.history', 'user.settings', 'characters.cards']) },
      )
      .map((s) => new ScopeCmd(s)),
  },
  { weight: 2, arbitrary: fc.record({ d: device, how: fc.constantFrom<'kill' | 'close'>('kill', 'close') }).map((p) => new DisconnectCmd(p)) },
  // A reconnect of a device that is online is skipped (its check fails): weigh it up.
  { weight: 3, arbitrary: device.map((d) => new ReconnectCmd(d)) },
)

// ---- the end of a run: everyone synced, everything compared ----------------------------------

/** JSON with object keys sorted, so key order never counts as a difference. */
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : 1))) : x))

function firstDifference(a: unknown[], b: unknown[]): string | undefined {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const x = canonical(a[i])
    const y = canonical(b[i])
    if (x !== y) return `at #${i} of ${a.length}/${b.length}:\n    ${x}\n    ${y}`
  }
  return undefined
}

/** Server (fresh REST pull) == model == every device, restricted to `collections`. */
async function compareAll(w: World, label: string, collections: Set<string>): Promise<void> {
  const server = sortNormalized(await pullAll(w.user.rest))
  const serverNorm = server.map(normalizeChange)
  const modelNorm = w.model.snapshot(collections)
  const diff = firstDifference(serverNorm, modelNorm)
  if (diff) fail(w, `${label}: the server's records (first) differ from the model's (second) ${diff}`)
  for (const d of w.devices) {
    const local = sortNormalized([...d.local.values()].filter((c) => collections.has(c.collection)))
    const devDiff = firstDifference(server as unknown[], local)
    if (devDiff) fail(w, `${label}: the server's records (first) differ from ${d.name}'s (second) ${devDiff}`)
  }
}

async function finish(w: World): Promise<void> {
  // Everyone comes back and sends what is left in the outbox.
  for (const d of w.devices) if (!d.online) await reconnect(w, d)
  await settle(w)
  await compareAll(w, 'end, current scope', w.model.scopeCollections())
  // Widen to everything: devices get what they never had (backfill), then compare it all.
  await setScope(w, ALL_SCOPE_KEYS)
  await compareAll(w, 'end, full scope', w.model.scopeCollections())

  const status = await w.user.rest.status()
  if (status.cursor !== w.model.seq) fail(w, `the server's head is ${status.cursor}, the model's ${w.model.seq}`)
  // Every mid of every device was used exactly as the model says (nothing left unsent).
  const { items } = await w.user.rest.call('GET', '/v1/devices')
  for (const d of w.devices) {
    const lastMid = items.find((i: { id: string }) => i.id === d.id)?.last_mid ?? 0
    if (lastMid !== w.model.lastMid(d.id) || lastMid !== d.nextMid - 1) {
      fail(w, `${d.name}: the hub's last_mid is ${lastMid}, the model's ${w.model.lastMid(d.id)}, the device assigned up to ${d.nextMid - 1}`)
    }
  }
  const server = await pullAll(w.user.rest)
  const ids = new Set(server.map((c) => c.id))
  // No acked op is missing: every record an acked op created is on the server.
  const missing = [...w.model.created].filter((id) => !ids.has(id))
  if (missing.length > 0) fail(w, `records created by acked ops are missing on the server: ${missing.join(', ')}`)
  // No conflict copy came from a replay: one copy per first answer that named one, no more.
  const answered = new Set<string>()
  for (const d of w.devices) {
    for (let mid = 1; mid <= w.model.lastMid(d.id); mid++) {
      const a = w.model.answerOf(d.id, mid)
      if (a?.ok && a.copy !== undefined) {
        if (answered.has(a.copy)) fail(w, `copy ${a.copy} was answered to two ops`)
        answered.add(a.copy)
      }
    }
  }
  const copies = server.filter((c) => c.conflict_of !== undefined).map((c) => c.id)
  if (copies.length !== answered.size || copies.some((id) => !answered.has(id))) {
    fail(w, `conflict copies on the server ${JSON.stringify(copies)} != copies answered to first pushes ${JSON.stringify([...answered])}`)
  }
  w.stats.set('records at the end (all runs)', (w.stats.get('records at the end (all runs)') ?? 0) + server.length)
}

// ---- the property -------------------------------------------------------------------------------

async function runOnce(h: TestHub, cmds: Iterable<Cmd>, stats: Map<string, number>): Promise<void> {
  const user = await h.newUser()
  const w: World = { h, user, model: new SyncModel(), devices: DEVICE_NAMES.map((name) => new Device(name, user, h.url)), ids: 0, trace: [], stats }
  try {
    for (const d of w.devices) await d.connect()
    count(w, `run of ${[...cmds].length} commands`)
    await fc.asyncModelRun(() => ({ model: w, real: w }), cmds)
    await finish(w)
  } finally {
    for (const d of w.devices) d.socket?.kill()
    if (process.env.MODEL_TRACE) console.error(`--- run of user ${user.username}\n${w.trace.join('\n')}`)
  }
}

t.test('three devices against a reference model: every answer, every replica, no lost op, no replayed copy', async (t) => {
  const coverage = new Map<string, number>()
  eachHub(
    t,
    async (t, h) => {
      // One seed per variant, the same whichever variants run: MODEL_SEED + its index.
      const seed = SEED + HUB_VARIANTS.findIndex((v) => v.name === h.variant.name)
      const stats = new Map<string, number>()
      const started = Date.now()
      const details = await fc.check(
        fc.asyncProperty(fc.array(command, { minLength: MIN_COMMANDS, maxLength: MAX_COMMANDS }), (cmds) => runOnce(h, cmds, stats)),
        // Shrinking replays runs against the hub: bounded in time (MODEL_SHRINK=0 turns it off).
        { seed, numRuns: RUNS, endOnFailure: process.env.MODEL_SHRINK === '0', plugins: [fc.interruptAfterTimeLimit(50_000)] },
      )
      t.comment(`seed ${seed}, ${details.numRuns} runs in ${((Date.now() - started) / 1000).toFixed(1)} s`)
      t.comment([...stats].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => `${k}: ${v}`).join('\n'))
      if (details.failed) {
        const error = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance)
        t.comment(`FAILED: seed ${seed}, path ${details.counterexamplePath}\n${fc.defaultReportMessage(details)}\n${error}`)
        t.fail(`model-based run failed: seed ${seed} (MODEL_SEED=${SEED} MODEL_VARIANTS=${h.variant.name} replays it), see the comment above`, { error })
        return
      }
      // Under a time limit a slow machine may run fewer than RUNS: still a pass, but say so.
      if (details.interrupted) t.comment(`interrupted by the time limit after ${details.numRuns} of ${RUNS} runs`)
      t.ok(details.numRuns > 0, `${details.numRuns} runs of seed ${seed} passed`)
      for (const [k, v] of stats) coverage.set(k, (coverage.get(k) ?? 0) + v)
    },
    { variants: VARIANTS },
  )
  // The generator must keep reaching the interesting paths, or the property proves little.
  t.test('the runs covered every kind of answer', async (t) => {
    if (process.env.MODEL_VARIANTS || coverage.size === 0) return void t.skip('coverage is checked over all variants', () => {})
    const seen = (prefix: string) => [...coverage.keys()].some((k) => k.startsWith(prefix))
    for (const path of [
      'put ok', 'put copy', 'put immutable', 'put not_found', 'put out_of_scope', 'put invalid', 'put out_of_order', 'del ok', 'del not_found',
      'restore ok', 'regen ok', 'regen invalid', 'regen not_found', 'fork ok', 'fork invalid', 'clear ok', 'scope changes', 'reconnects', 'ack lost',
      'push lost in flight, applied', 'ops queued offline', 'concurrent pushes',
    ]) {
      t.ok(seen(path), `covered: ${path}`)
    }
    t.ok(seen('put copy (replay)'), 'covered: a replayed conflicting put')
    t.ok([...coverage.keys()].some((k) => k.endsWith('(replay)') && !k.startsWith('put')), 'covered: replays of other ops')
  })
})

/**
 * Found next to the model test, in the scope/backfill path it exercises; the model's commands run
 * one at a time and cannot hit it. PROTOCOL.md (Sync scope): "After a widening,
 * {t:"backfill", collections:[added], …} frames carry the added collections' records that the
 * socket was never sent". The session (now src/sync/subscription.ts) queued the added collections
 * when the socket was `catching_up`, and only `subscribe()` drained that queue; a backfill set
 * `catching_up` too, so a second widening while the first backfill was still being sent got its
 * `scope` frame but never its backfill: the socket silently lacked those collections' records
 * until it subscribed again. The device reads slowly here (its TCP reads are
 * paused) so the first backfill is reliably still running.
 */
t.test(
  'a second widening while the first backfill is still being sent gets its own backfill',
  async (t) => {
    eachHub(
      t,
      async (t, h) => {
        const alice = await h.newUser()
        const writer = new RestClient(h.url, alice.token, 'writer')
        let mid = 0
        // About 8 MB of settings: more than the kernel and the hub buffer for a paused reader.
        for (let p = 0; p < 2; p++) {
          await writer.push(Array.from({ length: 400 }, (_, i) => ({ op: 'put' as const, mid: ++mid, collection: 'settings', id: `s${p}-${i}`, data: { value: 'x'.repeat(10_000) } })))
        }
        await writer.push([{ op: 'put', mid: ++mid, collection: 'characters', id: 'chr-1', data: { name: 'Ada' } }])
        const scope = (keys: string[]) => alice.rest.call('PUT', '/v1/sync/scope', { scope: keys })
        await scope(['chat.history'])
        const pc = await alice.connect('pc')
        const scopes: Array<{ added: string[] }> = []
        const backfilled = new Set<string>()
        const finished: string[][] = []
        pc.on('scope', (f) => scopes.push(f))
        pc.on('backfill', (f) => {
          for (const item of f.items) backfilled.add(item.id)
          if (!f.more) finished.push(f.collections)
        })
        await pc.subscribe(0)

        const tcp = (pc as unknown as { ws: { _socket: { pause(): void; resume(): void } } }).ws._socket
        tcp.pause()
        await scope(['chat.history', 'user.settings'])
        await new Promise((r) => setTimeout(r, 200))
        await scope(['chat.history', 'user.settings', 'characters.cards'])
        await new Promise((r) => setTimeout(r, 200))
        const stalled = finished.length === 0
        tcp.resume()
        // 8 MB of backfill against a reader that stopped: it cannot have finished, or the case is not tested.
        t.ok(stalled, 'the first backfill was still being sent when the second widening came')
        if (!stalled) return
        await waitUntil(() => scopes.length === 2 && finished.some((c) => c.includes('settings')), 30_000)
        await waitUntil(() => finished.some((c) => c.includes('characters')), 2000).catch(() => {})
        t.same(scopes.map((s) => s.added), [['settings'], ['characters']], 'both widenings were announced')
        t.equal([...backfilled].filter((id) => id.startsWith('s')).length, 800, 'the first widening was backfilled')
        t.ok(finished.some((c) => c.includes('characters')), 'the second widening was backfilled too (a final backfill frame for characters)')
        t.ok(backfilled.has('chr-1'), 'the character the second widening covers reached the device')
      },
      { variants: VARIANTS },
    )
  },
)
