import { randomUUID } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { now } from './clock.ts'
import { scanStats } from './device.ts'
import { openDevice, type BenchDevice, type ClientKind, type Frame } from './device-port.ts'
import type { Scanned } from './frame-scan.ts'
import { messageContent, pushNumberOf } from './messages.ts'
import { StepTracker, type StepCounts } from './step.ts'

export const DEVICES_PER_USER = 3
/** How often each device sends its device `ack` while a step runs (protocol/PROTOCOL.md: every few seconds). */
const DEVICE_ACK_MS = 2000
/** The devices ack in this many slices, so the acks are spread over the period. */
const ACK_SLICES = 20

export interface ShardConfig {
  wsUrl: string
  /** Per device (index user * 3 + device), for a server of several nodes; wsUrl where absent. */
  deviceUrls?: string[]
  client?: ClientKind
  /** One access token per user (all users; this shard uses its own). */
  tokens: string[]
  /** This generator thread owns the users u with u % count === index. */
  shard: { index: number; count: number }
  contentChars: number
  connectConcurrency?: number
  requestTimeoutMs?: number
}

export interface ShardStepPlan {
  rate: number
  /** Push number of the step's first push (global, same in every thread). */
  base: number
  /** Scheduled time of push `base`, on the shared clock (clock.ts). */
  t0: number
  warmupSec: number
  measureSec: number
  /** Longest wait after the last push for its ack and deliveries; later ones count as lost. */
  drainSec: number
}

export interface ShardProgress {
  sent: number
  acked: number
  failed: number
  delivered: number
}

/** One thread's share of a step: counts and raw samples, merged by load-pool.ts. */
export interface ShardOutcome {
  counts: StepCounts
  ackedInWindow: number
  latency: Float64Array
  ackLatency: Float64Array
  sendLag: Float64Array
  /** Slowest push→ack per 100 ms of the measured window (stats.ts). */
  ackMaxByWindow: Float64Array
  elu: number
  maxBufferedBytes: number
  firstError?: string
  socketsClosed: number
  scanner: { scanned: number; checked: number; mismatches: number }
  drainMs: number
}

export type Log = (line: string) => void

/**
 * One event loop's share of the load: its users' 3 devices each. Device 0 of user u sends
 * push g when g % users === u; the schedule (push g at t0 + (g - base) / R) is fixed in advance,
 * shared by every thread, and all latency is measured from it.
 */
export class LoadGenerator {
  private devices: Array<BenchDevice | undefined> = []
  private conversations: string[] = []
  private step: StepTracker | undefined
  private lateOutsideSteps = 0
  private socketsClosed = 0
  private readonly content: string
  private readonly users: number

  private constructor(
    private readonly cfg: ShardConfig,
    private readonly log: Log,
  ) {
    this.content = messageContent(cfg.contentChars)
    this.users = cfg.tokens.length
  }

  /** Opens, authenticates and subscribes this shard's devices, then creates one conversation per user. */
  static async connect(cfg: ShardConfig, log: Log): Promise<LoadGenerator> {
    const gen = new LoadGenerator(cfg, log)
    try {
      await gen.openAll()
      await gen.createConversations()
    } catch (err) {
      await gen.close()
      throw err
    }
    return gen
  }

  private mine(u: number): boolean {
    return u % this.cfg.shard.count === this.cfg.shard.index
  }

  private myUsers(): number[] {
    return [...Array(this.users).keys()].filter((u) => this.mine(u))
  }

  async runStep(plan: ShardStepPlan, progress: (p: ShardProgress) => void): Promise<ShardOutcome> {
    const interval = 1000 / plan.rate
    const total = Math.round(plan.rate * (plan.warmupSec + plan.measureSec))
    const { t0, base } = plan
    const measureFrom = t0 + plan.warmupSec * 1000
    const measureUntil = measureFrom + plan.measureSec * 1000
    const tracker = new StepTracker(base, total, measureFrom, measureUntil, this.users)
    for (let i = 0; i < total; i++) if (this.mine((base + i) % this.users)) tracker.assigned++
    this.step = tracker
    const closedBefore = this.socketsClosed
    const scan0 = { ...scanStats }

    let i = 0
    let windowOpen = false
    let maxBuffered = 0
    let lastProgress = now()
    let lastAckSweep = now()
    let ackSlice = 0
    let elu0 = performance.eventLoopUtilization()
    let elu = NaN
    await new Promise<void>((resolve) => {
      const tick = () => {
        const at = now()
        if (!windowOpen && at >= measureFrom) {
          windowOpen = true
          elu0 = performance.eventLoopUtilization()
        }
        const due = Math.min(total, Math.floor((at - t0) / interval) + 1)
        for (; i < due; i++) {
          const g = base + i
          const u = g % this.users
          if (!this.mine(u)) continue
          const dev = this.devices[u * DEVICES_PER_USER]!
          dev.push(g, this.conversations[u]!, this.content)
          tracker.onSent(g, t0 + i * interval, now())
        }
        if (at - lastAckSweep >= DEVICE_ACK_MS / ACK_SLICES) {
          // Every device acks its cursor every DEVICE_ACK_MS, a slice of them at a time.
          lastAckSweep = at
          ackSlice = (ackSlice + 1) % ACK_SLICES
          for (let d = ackSlice; d < this.devices.length; d += ACK_SLICES) this.devices[d]?.ackCursor()
        }
        if (at - lastProgress >= 1000) {
          lastProgress = at
          for (const u of this.myUsers()) maxBuffered = Math.max(maxBuffered, this.devices[u * DEVICES_PER_USER]!.buffered)
          progress({ sent: tracker.sent, acked: tracker.acked, failed: tracker.failed, delivered: tracker.delivered })
        }
        if (i < total) return void setTimeout(tick, Math.max(0, Math.min(1, t0 + i * interval - now())))
        elu = performance.eventLoopUtilization(elu0).utilization
        resolve()
      }
      setTimeout(tick, Math.max(0, t0 - now()))
    })

    // Drain: wait (bounded) for the last acks and deliveries.
    const drainStart = now()
    while (!tracker.settled() && now() - drainStart < plan.drainSec * 1000) await new Promise((r) => setTimeout(r, 10))
    const drainMs = now() - drainStart
    this.step = undefined

    return {
      counts: tracker.counts(),
      ackedInWindow: tracker.ackedInWindow,
      ...tracker.samples(),
      elu,
      maxBufferedBytes: maxBuffered,
      firstError: tracker.firstError,
      socketsClosed: this.socketsClosed - closedBefore,
      scanner: { scanned: scanStats.scanned - scan0.scanned, checked: scanStats.checked - scan0.checked, mismatches: scanStats.mismatches - scan0.mismatches },
      drainMs,
    }
  }

