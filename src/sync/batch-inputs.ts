import type { Op } from '../../protocol/ops.ts'
import type { PushStore } from '../store/push-store.ts'
import { deviceKey, recordKey, type DeviceState, type RecordRow, type UserState } from '../store/rows.ts'
import type { CollectionRegistry } from './collections.ts'
import type { KnownState } from './known-state.ts'

/** What a batch is planned from. */
export interface BatchInputs {
  users: Map<string, UserState>
  devices: Map<string, DeviceState>
  rows: Map<string, RecordRow>
  /** Stored first answers of replayed mids. */
  firstAnswers: Map<string, Uint8Array>
  /** Records (recordKey) the plan takes to be absent without having read them: the write checks they are. */
  assumedAbsent: Set<string>
}

export interface BatchJob {
  userId: string
  deviceId: string
  ops: Op[]
}

type RecordKey = { userId: string; collection: string; id: string }

const MESSAGES = 'messages'

/**
 * Inputs without a read, from what this node already knows, when every op of the batch creates
 * a record (a put without a base: a new message, the common case). Undefined when any user or
 * device is not known, any op is a replay, or any op needs a stored row.
 */
export function knownInputs(known: KnownState, jobs: BatchJob[]): BatchInputs | undefined {
  const inputs: BatchInputs = { users: new Map(), devices: new Map(), rows: new Map(), firstAnswers: new Map(), assumedAbsent: new Set() }
  const lastMids = new Map<string, number>() // per device, across its jobs in this batch
  for (const job of jobs) {
    const entry = known.get(job.userId)
    const lastMid = entry?.devices.get(job.deviceId)
    if (!entry || lastMid === undefined) return undefined
    inputs.users.set(job.userId, { ...entry.user })
    const key = deviceKey(job.userId, job.deviceId)
    const device = inputs.devices.get(key) ?? { userId: job.userId, deviceId: job.deviceId, lastMid, revoked: false }
    inputs.devices.set(key, device)
    let last = lastMids.get(key) ?? lastMid
    for (const op of job.ops) {
      if (op.op !== 'put' || op.base !== undefined || op.mid <= last) return undefined
      last = op.mid
      inputs.assumedAbsent.add(recordKey(job.userId, op.collection, op.id))
    }
    lastMids.set(key, last)
  }
  return inputs
}

/** Inputs from the store: one read for users, devices and records, more only for replays and children. */
export async function readInputs(store: PushStore, registry: CollectionRegistry, jobs: BatchJob[], now: number): Promise<BatchInputs> {
  // Everything any op may read, replays included (their rows are simply unused): one statement.
  const rowKeys = new Map<string, RecordKey>()
  const parents = new Map<string, Set<string>>() // user → parent ids whose children an op needs
  for (const job of jobs) {
    for (const op of job.ops) {
      const reads = readsOf(op, registry)
      for (const r of reads.records) rowKeys.set(recordKey(job.userId, r.collection, r.id), { userId: job.userId, ...r })
      if (reads.parents.length > 0) {
        let set = parents.get(job.userId)
        if (!set) parents.set(job.userId, (set = new Set()))
        for (const p of reads.parents) set.add(p)
      }
    }
  }
  const deviceKeys = new Map(jobs.map((j) => [deviceKey(j.userId, j.deviceId), { userId: j.userId, deviceId: j.deviceId }]))
  const { users, devices, records: rows } = await store.read([...new Set(jobs.map((j) => j.userId))], [...deviceKeys.values()], [...rowKeys.values()])
  const unknown = [...deviceKeys].filter(([key, d]) => !devices.has(key) && users.has(d.userId)).map(([, d]) => d)
  if (unknown.length > 0) for (const d of await store.addDevices(unknown, now)) devices.set(deviceKey(d.userId, d.deviceId), d)

  const replays: Array<{ userId: string; deviceId: string; mid: number }> = []
  for (const job of jobs) {
    const last = devices.get(deviceKey(job.userId, job.deviceId))?.lastMid ?? 0
    for (const op of job.ops) if (op.mid <= last) replays.push({ userId: job.userId, deviceId: job.deviceId, mid: op.mid })
  }
  const firstAnswers = await store.results(replays)
  for (const [userId, ids] of parents) {
    for (const child of await store.children(userId, MESSAGES, [...ids])) rows.set(recordKey(userId, child.collection, child.id), child)
  }
  return { users, devices, rows, firstAnswers, assumedAbsent: new Set() }
}

/** The records an op reads, and the parents whose children (a conversation's messages) it needs. */
function readsOf(op: Op, registry: CollectionRegistry): { records: Array<{ collection: string; id: string }>; parents: string[] } {
  switch (op.op) {
    case 'put':
      return { records: [{ collection: op.collection, id: op.id }], parents: [] }
    case 'del':
    case 'restore':
      return { records: [{ collection: op.collection, id: op.id }], parents: registry.childrenOf(op.collection).length > 0 ? [op.id] : [] }
    case 'regen':
      return {
        records: [{ collection: 'conversations', id: op.conversation }, { collection: MESSAGES, id: op.old }, { collection: MESSAGES, id: op.message.id }],
        parents: [op.conversation],
      }
    case 'fork':
      return {
        records: [{ collection: 'conversations', id: op.from.conversation }, { collection: MESSAGES, id: op.from.message }, { collection: 'conversations', id: op.conversation.id }],
        parents: [op.from.conversation],
      }
    case 'clear':
      return { records: [{ collection: 'conversations', id: op.conversation }], parents: [op.conversation] }
  }
}
