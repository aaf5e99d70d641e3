/**
 * The client's state machine against a scripted in-process hub (test/client/scripted-hub.ts) on
 * a virtual clock, under random programs of pushes, drops, refused upgrades, a hub that goes
 * down, drains, slow-consumer closes, expired tokens, duplicated frames, history resets, and
 * restarts and crashes of the devices on their stored state. Checks the invariants of
 * src/client/CLIENT.md: every pushed op applied exactly once; every push() settled with its
 * first answer (never rejected for connectivity); each device's handler sees each seq once and
 * in order in each history, the whole history in the end; the cursor written only after the
 * handler returned, and device acks never ahead of it. Replays from a seed:
 *   SYNCHUB_MODEL_SEED=<seed> npx tap test/client/model.test.ts
 */
import fc from 'fast-check'
import t from 'tap'
import { HubError } from '../../protocol/errors.ts'
import type { Result } from '../../protocol/ops.ts'
import { MemoryStorage } from '../../src/client/storage/memory.ts'
import { SyncClient } from '../../src/client/sync-client.ts'
import { ScriptedHub } from './scripted-hub.ts'
import { seededRandom, settle, VirtualClock } from './virtual-clock.ts'

type Cmd =
  | { k: 'push'; d: 0 | 1; n: number; refuse: boolean }
  | { k: 'advance'; ms: number }
  | { k: 'drop'; d: 0 | 1 }
  | { k: 'drain'; retry?: number }
  | { k: 'slow'; d: 0 | 1 }
  | { k: 'refuseUpgrades'; on: boolean }
  | { k: 'down'; on: boolean }
  | { k: 'expireTokens' }
  | { k: 'duplicate'; d: 0 | 1 }
  | { k: 'resetHistory' }
  | { k: 'restart'; d: 0 | 1 }
  | { k: 'crash'; d: 0 | 1 }

const dev = fc.constantFrom<0 | 1>(0, 1)
const command: fc.Arbitrary<Cmd> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ k: fc.constant('push' as const), d: dev, n: fc.integer({ min: 1, max: 4 }), refuse: fc.boolean().map((b) => b && Math.random() < 0.2) }) },
  { weight: 6, arbitrary: fc.record({ k: fc.constant('advance' as const), ms: fc.constantFrom(1, 3, 10, 50, 300, 1500, 6000, 25000) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant('drop' as const), d: dev }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('drain' as const), retry: fc.option(fc.integer({ min: 0, max: 2500 }), { nil: undefined }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('slow' as const), d: dev }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('refuseUpgrades' as const), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('down' as const), on: fc.boolean() }) },
  { weight: 1, arbitrary: fc.constant({ k: 'expireTokens' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('duplicate' as const), d: dev }) },
  { weight: 1, arbitrary: fc.constant({ k: 'resetHistory' as const }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('restart' as const), d: dev }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant('crash' as const), d: dev }) },
)

interface Device {
  name: string
  storage: MemoryStorage
  client: SyncClient
  /** The handler's log, one segment per history (a reset starts the next). */
  segments: number[][]
  problems: string[]
  pushed: number
  /** Ids of ops the scripted hub refuses (their data asks for it). */
  refused: Set<string>
  /** push() promises of the running instance: id → outcome. */
  outcomes: Map<string, { result?: Result; error?: unknown; refuse: boolean }>
}

