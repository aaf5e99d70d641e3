import { HubError } from '../../protocol/errors.ts'
import type { Result } from '../../protocol/ops.ts'
import { commandClient, parseClientArgs, UsageError } from './client-options.ts'

/** What `push` keeps in the state directory, per conversation and prefix, with the outbox. */
interface PushProgress {
  /** The conversation's create was enqueued (or found). */
  conversation: boolean
  /** Messages P-1 … P-enqueued are in the outbox or acked. */
  enqueued: number
}

/**
 * `synchub push`: puts N messages through the SDK's outbox at a rate. Each enqueue writes the
 * op and the count of enqueued messages in one atomic write, so a rerun after a kill enqueues
 * exactly the messages that were not, and the outbox (same mids) makes the hub apply each once.
 */
export async function runPush(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = parseClientArgs(
    argv,
    { conversation: { type: 'string' }, count: { type: 'string' }, rate: { type: 'string' }, prefix: { type: 'string' } },
    env,
  )
  const conversation = String(args.values.conversation ?? '')
  if (!conversation) throw new UsageError('--conversation is required')
  const count = Number(args.values.count)
  if (!Number.isInteger(count) || count < 0) throw new UsageError('--count must be a whole number')
  const rate = args.values.rate === undefined ? Infinity : Number(args.values.rate)
  if (!(rate > 0)) throw new UsageError('--rate must be above 0 (messages per second)')
  const prefix = String(args.values.prefix ?? args.device)
  const key = `push:${conversation}:${prefix}`

  // Only conversations are synced: enough to know whether CID exists.
  const client = commandClient('push', args, { collections: ['conversations'], view: true })
  let failed = 0
  let acked = 0
  client.on('result', (s) => {
    if (s.op.op !== 'put' || s.op.collection !== 'messages') return
    if (s.result.ok) acked++
    else {
      failed++
      console.error(`synchub push: ${s.op.id} refused: ${s.result.code}: ${s.result.message}`)
    }
  })
  let fatal = false
  client.on('error', (e) => {
    if (e.fatal) fatal = true
  })
  await client.start()
  const progress: PushProgress = { conversation: false, enqueued: 0, ...(client.appState[key] as PushProgress | undefined) }
  const save = (p: PushProgress) => ({ appState: { [key]: { ...p } } })

  if (!progress.conversation) {
    await Promise.race([client.whenSynced(), stoppedOf(client)])
    if (fatal) return (await client.stop(), 1)
    if (!client.collection('conversations').get(conversation)) {
      const { result } = await client.enqueue({ op: 'put', collection: 'conversations', id: conversation, data: { title: conversation } }, save({ ...progress, conversation: true }))
      void result.catch((err: HubError) => console.error(`synchub push: conversation ${conversation} refused: ${err.code}: ${err.message}`))
    } else await client.saveAppState(save({ ...progress, conversation: true }).appState)
    progress.conversation = true
  }

  const first = progress.enqueued + 1
  if (first <= count) console.error(`synchub push: enqueuing ${prefix}-${first} … ${prefix}-${count}${first > 1 ? ` (${first - 1} were enqueued by an earlier run)` : ''}`)
  const started = performance.now()
  const pending: Array<Promise<Result>> = []
  for (let k = first; k <= count && !fatal; k++) {
    if (Number.isFinite(rate)) {
      const due = started + ((k - first) * 1000) / rate
      const wait = due - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    }
    progress.enqueued = k
    const { result } = await client.enqueue(
      { op: 'put', collection: 'messages', id: `${prefix}-${k}`, data: { conversation_id: conversation, role: 'user', content: `message ${k} of ${count}` } },
      save(progress),
    )
    pending.push(result.catch(() => ({ ok: false }) as Result))
  }
  // Ops of an earlier run still in the outbox are answered too: wait for the outbox to empty.
  await Promise.race([client.flushed(), stoppedOf(client)])
  await client.stop()
  if (fatal) return 1
  console.error(`synchub push: ${prefix}-1 … ${prefix}-${count} all answered: ${acked} acked in this run${failed ? `, ${failed} refused` : ''}`)
  return failed > 0 ? 1 : 0
}

function stoppedOf(client: { on(e: 'status', fn: (s: string) => void): () => void; status: string }): Promise<void> {
  return new Promise((resolve) => {
    if (client.status === 'stopped') return resolve()
    client.on('status', (s) => s === 'stopped' && resolve())
  })
}
