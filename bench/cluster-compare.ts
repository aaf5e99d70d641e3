import type { ScenarioResult } from './ladder.ts'
import { coresNeeded } from './cpu-budget.ts'
import { latencySvg } from './plot.ts'

/** The cluster targets: synchub's highest sustained rate ≥ 3× the peer's, and at the target rate its p99 ≤ ¼ of the peer's. */
export const CLUSTER_GOALS = { rateRatio: 3, p99Ratio: 0.25 }
/** The two sides, and their colours in the plot. */
const SIDES = { cluster: '#1f6fb4', socketio: '#d2462b' } as const

export interface ComparedSide {
  name: string
  /** Highest rate that passed, every lower step passing too; null if none did. */
  maxOkRate: number | null
  /** First rate that broke; null if none did (maxOkRate is then only a lower bound). */
  brokeAt: number | null
  p99LimitMs: number
  /** p99 at the target rate (ms); null if that step did not run. */
  p99AtTarget: number | null
  /** The first broken step was flagged generator-bound: the side may hold more than measured. */
  generatorBoundAtBreak: boolean
}

export interface ClusterComparison {
  targetRate: number
  cluster: ComparedSide | null
  socketio: ComparedSide | null
  /** cluster ÷ socketio highest sustained rates; null unless both sustained some rate. */
  rateRatio: number | null
  /** The ratio as text, a bound when one side sustained none of the rates ("< 0.40": the cluster broke at 1000, the peer held 2500). */
  rateRatioText: string
  /** Whether the ratio meets the target, bounds included; null when they cannot tell. */
  rateRatioMet: boolean | null
  /** cluster ÷ socketio p99 at the target rate. */
  p99Ratio: number | null
  /** The SVG beside the report: p50 and p99 against R for both sides. */
  plot: string
}

export interface TargetRow {
  scenario: string
  target: string
  measured: string
  met: boolean | null
}

/** The comparison, when either side ran; `plot` is the SVG's file name (written by report.ts). */
export function compareCluster(scenarios: ScenarioResult[], targetRate: number, plot: string): ClusterComparison | undefined {
  const side = (name: keyof typeof SIDES) => {
    const s = scenarios.find((x) => x.name === name)
    return s && s.steps.length ? summarizeSide(s, targetRate) : null
  }
  const cluster = side('cluster')
  const socketio = side('socketio')
  if (!cluster && !socketio) return undefined
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a != null && b ? a / b : null)
  return {
    targetRate,
    cluster,
    socketio,
    rateRatio: ratio(cluster?.maxOkRate, socketio?.maxOkRate),
    ...rateRatioOf(cluster, socketio),
    p99Ratio: ratio(cluster?.p99AtTarget, socketio?.p99AtTarget),
    plot,
  }
}

/**
 * A side that sustained none of the rates held less than the first rate it broke at, so the
 * ratio still has a bound: below (cluster none) or above (peer none), which may settle the target.
 */
function rateRatioOf(c: ComparedSide | null, p: ComparedSide | null): { rateRatioText: string; rateRatioMet: boolean | null } {
  const goal = CLUSTER_GOALS.rateRatio
  if (!c || !p) return { rateRatioText: 'n/a', rateRatioMet: null }
  if (c.maxOkRate !== null && p.maxOkRate !== null) {
    const r = c.maxOkRate / p.maxOkRate
    return { rateRatioText: r.toFixed(2), rateRatioMet: r >= goal }
  }
  if (c.maxOkRate === null && p.maxOkRate !== null && c.brokeAt !== null) {
    const below = c.brokeAt / p.maxOkRate
    return { rateRatioText: `< ${below.toFixed(2)}`, rateRatioMet: below <= goal ? false : null }
  }
  if (p.maxOkRate === null && c.maxOkRate !== null && p.brokeAt !== null) {
    const above = c.maxOkRate / p.brokeAt
    return { rateRatioText: `> ${above.toFixed(2)}`, rateRatioMet: above >= goal ? true : null }
  }
  return { rateRatioText: 'n/a', rateRatioMet: null }
}

function summarizeSide(s: ScenarioResult, targetRate: number): ComparedSide {
  const broke = s.steps.find((r) => !r.ok)
  const p99 = s.steps.find((r) => r.rate === targetRate)?.latency.p99
  return {
    name: s.name,
    maxOkRate: s.maxOkRate,
    brokeAt: broke?.rate ?? null,
    p99LimitMs: s.p99LimitMs,
    p99AtTarget: p99 !== undefined && Number.isFinite(p99) ? p99 : null,
    generatorBoundAtBreak: !!broke?.generatorBound,
  }
}

