import { DEVICES_PER_USER } from './load.ts'
import { LoadPool, type StepOutcome } from './load-pool.ts'
import { messageSizes } from './messages.ts'
import type { Options } from './options.ts'
import { cpuSecBetween, type ProcessSampler } from './procfs.ts'
import type { Scenario, StepPreparation, Target, Verification } from './scenarios/types.ts'
import { measuredCores } from './cpu-budget.ts'

/** The break limit of a scenario that sets none (the single-node ladder). */
export const DEFAULT_P99_LIMIT_MS = 50

/** One step as reported: what the generator saw, what the server cost, and the verdict. */
export interface StepRow extends StepOutcome {
  /** What Target.prepareStep did before the step (LEFT_AS_FOUND with --cold-wal); absent if the target has none. */
  prepared?: StepPreparation
  ok: boolean
  /** Why the step broke (empty when ok). */
  reasons: string[]
  /** The generator could not keep its schedule: latency includes its own lateness. */
  generatorBound: boolean
  /** redisCpuCores: the whole Redis server (other users of it included); absent for a server without Redis. */
  server: { rssEndMiB: number; rssMaxMiB: number; cpuCores: number; postgresCpuCores: number; redisCpuCores?: number }
  /** CPU (in cores) of everything else on the machine during the window: other users' jobs. */
  otherCpuCores: number
}

export interface ScenarioResult {
  name: string
  description: string
  error?: string
  users: number
  sockets: number
  /** A step broke above this p99 (ms). */
  p99LimitMs: number
  pushFrameBytes?: number
  dataBytes?: number
  setupSec?: number
  rssIdleMiB?: number
  steps: StepRow[]
  /** Highest rate whose step passed, before the first break; null if none did. */
  maxOkRate: number | null
  verification?: Verification
}

/** A step whose target could have been prepared, run with --cold-wal. */
const LEFT_AS_FOUND: StepPreparation = { ok: false, detail: 'left as found (--cold-wal)' }

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Starts the scenario's server, connects the devices, and steps the rate up until it breaks. */
export async function runLadder(scenario: Scenario, opts: Options, root: string): Promise<ScenarioResult> {
  const log = (line: string) => console.log(`[${scenario.name}] ${line}`)
  const p99LimitMs = opts.p99LimitMs ?? scenario.p99LimitMs ?? DEFAULT_P99_LIMIT_MS
  const result: ScenarioResult = { name: scenario.name, description: scenario.description, users: opts.users, sockets: opts.users * DEVICES_PER_USER, p99LimitMs, steps: [], maxOkRate: null }
  const started = performance.now()
  log(`starting: ${scenario.description}`)
  let target
  try {
    target = await scenario.start({ users: opts.users, root, log })
  } catch (err) {
    result.error = `did not start: ${(err as Error).message}`
    log(result.error)
    return result
  }
  let gen: LoadPool | undefined
  try {
    gen = await LoadPool.start({
      wsUrl: target.wsUrl,
      deviceUrls: deviceUrls(target, opts.users),
      client: target.client,
      tokens: target.tokens,
      contentChars: opts.contentChars,
      threads: opts.threads,
      log: (line) => log(`  ${line}`),
    })
    Object.assign(result, messageSizes(opts.contentChars))
    result.setupSec = (performance.now() - started) / 1000
    const sampler = target.process.sampler()
    result.rssIdleMiB = sampler.refresh().rssMiB
    const pgPids = () => target.postgresPids?.() ?? Promise.resolve([])
    const redisPids = await (target.redisPids?.() ?? Promise.resolve([]))
    log(`${result.sockets} sockets subscribed (${opts.threads} generator thread${opts.threads > 1 ? 's' : ''}) in ${result.setupSec.toFixed(1)} s; server RSS ${result.rssIdleMiB.toFixed(0)} MiB; push frame ${result.pushFrameBytes} B, message data ${result.dataBytes} B`)

    let totalAcked = 0
    let broken = false
    for (const rate of opts.rates) {
      // After a break only the issue's target rate still runs (if not reached yet), so it is always measured.
      if (broken && !(rate === opts.targetRate && !result.steps.some((s) => s.rate === rate))) continue
      const prepared = target.prepareStep && (opts.coldWal ? LEFT_AS_FOUND : await target.prepareStep(rate, opts.warmupSec + opts.measureSec + opts.drainSec))
      if (prepared) log(`R=${rate}/s: ${prepared.detail}`)
      sampler.refresh(await pgPids(), redisPids) // the pool may have opened connections since the last step
      const row: StepRow = { ...(await runStep(gen, sampler, rate, { ...opts, p99LimitMs, usesRedis: redisPids.length > 0 }, log)), prepared }
      result.steps.push(row)
      totalAcked += row.counts.acked
      log(stepLine(row))
      if (row.ok && result.steps.every((s) => s.ok)) result.maxOkRate = rate
      if (target.process.exited()) {
        log(`server exited:\n${target.process.tail()}`)
        break
      }
      if (!row.ok && !opts.keepGoing) {
        broken = true
        if (rate >= opts.targetRate || !opts.rates.includes(opts.targetRate)) break
        log(`broke; running R=${opts.targetRate} anyway for the target, after letting the server catch up`)
        await sleep(opts.drainSec * 2000)
      }
      await sleep(500) // let the server settle between steps
    }
    if (target.verify && !target.process.exited()) {
      result.verification = await target.verify(totalAcked)
      log(`verify: ${result.verification.detail}`)
    }
  } catch (err) {
    result.error = (err as Error).message
    log(`failed: ${result.error}\n${target.process.tail()}`)
  } finally {
    await gen?.close()
    await target.stop()
  }
  return result
}