  async close(): Promise<void> {
    const all = this.devices.filter((d): d is BenchDevice => d !== undefined)
    this.devices = []
    await Promise.allSettled(all.map((d) => d.close()))
  }

  // ---- setup --------------------------------------------------------------------------------

  private async openAll(): Promise<void> {
    const timeout = this.cfg.requestTimeoutMs ?? 15_000
    const jobs: Array<[number, number]> = []
    for (const u of this.myUsers()) for (let k = 0; k < DEVICES_PER_USER; k++) jobs.push([u, k])
    this.devices = new Array(this.users * DEVICES_PER_USER)
    let done = 0
    await pool(jobs, this.cfg.connectConcurrency ?? 32, async ([u, k]) => {
      const i = u * DEVICES_PER_USER + k
      const url = this.cfg.deviceUrls?.[i] ?? this.cfg.wsUrl
      const dev = await openDevice(this.cfg.client ?? 'synchub', { url, user: u, index: k, token: this.cfg.tokens[u]!, timeoutMs: timeout })
      this.devices[i] = dev
      dev.onFrame = (frame, at) => this.onFrame(dev, frame, at)
      dev.onScanned = (frame, at) => this.onScanned(dev, frame, at)
      dev.onClose = () => this.socketsClosed++
      if (++done % 150 === 0) this.log(`${done}/${jobs.length} sockets subscribed`)
    })
  }

  private async createConversations(): Promise<void> {
    const timeout = this.cfg.requestTimeoutMs ?? 15_000
    this.conversations = Array.from({ length: this.users }, () => randomUUID())
    await pool(this.myUsers(), 32, (u) => this.devices[u * DEVICES_PER_USER]!.createConversation(this.conversations[u]!, `bench ${u}`, timeout))
  }

  // ---- receive ------------------------------------------------------------------------------

  /** The hot path: `changes` and successful acks, read by the scanner. */
  private onScanned(dev: BenchDevice, frame: Scanned, at: number): void {
    const step = this.step
    if (frame.t === 'changes') {
      if (frame.from !== dev.cursor && step) step.cursorGaps++
      dev.cursor = frame.to
      const gs = frame.pushNumbers
      if (!step) this.lateOutsideSteps += gs.length
      else for (let i = 0; i < gs.length; i++) step.onDelivered(gs[i]!, dev.user, dev.index, at)
    } else if (step) step.onAck(frame.ref - 1, frame.ok, at)
    else this.lateOutsideSteps++
  }

  /** Everything else, decoded in full: refusals, errors, bye (and any frame the scanner could not read). */
  private onFrame(dev: BenchDevice, frame: Frame, at: number): void {
    const step = this.step
    switch (frame.t) {
      case 'changes': {
        // Only if the scanner could not read it; same accounting, slower.
        if (frame.from !== dev.cursor && step) step.cursorGaps++
        dev.cursor = frame.to as number
        for (const item of frame.items as Array<{ collection: string; id: string }>) {
          if (item.collection !== 'messages') continue
          if (step) step.onDelivered(pushNumberOf(item.id), dev.user, dev.index, at)
          else this.lateOutsideSteps++
        }
        return
      }
      case 'ack': {
        const result = (frame.results as Array<{ ok: boolean; code?: string; message?: string }>)[0]
        if (step) step.onAck((frame.ref as number) - 1, !!result?.ok, at, result?.ok ? undefined : `${result?.code}: ${result?.message}`)
        else this.lateOutsideSteps++
        return
      }
      case 'error':
        if (step && typeof frame.ref === 'number') step.onAck(frame.ref - 1, false, at, `${String(frame.code)}: ${String(frame.message)}`)
        else this.log(`device ${dev.user}/${dev.index}: error ${String(frame.code)}: ${String(frame.message)}`)
        return
      case 'bye':
        this.log(`device ${dev.user}/${dev.index}: bye ${String(frame.reason)}`)
        return
    }
  }
}

/** Runs `fn` over `items` with at most `limit` at once; the first failure rejects. */
async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
}