async function run(cmds: Cmd[], seed: number): Promise<string[]> {
  const clock = new VirtualClock()
  const hub = new ScriptedHub(clock)
  const random = seededRandom(seed)
  const devices: Device[] = []
  stats.runs++

  const open = (d: Device): SyncClient => {
    const client = new SyncClient({
      url: 'http://hub.test',
      auth: { username: 'ada', password: hub.password },
      device: { id: d.name },
      storage: d.storage,
      clock,
      random,
      ...hub.portsFor(d.name),
      reconnect: { baseMs: 100, maxMs: 2000 },
      probe: { baseMs: 200, maxMs: 2000 },
      pollWaitSec: 5,
      ackIntervalMs: 50,
      onChanges: (batch) => {
        if (d.client !== client) return void d.problems.push('a stopped instance delivered a batch')
        if (batch.kind !== 'changes') return
        const seg = d.segments[d.segments.length - 1]!
        for (const c of batch.changes) {
          const last = seg[seg.length - 1] ?? 0
          if (c.seq <= last) d.problems.push(`seq ${c.seq} after ${last} (duplicate or out of order)`)
          else if (c.seq !== last + 1) d.problems.push(`seq ${c.seq} after ${last} (a gap: the fake hub does not compact)`)
          seg.push(c.seq)
        }
        // Written only after the handler returns: the stored cursor is still before this batch.
        const stored = d.storage.current().meta.cursor
        if (stored > batch.from) d.problems.push(`cursor ${stored} stored before the handler of ${batch.from}..${batch.to} returned`)
      },
      onReset: () => {
        if (d.client !== client) return
        d.segments.push([])
      },
    })
    client.on('state', (st) => {
      if (st === 'polling') stats.polling++
    })
    client.on('error', (e) => {
      if (e.fatal) d.problems.push(`fatal error: ${e.code} ${e.message}`)
    })
    void client.start()
    return client
  }

  for (const name of ['phone', 'pc']) {
    const d: Device = { name, storage: new MemoryStorage(), client: undefined as never, segments: [[]], problems: [], pushed: 0, refused: new Set(), outcomes: new Map() }
    d.client = open(d)
    devices.push(d)
  }

  const push = (d: Device, refuse: boolean) => {
    const id = `${d.name}-${++d.pushed}`
    const outcome: { result?: Result; error?: unknown; refuse: boolean } = { refuse }
    d.outcomes.set(id, outcome)
    if (refuse) d.refused.add(id)
    const op = refuse ? { op: 'put' as const, collection: 'settings', id, data: { value: 'refuse-me' } } : { op: 'put' as const, collection: 'settings', id, data: { value: id } }
    d.client.push(op).then(
      (r) => (outcome.result = r),
      (e) => (outcome.error = e),
    )
  }

  for (const c of cmds) {
    switch (c.k) {
      case 'push':
        for (let i = 0; i < c.n; i++) push(devices[c.d]!, c.refuse)
        break
      case 'advance':
        await clock.advance(c.ms)
        break
      case 'drop':
        hub.drop(devices[c.d]!.name)
        break
      case 'drain':
        hub.drain(c.retry)
        break
      case 'slow':
        hub.slowConsumer(devices[c.d]!.name)
        break
      case 'refuseUpgrades':
        hub.refuseUpgrades = c.on
        break
      case 'down':
        hub.down = c.on
        break
      case 'expireTokens':
        hub.expireTokens()
        break
      case 'duplicate':
        hub.duplicate(devices[c.d]!.name)
        break
      case 'resetHistory':
        hub.resetHistory()
        break
      case 'restart':
      case 'crash': {
        const d = devices[c.d]!
        await settle()
        if (c.k === 'restart') {
          const stopping = d.client.stop()
          await clock.advance(10)
          await stopping
        } else {
          // A crash: whatever the old instance would still write is lost with it.
          const copy = new MemoryStorage()
          await copy.write({ meta: d.storage.current().meta, putOps: d.storage.current().outbox, putRecords: d.storage.current().records })
          void d.client.stop()
          d.storage = copy
        }
        d.outcomes.clear() // the old instance's promises went with it; its ops stay in the outbox
        d.client = open(d)
        break
      }
    }
    await settle()
  }

  // Heal everything and let it converge.
  hub.refuseUpgrades = false
  hub.down = false
  for (let i = 0; i < 60 && !devices.every((d) => d.client.status === 'live' && d.client.outbox === 0 && d.client.cursor === hub.head); i++) await clock.advance(1000)

  const problems: string[] = [...hub.violations]
  for (const d of devices) {
    problems.push(...d.problems.slice(0, 3).map((p) => `${d.name}: ${p}`))
    if (d.client.status !== 'live') problems.push(`${d.name}: status ${d.client.status} after healing`)
    if (d.client.outbox !== 0) problems.push(`${d.name}: ${d.client.outbox} ops still in the outbox`)
    const last = d.segments[d.segments.length - 1]!
    const whole = Array.from({ length: hub.head }, (_, i) => i + 1)
    if (JSON.stringify(last) !== JSON.stringify(whole)) problems.push(`${d.name}: the handler saw ${last.length} seqs of the current history (head ${hub.head}), first ${last.slice(0, 5)}`)
    for (const [id, o] of d.outcomes) {
      if (o.refuse) {
        if (!(o.error instanceof HubError && o.error.code === 'invalid')) problems.push(`${d.name}: ${id} should be refused, got ${JSON.stringify(o.result ?? String(o.error))}`)
      } else if (o.error) problems.push(`${d.name}: ${id} rejected: ${String(o.error)}`)
      else if (!o.result?.ok) problems.push(`${d.name}: ${id} not settled`)
      else if (o.result.id !== id) problems.push(`${d.name}: ${id} settled with another op's answer ${JSON.stringify(o.result)}`)
    }
    for (const a of hub.acks.filter((x) => x.device === d.name)) if (a.cursor > hub.head) problems.push(`${d.name}: acked ${a.cursor} beyond the head ${hub.head}`)
  }
  // Exactly once: every op each device made applied once, refusals never.
  const counts = new Map<string, number>()
  for (const a of hub.applied) counts.set(a.id, (counts.get(a.id) ?? 0) + 1)
  for (const [id, n] of counts) if (n !== 1) problems.push(`${id} applied ${n} times`)
  for (const d of devices) {
    for (let k = 1; k <= d.pushed; k++) {
      const id = `${d.name}-${k}`
      if (!counts.has(id) && !d.refused.has(id)) problems.push(`${id} was never applied`)
      if (counts.has(id) && d.refused.has(id)) problems.push(`${id} was applied, though the hub refuses it`)
    }
  }
  stats.applied += hub.applied.length
  stats.resets += devices.reduce((n, d) => n + d.segments.length - 1, 0)
  stats.head += hub.head
  for (const d of devices) await d.client.stop()
  return problems
}

const stats = { runs: 0, applied: 0, polling: 0, resets: 0, head: 0 }

const seed = process.env.SYNCHUB_MODEL_SEED ? Number(process.env.SYNCHUB_MODEL_SEED) : undefined
t.test('the client keeps its invariants under random faults', async (t) => {
  await fc.assert(
    fc.asyncProperty(fc.array(command, { minLength: 5, maxLength: 40 }), fc.integer({ min: 1, max: 2 ** 31 - 1 }), async (cmds, jitterSeed) => {
      const problems = await run(cmds, jitterSeed)
      if (problems.length) throw new Error(problems.slice(0, 8).join('\n'))
    }),
    { numRuns: Number(process.env.SYNCHUB_MODEL_RUNS ?? 60), ...(seed !== undefined ? { seed } : {}), verbose: 1 },
  )
  t.pass('every run kept every invariant')
  t.comment(`${stats.runs} runs: ${stats.applied} ops applied, ${stats.head} changes in the final histories, ${stats.polling} switches to REST polling, ${stats.resets} resets handled`)
  t.ok(stats.polling > 0 && stats.resets > 0 && stats.applied > 0, 'the runs switched to polling, reset and pushed')
})