/** Where each device connects (index user * 3 + device); undefined for a single-URL server. */
function deviceUrls(target: Target, users: number): string[] | undefined {
  const urlFor = target.wsUrlFor?.bind(target)
  if (!urlFor) return undefined
  return Array.from({ length: users * DEVICES_PER_USER }, (_, i) => urlFor(Math.floor(i / DEVICES_PER_USER), i % DEVICES_PER_USER))
}

type StepOptions = Options & { p99LimitMs: number; usesRedis: boolean }

async function runStep(gen: LoadPool, sampler: ProcessSampler, rate: number, opts: StepOptions, log: (l: string) => void): Promise<StepRow> {
  let rssMax = 0
  let atStart = sampler.sample()
  let atEnd = atStart
  let windowStart = 0
  let windowSec = opts.measureSec
  const rssTimer = setInterval(() => (rssMax = Math.max(rssMax, sampler.sample().rssMiB)), 1000)
  log(`R=${rate}/s: ${opts.warmupSec}s warm-up + ${opts.measureSec}s measured`)
  let outcome: StepOutcome
  try {
    outcome = await gen.runStep({
      rate,
      warmupSec: opts.warmupSec,
      measureSec: opts.measureSec,
      drainSec: opts.drainSec,
      onProgress: (line) => log(`  R=${rate} ${line}`),
      onWindow: (phase) => {
        if (phase === 'start') {
          atStart = sampler.sample()
          windowStart = performance.now()
        } else {
          atEnd = sampler.sample()
          windowSec = (performance.now() - windowStart) / 1000
        }
      },
    })
  } finally {
    clearInterval(rssTimer)
  }
  const rssEnd = sampler.sample().rssMiB
  const server = {
    rssEndMiB: rssEnd,
    rssMaxMiB: Math.max(rssMax, rssEnd, atEnd.rssMiB),
    cpuCores: cpuSecBetween(atStart.treeTicks, atEnd.treeTicks) / windowSec,
    postgresCpuCores: cpuSecBetween(atStart.postgresTicks, atEnd.postgresTicks) / windowSec,
    redisCpuCores: opts.usesRedis ? cpuSecBetween(atStart.redisTicks, atEnd.redisTicks) / windowSec : undefined,
  }
  const machineCores = (atEnd.machineCpuSec - atStart.machineCpuSec) / windowSec
  const otherCpuCores = Math.max(0, machineCores - measuredCores(server, outcome.generator.cpu))
  return { ...outcome, ...judge(outcome, opts), server, otherCpuCores }
}

/** The issue's break rule: p99 over the limit or any loss; protocol violations break it too. */
function judge(o: StepOutcome, opts: { p99LimitMs: number }): { ok: boolean; reasons: string[]; generatorBound: boolean } {
  const c = o.counts
  const reasons: string[] = []
  if (!(o.latency.p99 <= opts.p99LimitMs)) reasons.push(`p99 ${o.latency.p99.toFixed(1)} ms > ${opts.p99LimitMs}`)
  if (c.unacked) reasons.push(`${c.unacked} never acked`)
  if (c.failed) reasons.push(`${c.failed} refused (${o.firstError ?? '?'})`)
  if (c.lostPushes) reasons.push(`${c.lostPushes} acked but not delivered (dev1 ${c.missingDev1}, dev2 ${c.missingDev2})`)
  if (c.missingEcho) reasons.push(`${c.missingEcho} echoes missing`)
  if (c.duplicates) reasons.push(`${c.duplicates} duplicates`)
  if (c.cursorGaps) reasons.push(`${c.cursorGaps} cursor gaps`)
  if (c.misrouted) reasons.push(`${c.misrouted} misrouted`)
  if (o.scanner.mismatches) reasons.push(`${o.scanner.mismatches} frames read differently by the bench's scanner (a bench bug)`)
  if (o.socketsClosed) reasons.push(`${o.socketsClosed} sockets closed`)
  if (c.sent < c.scheduled) reasons.push(`${c.scheduled - c.sent} not sent`)
  const generatorBound = o.generator.elu > 0.9 || o.sendLag.p99 > 10
  return { ok: reasons.length === 0, reasons, generatorBound }
}

function stepLine(r: StepRow): string {
  const l = r.latency
  return (
    `R=${r.rate}/s ${r.ok ? 'OK' : 'BROKE'}: acked ${r.ackedPerSec.toFixed(0)}/s, latency p50 ${l.p50.toFixed(2)} p99 ${l.p99.toFixed(2)} p999 ${l.p999.toFixed(2)} max ${l.max.toFixed(1)} ms; ` +
    `server RSS ${r.server.rssMaxMiB.toFixed(0)} MiB, CPU ${(r.server.cpuCores * 100).toFixed(0)}%, postgres ${(r.server.postgresCpuCores * 100).toFixed(0)}%` +
    (r.server.redisCpuCores === undefined ? '; ' : `, redis ${(r.server.redisCpuCores * 100).toFixed(0)}%; `) +
    `generator ELU ${(r.generator.elu * 100).toFixed(0)}% (busiest thread) CPU ${(r.generator.cpu * 100).toFixed(0)}% (sys ${(r.generator.cpuSystem * 100).toFixed(0)}%), send lag p99 ${r.sendLag.p99.toFixed(1)} ms; other processes ${(r.otherCpuCores * 100).toFixed(0)}%` +
    (r.generatorBound ? ' [generator-bound]' : '') +
    (r.slowWindows.length ? `; slowest 100 ms by push→ack: ${r.slowWindows.map((w) => `${w.maxAckMs.toFixed(0)} ms at ${w.atSec.toFixed(1)} s`).join(', ')}` : '') +
    (r.reasons.length ? `; ${r.reasons.join('; ')}` : '')
  )
}
