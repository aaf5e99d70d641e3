/**
 * A generator thread: runs one LoadGenerator (a share of the users) on its own event loop and
 * answers the pool's requests. Requests are {id, cmd: 'connect'|'step'|'close', arg}; replies
 * {id, ok, result|error}; progress and log lines are posted unasked.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { LoadGenerator, type ShardConfig, type ShardStepPlan } from './load.ts'

export type WorkerRequest = { id: number; cmd: 'connect'; arg: ShardConfig } | { id: number; cmd: 'step'; arg: ShardStepPlan } | { id: number; cmd: 'close' }
export type WorkerMessage =
  | { type: 'reply'; id: number; ok: true; result?: unknown }
  | { type: 'reply'; id: number; ok: false; error: string }
  | { type: 'progress'; sent: number; acked: number; failed: number; delivered: number }
  | { type: 'log'; line: string }

const port = parentPort!
const name = `gen${(workerData as { index: number }).index}`
const post = (m: WorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer)
let gen: LoadGenerator | undefined

port.on('message', (req: WorkerRequest) => {
  void handle(req).then(
    ({ result, transfer }) => post({ type: 'reply', id: req.id, ok: true, result }, transfer),
    (err: Error) => post({ type: 'reply', id: req.id, ok: false, error: err.message }),
  )
})

async function handle(req: WorkerRequest): Promise<{ result?: unknown; transfer?: ArrayBuffer[] }> {
  switch (req.cmd) {
    case 'connect':
      gen = await LoadGenerator.connect(req.arg, (line) => post({ type: 'log', line: `${name}: ${line}` }))
      return {}
    case 'step': {
      const out = await gen!.runStep(req.arg, (p) => post({ type: 'progress', ...p }))
      return { result: out, transfer: [out.latency.buffer, out.ackLatency.buffer, out.sendLag.buffer, out.ackMaxByWindow.buffer] as ArrayBuffer[] }
    }
    case 'close':
      await gen?.close()
      gen = undefined
      return {}
  }
}
