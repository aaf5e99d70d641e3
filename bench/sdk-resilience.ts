/**
 * The client SDK when the path to the hub breaks (`--only sdk-fallback`), through a TCP proxy
 * (scripts/tcp-proxy.ts) in front of one hub process, with the SDK's default options:
 *  - fallback: the reader's socket is cut and upgrades refused while a writer pushes every 20 ms;
 *    time from the cut to the first change the reader's handler gets over REST;
 *  - back: upgrades allowed again; time until the reader is live on a socket (the probe backoff
 *    caps it);
 *  - offline flush: N ops enqueued while the proxy is down, then the proxy back: ops/s from its
 *    return to the last ack, against the same N ops pushed online.
 */
import { randomUUID } from 'node:crypto'
import { MemoryStorage, SyncClient, type ChangeBatch } from '../src/client/node.ts'
import { startTcpProxy, type TcpProxy } from '../scripts/tcp-proxy.ts'
import { startHubNodes } from './scenarios/hub-nodes.ts'

export interface SdkResilienceOptions {
  root: string
  rounds: number
  offlineOps: number
  log(line: string): void
}

export interface SdkResilienceResult {
  rounds: Array<{ fallbackMs: number; backMs: number }>
  /** The SDK's default probe backoff cap (ms): the bound on the way back. */
  probeCapMs: number
  offline: { ops: number; offlineOpsPerSec: number; onlineOpsPerSec: number; enqueueMs: number }
  error?: string
}

const PROBE_CAP_MS = 5000 // SyncClient's default probe.maxMs

export async function runSdkResilience(opts: SdkResilienceOptions): Promise<SdkResilienceResult> {
  const result: SdkResilienceResult = { rounds: [], probeCapMs: PROBE_CAP_MS, offline: { ops: opts.offlineOps, offlineOpsPerSec: 0, onlineOpsPerSec: 0, enqueueMs: 0 } }
  opts.log('[sdk-fallback] starting a hub')
  const target = await startHubNodes({ users: 1, root: opts.root, log: (l) => opts.log(`[sdk-fallback] ${l}`) }, [{ SYNCHUB_TRANSPORT: 'uws' }])
  const base = target.process.baseUrl
  const token = target.tokens[0]!
  const proxy = await startTcpProxy({ port: Number(new URL(base).port) })
  const clients: SyncClient[] = []
  const client = (url: string, onChanges?: (b: ChangeBatch) => void) => {
    const c = new SyncClient({ url, auth: { getToken: async () => token }, device: { id: randomUUID() }, storage: new MemoryStorage(), ...(onChanges ? { onChanges } : {}) })
    clients.push(c)
    return c
  }
  try {
    const writer = client(base)
    await writer.start()
    await writer.whenSynced()
    for (let round = 1; round <= opts.rounds; round++) result.rounds.push(await fallbackRound(proxy, client, writer, round, opts.log))
    result.offline = await offlineFlush(proxy, client, opts.offlineOps, opts.log)
  } catch (err) {
    result.error = (err as Error).message
    opts.log(`[sdk-fallback] failed: ${result.error}`)
  } finally {
    await Promise.all(clients.map((c) => c.stop()))
    await proxy.close()
    await target.stop()
  }
  return result
}

async function fallbackRound(proxy: TcpProxy, client: (url: string, on?: (b: ChangeBatch) => void) => SyncClient, writer: SyncClient, round: number, log: (l: string) => void) {
  let firstRest = 0
  const reader = client(proxy.url, (b) => {
    if (b.via === 'rest' && b.kind === 'changes' && b.changes.length > 0 && !firstRest) firstRest = performance.now()
  })
  await reader.start()
  await reader.whenSynced()
  let pushing = true
  let k = 0
  const pusher = (async () => {
    while (pushing) {
      void writer.push({ op: 'put', collection: 'settings', id: `r${round}-${++k}`, data: { value: k } })
      await new Promise((r) => setTimeout(r, 20))
    }
  })()
  // The socket is blocked: the live one cut, new upgrades refused; plain HTTP still passes.
  proxy.refuseUpgrades = true
  const blockedAt = performance.now()
  proxy.cut()
  await until(() => firstRest > 0, 15_000, 'a change over REST')
  const fallbackMs = firstRest - blockedAt
  proxy.refuseUpgrades = false
  const allowedAt = performance.now()
  await until(() => reader.status === 'live', 30_000, 'the socket again')
  const backMs = performance.now() - allowedAt
  pushing = false
  await pusher
  await reader.stop()
  log(`[sdk-fallback] round ${round}: first change over REST ${fallbackMs.toFixed(0)} ms after the block; live on the socket ${backMs.toFixed(0)} ms after it was allowed`)
  return { fallbackMs, backMs }
}

async function offlineFlush(proxy: TcpProxy, client: (url: string) => SyncClient, n: number, log: (l: string) => void) {
  const op = (prefix: string, i: number) => ({ op: 'put' as const, collection: 'messages', id: `${prefix}-${i}`, data: { conversation_id: 'flush', role: 'user' as const, content: `message ${i}` } })
  // Online: the same ops, all handed over at once, on a live socket.
  const online = client(proxy.url)
  await online.start()
  await online.whenSynced()
  let t0 = performance.now()
  await Promise.all(Array.from({ length: n }, (_, i) => online.push(op('online', i))))
  const onlineOpsPerSec = n / ((performance.now() - t0) / 1000)
  await online.stop()
  // Offline: enqueued while the hub cannot be reached, flushed when it can.
  const offline = client(proxy.url)
  await offline.start()
  await offline.whenSynced()
  await proxy.down()
  await until(() => offline.status !== 'live', 10_000, 'the client to notice')
  t0 = performance.now()
  const results = Array.from({ length: n }, (_, i) => offline.push(op('offline', i)))
  await new Promise((r) => setTimeout(r, 0))
  const enqueueMs = performance.now() - t0
  await proxy.up()
  const upAt = performance.now()
  await Promise.all(results)
  const offlineOpsPerSec = n / ((performance.now() - upAt) / 1000)
  log(`[sdk-fallback] ${n} ops: online ${onlineOpsPerSec.toFixed(0)}/s; queued offline (enqueued in ${enqueueMs.toFixed(0)} ms) then flushed at ${offlineOpsPerSec.toFixed(0)}/s from the hub's return`)
  return { ops: n, offlineOpsPerSec, onlineOpsPerSec, enqueueMs }
}

async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = performance.now() + ms
  while (!pred()) {
    if (performance.now() > deadline) throw new Error(`waited ${ms} ms for ${what}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}
