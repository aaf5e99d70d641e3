import { Worker } from 'node:worker_threads'
import { now } from './clock.ts'
import type { ClientKind } from './device-port.ts'
import type { ShardConfig, ShardOutcome, ShardProgress, ShardStepPlan } from './load.ts'
import type { WorkerMessage, WorkerRequest } from './load-worker.ts'
import type { StepCounts } from './step.ts'
import { slowestWindows, summarizeAll, type SlowWindow, type Summary } from './stats.ts'

export interface PoolConfig {
  wsUrl: string
  /** Per device (index user * 3 + device), for a server of several nodes. */
  deviceUrls?: string[]
  client?: ClientKind
  tokens: string[]
  contentChars: number
  /** Generator threads; users are split between them. */
  threads: number
  log(line: string): void
}

export interface StepPlan {
  rate: number
  warmupSec: number
  measureSec: number
  drainSec: number
  /** Called at the start and end of the measured window, on this (idle) thread's timers. */
  onWindow?(phase: 'start' | 'end'): void
  onProgress?(line: string): void
}

export interface StepOutcome {
  rate: number
  measureSec: number
  /** Acks received inside the measured window, per second. */
  ackedPerSec: number
  counts: StepCounts
  /** Scheduled send → `changes` received at devices 1 and 2, ms. */
  latency: Summary
  /** Scheduled send → ack received at the pusher, ms. */
  ackLatency: Summary
  /** Scheduled send → handed to the socket, ms: the generator's own lateness. */
  sendLag: Summary
  /** The measured window's slowest 100 ms windows by push→ack, slowest first: a stall shows here. */
  slowWindows: SlowWindow[]
  /** Busiest generator thread's event-loop utilisation (0..1); the process's CPU in cores, and the kernel's part of it. */
  generator: { threads: number; elu: number; cpu: number; cpuSystem: number; maxBufferedBytes: number }
  firstError?: string
  /** Frames the bench read with its fast scanner, cross-checked against a full decode, mismatches (must be 0). */
  scanner: { scanned: number; checked: number; mismatches: number }
  socketsClosed: number
  drainMs: number
}

/** Time for a step request to reach every thread before the schedule starts. */
const START_DELAY_MS = 50
/** Slowest windows a step reports. */
const SLOW_WINDOWS = 3

/** The load generator as a whole: N threads, each a LoadGenerator over a share of the users. */
export class LoadPool {
  private nextId = 0
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  private readonly progress: ShardProgress[]
  private base = 0
  private exited = false

  private constructor(
    private readonly cfg: PoolConfig,
    private readonly workers: Worker[],
  ) {
    this.progress = workers.map(() => ({ sent: 0, acked: 0, failed: 0, delivered: 0 }))
    workers.forEach((w, i) => {
      w.on('message', (m: WorkerMessage) => this.onMessage(i, m))
      w.on('error', (err) => this.failAll(new Error(`generator thread ${i}: ${err.message}`)))
      w.on('exit', (code) => {
        this.exited = true
        this.failAll(new Error(`generator thread ${i} exited (${code})`))
      })
    })
  }

  static async start(cfg: PoolConfig): Promise<LoadPool> {
    const workers = Array.from(
      { length: cfg.threads },
      (_, index) => new Worker(new URL('./load-worker.mjs', import.meta.url), { workerData: { index } }),
    )
    const pool = new LoadPool(cfg, workers)
    try {
      await pool.all((index) => ({ cmd: 'connect', arg: pool.shardConfig(index) }))
    } catch (err) {
      await pool.close()
      throw err
    }
    return pool
  }

  private shardConfig(index: number): ShardConfig {
    const { wsUrl, deviceUrls, client, tokens, contentChars } = this.cfg
    return { wsUrl, deviceUrls, client, tokens, contentChars, shard: { index, count: this.workers.length } }
  }

