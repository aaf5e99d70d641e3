/**
 * Cold start: a new device joins an account that already holds a long history (by default
 * 100,000 messages in 200 conversations) and pulls all of it, once over REST and once over the
 * socket; then the account is exported and imported into an empty one. Reports time, changes
 * per second and the peak memory of hub and client for each, the hub's memory sampled while it
 * works, so a hub that buffered a whole history (instead of streaming it) shows here.
 */
import { randomUUID } from 'node:crypto'
import { WebSocket } from 'ws'
import { decodeMsgpack, encodeMsgpack } from '../protocol/codec.ts'
import { startHubNodes, type HubTarget } from './scenarios/hub-nodes.ts'

export interface ColdStartOptions {
  root: string
  messages: number
  conversations: number
  log(line: string): void
}

export interface ColdStartPhase {
  name: string
  /** Changes (or backup lines) moved. */
  items: number
  seconds: number
  perSecond: number
  hubRssStartMiB: number
  hubRssPeakMiB: number
  clientRssPeakMiB: number
  bytes?: number
  detail?: string
}

export interface ColdStartResult {
  messages: number
  conversations: number
  seedSeconds: number
  phases: ColdStartPhase[]
  error?: string
}

const OPS_PER_PUSH = 500
/** A cold-starting client asks for big pages (the protocol allows up to 10,000 changes). */
const PULL_PAGE = 5000
const CONTENT = 'The quick brown fox jumps over the lazy dog. '.repeat(4) // ~180 B, a short chat message

export async function runColdStart(opts: ColdStartOptions): Promise<ColdStartResult> {
  const result: ColdStartResult = { messages: opts.messages, conversations: opts.conversations, seedSeconds: 0, phases: [] }
  opts.log(`[cold] starting a hub; seeding ${opts.messages} messages in ${opts.conversations} conversations`)
  const target = await startHubNodes({ users: 2, root: opts.root, log: (l) => opts.log(`[cold] ${l}`) }, [{}])
  try {
    const base = target.process.baseUrl
    const [source, empty] = target.tokens as [string, string]
    const t0 = performance.now()
    const head = await seed(base, source, opts)
    result.seedSeconds = (performance.now() - t0) / 1000
    opts.log(`[cold] seeded ${head} changes in ${result.seedSeconds.toFixed(1)} s`)

    result.phases.push(await measure(target, `REST pull (msgpack, ${PULL_PAGE} per page)`, () => restPull(base, source, head)))
    opts.log(`[cold] ${describe(result.phases.at(-1)!)}`)
    result.phases.push(await measure(target, 'socket pull (sub since 0 → synced)', () => socketPull(target.wsUrl, source, head)))
    opts.log(`[cold] ${describe(result.phases.at(-1)!)}`)
    let backup: Buffer | undefined
    result.phases.push(await measure(target, 'export (GET /v1/export, NDJSON)', async () => {
      const out = await exportAll(base, source)
      backup = out.body
      return { items: out.lines, bytes: out.body.byteLength }
    }))
    opts.log(`[cold] ${describe(result.phases.at(-1)!)}`)
    result.phases.push(await measure(target, 'import into an empty account (merge)', () => importAll(base, empty, backup!)))
    opts.log(`[cold] ${describe(result.phases.at(-1)!)}`)
  } catch (err) {
    result.error = (err as Error).message
    opts.log(`[cold] failed: ${result.error}`)
  } finally {
    await target.stop()
  }
  return result
}

export function describe(p: ColdStartPhase): string {
  return `${p.name}: ${p.items} in ${p.seconds.toFixed(2)} s = ${Math.round(p.perSecond)}/s; hub RSS ${p.hubRssStartMiB.toFixed(0)} → peak ${p.hubRssPeakMiB.toFixed(0)} MiB; client peak ${p.clientRssPeakMiB.toFixed(0)} MiB${p.detail ? `; ${p.detail}` : ''}`
}

/** Runs one phase while sampling the hub's and this process's memory every 50 ms. */
async function measure(target: HubTarget, name: string, work: () => Promise<{ items: number; bytes?: number; detail?: string }>): Promise<ColdStartPhase> {
  const sampler = target.process.sampler()
  const hubRssStartMiB = sampler.refresh().rssMiB
  let hubRssPeakMiB = hubRssStartMiB
  let clientRssPeakMiB = process.memoryUsage.rss() / 2 ** 20
  const timer = setInterval(() => {
    hubRssPeakMiB = Math.max(hubRssPeakMiB, sampler.refresh().rssMiB)
    clientRssPeakMiB = Math.max(clientRssPeakMiB, process.memoryUsage.rss() / 2 ** 20)
  }, 50)
  const started = performance.now()
  try {
    const done = await work()
    const seconds = (performance.now() - started) / 1000
    hubRssPeakMiB = Math.max(hubRssPeakMiB, sampler.refresh().rssMiB)
    return { name, ...done, seconds, perSecond: done.items / seconds, hubRssStartMiB, hubRssPeakMiB, clientRssPeakMiB }
  } finally {
    clearInterval(timer)
  }
}