const fmt = (n: number | null, digits = 2) => (n === null ? 'n/a' : n.toFixed(digits))
/** The highest sustained rate as text, e.g. `5000/s (never broke: a lower bound)`, bold for the summary. */
function rateOf(s: ComparedSide | null, bold = false): string {
  if (!s) return 'not run'
  const b = bold ? '**' : ''
  const rate = s.maxOkRate === null ? `${b}none${b}` : `${b}${s.maxOkRate}${b}/s`
  return rate + (s.brokeAt === null ? ' (never broke: a lower bound)' : '')
}

/**
 * The targets for the cluster, for the report's Targets table. With `machineCores`, the
 * rate row also says what the rate it asks for would take of the machine's cores.
 */
export function clusterTargets(c: ClusterComparison, cluster: ScenarioResult | undefined, machineCores?: number): TargetRow[] {
  const rows: TargetRow[] = []
  if (cluster) {
    const v = cluster.verification
    rows.push({ scenario: 'cluster', target: 'durable: every acked push stored', measured: v?.detail ?? cluster.error ?? 'not verified', met: v ? v.ok : null })
  }
  rows.push({
    scenario: 'cluster',
    target: `highest sustained R ≥ ${CLUSTER_GOALS.rateRatio}× socket.io's`,
    measured:
      `cluster ${rateOf(c.cluster)} vs socketio ${rateOf(c.socketio)} (ratio ${c.rateRatioText})` +
      (machineCores && c.socketio?.maxOkRate ? coresNeeded(cluster, CLUSTER_GOALS.rateRatio * c.socketio.maxOkRate, machineCores) : ''),
    met: c.rateRatioMet,
  })
  rows.push({
    scenario: 'cluster',
    target: `at R=${c.targetRate}, p99 ≤ ${CLUSTER_GOALS.p99Ratio}× socket.io's`,
    measured: `cluster ${fmt(c.cluster?.p99AtTarget ?? null, 1)} ms vs socketio ${fmt(c.socketio?.p99AtTarget ?? null, 1)} ms (ratio ${fmt(c.p99Ratio)})`,
    met: c.p99Ratio === null ? null : c.p99Ratio <= CLUSTER_GOALS.p99Ratio,
  })
  return rows
}

/** The report's comparison section: both ceilings and their ratio, both p99s at the target rate, the plot. */
export function comparisonMarkdown(c: ClusterComparison): string[] {
  const limit = c.cluster?.p99LimitMs ?? c.socketio?.p99LimitMs
  const caveats = [c.cluster, c.socketio]
    .filter((s): s is ComparedSide => !!s?.generatorBoundAtBreak)
    .map((s) => `${s.name} broke on a generator-bound step: it may hold more than measured.`)
  return [
    '## Cluster comparison',
    '',
    `- Highest sustained R (p99 ≤ ${limit} ms, nothing lost): cluster ${rateOf(c.cluster, true)}, socketio ${rateOf(c.socketio, true)}; ` +
      `ratio cluster ÷ socketio **${c.rateRatioText}** (target ≥ ${CLUSTER_GOALS.rateRatio}).`,
    `- p99 at R=${c.targetRate}: cluster **${fmt(c.cluster?.p99AtTarget ?? null, 1)} ms**, socketio **${fmt(c.socketio?.p99AtTarget ?? null, 1)} ms**; ` +
      `ratio cluster ÷ socketio **${fmt(c.p99Ratio)}** (target ≤ ${CLUSTER_GOALS.p99Ratio}).`,
    ...caveats.map((line) => `- ${line}`),
    '',
    `![p50 and p99 against R, cluster and socketio](${c.plot})`,
  ]
}

/** p50 and p99 against R for whichever sides ran. */
export function clusterPlot(scenarios: ScenarioResult[], c: ClusterComparison, users: number): string {
  const series = (Object.keys(SIDES) as Array<keyof typeof SIDES>).flatMap((name) => {
    const s = scenarios.find((x) => x.name === name)
    if (!s?.steps.length) return []
    const points = [...s.steps].sort((a, b) => a.rate - b.rate).map((r) => ({ rate: r.rate, p50: r.latency.p50, p99: r.latency.p99, ok: r.ok }))
    return [{ name, color: SIDES[name], points }]
  })
  return latencySvg({
    title: `synchub cluster vs Socket.IO: ${users} users × 3 devices on 2 nodes, latency to the other devices`,
    series,
    limitMs: c.cluster?.p99LimitMs ?? c.socketio?.p99LimitMs,
  })
}