  async runStep(plan: StepPlan): Promise<StepOutcome> {
    const total = Math.round(plan.rate * (plan.warmupSec + plan.measureSec))
    const t0 = now() + START_DELAY_MS
    const shardPlan: ShardStepPlan = { rate: plan.rate, base: this.base, t0, warmupSec: plan.warmupSec, measureSec: plan.measureSec, drainSec: plan.drainSec }
    this.base += total
    for (const p of this.progress) Object.assign(p, { sent: 0, acked: 0, failed: 0, delivered: 0 })

    // The window is timed here, on a thread with nothing else to do, from the shared schedule.
    const measureFrom = t0 + plan.warmupSec * 1000
    const measureUntil = measureFrom + plan.measureSec * 1000
    let cpu0 = process.cpuUsage()
    let cpu = { user: 0, system: 0 }
    let windowSec = plan.measureSec
    let windowStarted = measureFrom
    const timers = [
      setTimeout(() => {
        windowStarted = now()
        cpu0 = process.cpuUsage()
        plan.onWindow?.('start')
      }, measureFrom - now()),
      setTimeout(() => {
        cpu = process.cpuUsage(cpu0)
        windowSec = Math.max(1e-3, (now() - windowStarted) / 1000)
        plan.onWindow?.('end')
      }, measureUntil - now()),
    ]
    const ticker = setInterval(() => {
      const p = this.progress.reduce((a, b) => ({ sent: a.sent + b.sent, acked: a.acked + b.acked, failed: a.failed + b.failed, delivered: a.delivered + b.delivered }))
      plan.onProgress?.(
        `t=${((now() - t0) / 1000).toFixed(1)}s sent=${p.sent} acked=${p.acked} delivered=${p.delivered} in-flight=${p.sent - p.acked - p.failed}`,
      )
    }, 1000)
    let parts: ShardOutcome[]
    try {
      parts = (await this.all(() => ({ cmd: 'step', arg: shardPlan }))) as ShardOutcome[]
    } finally {
      timers.forEach(clearTimeout)
      clearInterval(ticker)
    }
    return {
      rate: plan.rate,
      measureSec: plan.measureSec,
      ackedPerSec: sum(parts, (p) => p.ackedInWindow) / plan.measureSec,
      counts: mergeCounts(parts.map((p) => p.counts)),
      latency: summarizeAll(parts.map((p) => p.latency)),
      ackLatency: summarizeAll(parts.map((p) => p.ackLatency)),
      sendLag: summarizeAll(parts.map((p) => p.sendLag)),
      slowWindows: slowestWindows(parts.map((p) => p.ackMaxByWindow), SLOW_WINDOWS),
      generator: {
        threads: this.workers.length,
        elu: Math.max(...parts.map((p) => p.elu)),
        cpu: (cpu.user + cpu.system) / 1e6 / windowSec,
        cpuSystem: cpu.system / 1e6 / windowSec,
        maxBufferedBytes: Math.max(...parts.map((p) => p.maxBufferedBytes)),
      },
      firstError: parts.find((p) => p.firstError)?.firstError,
      scanner: { scanned: sum(parts, (p) => p.scanner.scanned), checked: sum(parts, (p) => p.scanner.checked), mismatches: sum(parts, (p) => p.scanner.mismatches) },
      socketsClosed: sum(parts, (p) => p.socketsClosed),
      drainMs: Math.max(...parts.map((p) => p.drainMs)),
    }
  }

  async close(): Promise<void> {
    if (!this.exited) await Promise.race([this.all(() => ({ cmd: 'close' })).catch(() => {}), new Promise((r) => setTimeout(r, 5000))])
    await Promise.all(this.workers.map((w) => w.terminate()))
  }

  private all(req: (index: number) => Omit<WorkerRequest, 'id'>): Promise<unknown[]> {
    return Promise.all(
      this.workers.map(
        (w, i) =>
          new Promise((resolve, reject) => {
            if (this.exited) return reject(new Error('a generator thread has exited'))
            const id = ++this.nextId
            this.pending.set(id, { resolve, reject })
            w.postMessage({ ...req(i), id })
          }),
      ),
    )
  }

  private onMessage(index: number, m: WorkerMessage): void {
    if (m.type === 'log') return this.cfg.log(m.line)
    if (m.type === 'progress') return void Object.assign(this.progress[index]!, m)
    const p = this.pending.get(m.id)
    if (!p) return
    this.pending.delete(m.id)
    if (m.ok) p.resolve(m.result)
    else p.reject(new Error(m.error))
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err)
    this.pending.clear()
  }
}

const sum = <T>(xs: T[], f: (x: T) => number) => xs.reduce((n, x) => n + f(x), 0)

function mergeCounts(parts: StepCounts[]): StepCounts {
  const out = { ...parts[0]! }
  for (const p of parts.slice(1)) for (const k of Object.keys(out) as Array<keyof StepCounts>) out[k] += p[k]
  return out
}