/** The history, pushed over REST 500 ops at a time: conversations first, then messages round-robin. */
async function seed(base: string, token: string, opts: ColdStartOptions): Promise<number> {
  const conversations = Array.from({ length: opts.conversations }, (_, i) => `conv-${i}`)
  let mid = 0
  const ops: unknown[] = conversations.map((id, i) => ({ op: 'put', mid: ++mid, collection: 'conversations', id, data: { title: `Conversation ${i}` } }))
  let head = 0
  const flush = async () => {
    const res = await call(base, token, 'POST', '/v1/sync/push', { ops: ops.splice(0) })
    const body = res as { cursor: number; results: Array<{ ok: boolean; code?: string }> }
    const refused = body.results.find((r) => !r.ok)
    if (refused) throw new Error(`seeding refused: ${JSON.stringify(refused)}`)
    head = body.cursor
  }
  for (let i = 0; i < opts.messages; i++) {
    ops.push({
      op: 'put',
      mid: ++mid,
      collection: 'messages',
      id: randomUUID(),
      data: { conversation_id: conversations[i % conversations.length], role: i % 2 ? 'assistant' : 'user', content: CONTENT },
    })
    if (ops.length === OPS_PER_PUSH) await flush()
  }
  if (ops.length > 0) await flush()
  return head
}

async function restPull(base: string, token: string, head: number): Promise<{ items: number }> {
  let since = 0
  let items = 0
  for (;;) {
    const page = (await call(base, token, 'GET', `/v1/sync/pull?since=${since}&limit=${PULL_PAGE}`)) as { items: unknown[]; cursor: number; more: boolean }
    items += page.items.length
    since = page.cursor
    if (!page.more) break
  }
  if (since !== head) throw new Error(`REST pull ended at ${since}, head is ${head}`)
  return { items }
}

/** A device's first connection: auth, sub since 0, every backlog frame until `synced`. */
function socketPull(wsUrl: string, token: string, head: number): Promise<{ items: number }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false })
    let items = 0
    ws.binaryType = 'nodebuffer'
    ws.on('open', () => ws.send(encodeMsgpack({ t: 'auth', ref: 1, token, device: { id: 'cold-device' } })))
    ws.on('message', (data: Buffer) => {
      const frame = decodeMsgpack(data) as { t: string; items?: unknown[]; to?: number; cursor?: number; code?: string }
      if (frame.t === 'auth_ok') ws.send(encodeMsgpack({ t: 'sub', ref: 2, since: 0 }))
      else if (frame.t === 'changes') {
        items += frame.items?.length ?? 0
        if (frame.to !== undefined) ws.send(encodeMsgpack({ t: 'ack', cursor: frame.to }))
      } else if (frame.t === 'synced') {
        ws.close()
        if (frame.cursor !== head) reject(new Error(`synced at ${frame.cursor}, head is ${head}`))
        else resolve({ items })
      } else if (frame.t === 'error' || frame.t === 'bye') reject(new Error(`socket: ${JSON.stringify(frame)}`))
    })
    ws.on('error', reject)
  })
}

async function exportAll(base: string, token: string): Promise<{ lines: number; body: Buffer }> {
  const res = await fetch(`${base}/v1/export`, { headers: { authorization: `Bearer ${token}` } })
  if (res.status !== 200) throw new Error(`GET /v1/export answered ${res.status}: ${(await res.text()).slice(0, 300)}`)
  const chunks: Buffer[] = []
  let lines = 0
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    const buf = Buffer.from(chunk)
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) lines++
    chunks.push(buf)
  }
  return { lines, body: Buffer.concat(chunks) }
}

async function importAll(base: string, token: string, body: Buffer): Promise<{ items: number; bytes: number; detail: string }> {
  const res = await fetch(`${base}/v1/import?mode=merge`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson', 'device-id': 'cold-importer' },
    body: new Blob([new Uint8Array(body)]),
  })
  const text = await res.text()
  if (res.status !== 200) throw new Error(`POST /v1/import answered ${res.status}: ${text.slice(0, 300)}`)
  const summary = JSON.parse(text) as { imported: number; copies: number; skipped: number }
  return { items: summary.imported, bytes: body.byteLength, detail: `imported ${summary.imported}, copies ${summary.copies}, skipped ${summary.skipped}` }
}

async function call(base: string, token: string, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'application/msgpack',
      'device-id': 'cold-seeder',
      ...(body ? { 'content-type': 'application/msgpack' } : {}),
    },
    body: body ? new Blob([new Uint8Array(encodeMsgpack(body))]) : undefined,
    signal: AbortSignal.timeout(120_000),
  })
  const bytes = new Uint8Array(await res.arrayBuffer())
  if (res.status !== 200) throw new Error(`${method} ${path} answered ${res.status}: ${Buffer.from(bytes).toString('utf8').slice(0, 300)}`)
  return decodeMsgpack(bytes)
}
