import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { clusterPlot, clusterTargets, compareCluster, comparisonMarkdown, type ClusterComparison, type TargetRow } from './cluster-compare.ts'
import type { ScenarioResult, StepRow } from './ladder.ts'
import type { Options } from './options.ts'
import { coresNeeded, cpuPerPush } from './cpu-budget.ts'
import { sdkOverheadTargets } from './sdk-report.ts'
import { STUDIES } from './studies/index.ts'
import type { StudyContext } from './studies/types.ts'

export interface RunMeta {
  startedAt: string
  durationSec: number
  command: string
  git: string
  node: string
  cpus: string
  memGiB: number
  /** 1-minute load average when the run started: above ~0.5 something else was using the cores. */
  loadAvgAtStart: number
  options: Omit<Options, 'outDir' | 'name'>
}

export interface Summary {
  /** Each scenario's highest rate with p99 within the limit and nothing lost. */
  maxOkRate: Record<string, number | null>
  /** The hub's highest rate over the relay's, for each hub scenario that ran with the relay. */
  ratios: Record<string, number | null>
  /** The targets, per hub scenario and for the cluster: met, not met, or not measured. */
  targets: TargetRow[]
  /** synchub cluster against Socket.IO, when either ran. */
  cluster?: ClusterComparison
}

export interface Report {
  meta: RunMeta
  scenarios: ScenarioResult[]
  /** Each study that ran (bench/studies/), its raw result by name. */
  studies: Record<string, unknown>
  summary: Summary
}

/** `ctx.machineCores`: the cores every side shared, to say what a relative target's rate would take of them. */
export function summarize(scenarios: ScenarioResult[], studies: Record<string, unknown>, ctx: StudyContext): Summary {
  const { opts, machineCores } = ctx
  const maxOkRate = Object.fromEntries(scenarios.map((s) => [s.name, s.error && !s.steps.length ? null : s.maxOkRate]))
  const relay = scenarios.find((s) => s.name === 'relay')
  const ratios: Summary['ratios'] = {}
  const targets: Summary['targets'] = []
  for (const s of scenarios.filter((x) => x.name.startsWith('hub'))) {
    if (relay) ratios[s.name] = relay.maxOkRate && s.steps.length ? (s.maxOkRate ?? 0) / relay.maxOkRate : null
    const at = s.steps.find((r) => r.rate === opts.targetRate)
    const fixed = `U=${opts.users}, R=${opts.targetRate}/s: zero loss, p99 ≤ ${opts.targetP99Ms} ms, durable`
    if (!at) targets.push({ scenario: s.name, target: fixed, measured: s.error ?? `R=${opts.targetRate} not run`, met: null })
    else {
      const lost = at.counts.unacked + at.counts.failed + at.counts.lostPushes
      const durable = s.verification ? s.verification.ok : null
      targets.push({
        scenario: s.name,
        target: fixed,
        measured: `p99 ${at.latency.p99.toFixed(1)} ms; ${at.counts.unacked + at.counts.failed} not acked within the drain, ${at.counts.lostPushes} acked but undelivered; ${s.verification?.detail ?? 'not verified'}`,
        met: lost === 0 && at.latency.p99 <= opts.targetP99Ms && durable !== false,
      })
    }
    const ratio = ratios[s.name]
    const half = relay?.maxOkRate ? coresNeeded(s, relay.maxOkRate / 2, machineCores) : ''
    targets.push({
      scenario: s.name,
      target: `highest R with p99 ≤ ${s.p99LimitMs} ms ≥ ½ the relay's`,
      measured: relay ? `${s.maxOkRate ?? 'none'} vs relay ${relay.maxOkRate ?? 'none'} (ratio ${ratio === null || ratio === undefined ? 'n/a' : ratio.toFixed(2)})${half}` : 'relay not run',
      met: ratio === null || ratio === undefined ? null : ratio >= 0.5,
    })
  }
  const cluster = compareCluster(scenarios, opts.targetRate, `${opts.name}-cluster.svg`)
  if (cluster) targets.push(...clusterTargets(cluster, scenarios.find((s) => s.name === 'cluster'), machineCores))
  targets.push(...sdkOverheadTargets(scenarios))
  for (const [name, result] of Object.entries(studies)) targets.push(...STUDIES[name]!.targets(result, ctx))
  return { maxOkRate, ratios, targets, ...(cluster && { cluster }) }
}

/** "50 ms (relay, hub); 100 ms (cluster, socketio)": each scenario's break limit. */
function limits(scenarios: ScenarioResult[]): string {
  const by = new Map<number, string[]>()
  for (const s of scenarios) by.set(s.p99LimitMs, [...(by.get(s.p99LimitMs) ?? []), s.name])
  if (by.size === 1) return `${[...by.keys()][0]} ms`
  return [...by].map(([ms, names]) => `${ms} ms (${names.join(', ')})`).join('; ')
}

/** One line, no pipes: safe inside a markdown table cell. */
const cell = (s: string) => s.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|').slice(0, 300)
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–')
const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '–')
const pct = (n: number) => (Number.isFinite(n) ? `${Math.round(n * 100)}%` : '–')
const micros = (seconds: number | null) => (seconds === null ? '–' : (seconds * 1e6).toFixed(0))

function lossCell(r: StepRow): string {
  const c = r.counts
  return `${c.unacked + c.failed} / ${c.missingDev1} / ${c.missingDev2}`
}

/** How Postgres's WAL stood at the steps of targets that prepare it (bench/README.md, "Postgres's WAL"). */
function walNote(scenarios: ScenarioResult[], cold: boolean): string {
  const prepared = scenarios.flatMap((s) => s.steps.flatMap((r) => (r.prepared ? [r.prepared] : [])))
  if (prepared.length === 0) return ''
  if (cold) return " Postgres's WAL was left as found (`--cold-wal`): no recycled segments reserved before the steps."
  const failed = prepared.find((p) => !p.ok)
  return failed
    ? ` Recycled WAL segments could not be reserved before the steps (${failed.detail}).`
    : ' Before each step on Postgres, recycled WAL segments for it were reserved, as a server under sustained load has them (`--cold-wal` skips this).'
}

export function markdown(report: Report): string {
  const { meta, scenarios, summary } = report
  const o = meta.options
  const out: string[] = []
  out.push(`# synchub benchmark: ${meta.startedAt}`, '')
  out.push(`\`${meta.command}\` · git ${meta.git} · node ${meta.node} · ${meta.cpus} · ${meta.memGiB} GiB · load ${meta.loadAvgAtStart.toFixed(2)} at start · ${meta.durationSec.toFixed(0)} s`, '')
  // The rate ladders, when any ran (a cold-start-only run has none).
  if (scenarios.length > 0) {
    out.push(
      `${o.users} users × 3 sockets; device 0 of each user pushes one message (${scenarios.find((s) => s.dataBytes)?.dataBytes ?? '?'} B data, ${scenarios.find((s) => s.pushFrameBytes)?.pushFrameBytes ?? '?'} B frame) at total rate R, spread evenly; ` +
        `each step ${o.warmupSec} s warm-up + ${o.measureSec} s measured, ${o.drainSec} s drain. Latency: scheduled send → \`changes\` at devices 1 and 2 (ms). ` +
        `A step breaks at p99 > ${limits(scenarios)} or any loss. The generator, the server, Postgres and Redis share the machine's cores.` +
        walNote(scenarios, o.coldWal),
      '',
    )
    out.push('| scenario | R/s | acked/s | p50 | p99 | p999 | max | ack p99 | lost: unacked / dev1 / dev2 | server RSS MiB | server CPU | postgres CPU | redis CPU | gen CPU | other CPU | CPU/push µs | send lag p99 | verdict |')
    out.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|')
    for (const s of scenarios) {
      if (s.error && !s.steps.length) out.push(`| ${s.name} | | | | | | | | | | | | | | | | | ${cell(s.error)} |`)
      for (const r of s.steps) {
        const l = r.latency
        out.push(
          `| ${s.name} | ${r.rate} | ${r.ackedPerSec.toFixed(0)} | ${f2(l.p50)} | ${f2(l.p99)} | ${f2(l.p999)} | ${f1(l.max)} | ${f2(r.ackLatency.p99)} | ${lossCell(r)} | ${r.server.rssMaxMiB.toFixed(0)} | ${pct(r.server.cpuCores)} | ${pct(r.server.postgresCpuCores)} | ${pct(r.server.redisCpuCores ?? NaN)} | ${pct(r.generator.cpu)} | ${pct(r.otherCpuCores)} | ${micros(cpuPerPush(r))} | ${f1(r.sendLag.p99)} | ${r.ok ? 'ok' : cell(r.reasons.join('; '))}${r.generatorBound ? ' (generator-bound)' : ''} |`,
        )
      }
    }
  }
  out.push('', '## Summary', '')
  for (const s of scenarios) {
    const extra = [s.rssIdleMiB !== undefined ? `idle RSS ${s.rssIdleMiB.toFixed(0)} MiB` : '', s.verification ? `verify: ${s.verification.detail}` : '', s.error ? `error: ${cell(s.error)}` : '']
    out.push(`- **${s.name}** (${s.description}): highest R with p99 ≤ ${s.p99LimitMs} ms and no loss: **${summary.maxOkRate[s.name] ?? 'none'}**/s. ${extra.filter(Boolean).join('; ')}`)
  }
  for (const [name, ratio] of Object.entries(summary.ratios)) {
    out.push(`- ratio ${name}/relay: **${ratio === null ? 'n/a' : ratio.toFixed(2)}**`)
  }
  if (summary.cluster) out.push('', ...comparisonMarkdown(summary.cluster))
  for (const [name, result] of Object.entries(report.studies)) out.push('', ...STUDIES[name]!.markdown(result))
  if (summary.targets.length) {
    out.push('', '## Targets', '', '| scenario | target | measured | met |', '|---|---|---|---|')
    for (const t of summary.targets) out.push(`| ${t.scenario} | ${t.target} | ${cell(t.measured)} | ${t.met === null ? 'not measured' : t.met ? 'yes' : 'NO'} |`)
  }
  return out.join('\n') + '\n'
}

export function writeReport(dir: string, name: string, report: Report): { json: string; md: string; svg?: string } {
  mkdirSync(dir, { recursive: true })
  const json = join(dir, `${name}.json`)
  const md = join(dir, `${name}.md`)
  writeFileSync(json, JSON.stringify(report, null, 2) + '\n')
  writeFileSync(md, markdown(report))
  const cluster = report.summary.cluster
  if (!cluster) return { json, md }
  const svg = join(dir, cluster.plot)
  writeFileSync(svg, clusterPlot(report.scenarios, cluster, report.meta.options.users))
  return { json, md, svg }
}
