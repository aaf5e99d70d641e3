import type { TargetRow } from './cluster-compare.ts'
import type { ScenarioResult } from './ladder.ts'
import type { SdkResilienceResult } from './sdk-resilience.ts'

/** The SDK's push→delivery p99 may exceed raw sockets' by this much at the same rate. */
export const SDK_P99_OVERHEAD = 0.1
/** Blocked socket to the first change over REST (ms). */
export const SDK_FALLBACK_MS = 1500

/** `sdk` against `hub` at each rate both held (p99 within their limit, nothing lost). */
export function sdkOverheadTargets(scenarios: ScenarioResult[]): TargetRow[] {
  const sdk = scenarios.find((s) => s.name === 'sdk')
  const raw = scenarios.find((s) => s.name === 'hub')
  if (!sdk) return []
  const target = `push→delivery p99 through the SDK ≤ raw sockets' + ${SDK_P99_OVERHEAD * 100}%, at each rate both held`
  if (!raw) return [{ scenario: 'sdk', target, measured: 'hub not run (--only hub,sdk)', met: null }]
  const pairs = sdk.steps.flatMap((s) => {
    const r = raw.steps.find((x) => x.rate === s.rate)
    return r && r.ok && s.ok ? [{ rate: s.rate, sdk: s.latency.p99, raw: r.latency.p99, sdk50: s.latency.p50, raw50: r.latency.p50 }] : []
  })
  if (pairs.length === 0) return [{ scenario: 'sdk', target, measured: 'no rate held by both', met: null }]
  const measured = pairs.map((p) => `${p.rate}/s: p50 ${p.sdk50.toFixed(1)} vs ${p.raw50.toFixed(1)}, p99 ${p.sdk.toFixed(1)} vs ${p.raw.toFixed(1)} ms (${pct(p.sdk / p.raw - 1)})`).join('; ')
  return [{ scenario: 'sdk', target, measured, met: pairs.every((p) => p.sdk <= p.raw * (1 + SDK_P99_OVERHEAD)) }]
}

export function sdkResilienceTargets(r: SdkResilienceResult): TargetRow[] {
  if (r.error && r.rounds.length === 0) return [{ scenario: 'sdk-fallback', target: 'the SDK when the socket is blocked', measured: r.error, met: null }]
  const fallback = r.rounds.map((x) => x.fallbackMs)
  const back = r.rounds.map((x) => x.backMs)
  const rows: TargetRow[] = [
    {
      scenario: 'sdk-fallback',
      target: `socket blocked → first change delivered over REST ≤ ${SDK_FALLBACK_MS} ms`,
      measured: `${fallback.map((v) => v.toFixed(0)).join(', ')} ms (${r.rounds.length} rounds; worst ${Math.max(...fallback).toFixed(0)})`,
      met: fallback.length > 0 && Math.max(...fallback) <= SDK_FALLBACK_MS,
    },
    {
      scenario: 'sdk-fallback',
      target: `socket allowed again → live on it ≤ the probe backoff cap (${r.probeCapMs} ms)`,
      measured: `${back.map((v) => v.toFixed(0)).join(', ')} ms (worst ${Math.max(...back).toFixed(0)})`,
      met: back.length > 0 && Math.max(...back) <= r.probeCapMs,
    },
  ]
  if (r.offline.offlineOpsPerSec > 0) {
    rows.push({
      scenario: 'sdk-fallback',
      target: `${r.offline.ops} ops queued offline, flushed after reconnect (ops/s, against the same ops pushed online)`,
      measured: `${r.offline.offlineOpsPerSec.toFixed(0)}/s flushed vs ${r.offline.onlineOpsPerSec.toFixed(0)}/s online (${(r.offline.offlineOpsPerSec / r.offline.onlineOpsPerSec).toFixed(2)}×); enqueued offline in ${r.offline.enqueueMs.toFixed(0)} ms`,
      met: null,
    })
  }
  return rows
}

export function sdkResilienceMarkdown(r: SdkResilienceResult): string[] {
  const out = [
    '## Client SDK: blocked socket, REST fallback, offline queue',
    '',
    'One hub (uws, Postgres) behind a TCP proxy; the SDK with its default options. Each round: a reader is live through the proxy while a writer pushes every 20 ms; the proxy cuts the reader\'s socket and refuses upgrades (plain HTTP passes), then allows them again.',
    '',
    '| round | blocked → first change over REST (ms) | allowed → live on the socket (ms) |',
    '|---:|---:|---:|',
    ...r.rounds.map((x, i) => `| ${i + 1} | ${x.fallbackMs.toFixed(0)} | ${x.backMs.toFixed(0)} |`),
    '',
    `${r.offline.ops} ops: pushed online at ${r.offline.onlineOpsPerSec.toFixed(0)}/s; enqueued with the proxy down (${r.offline.enqueueMs.toFixed(0)} ms) and flushed at ${r.offline.offlineOpsPerSec.toFixed(0)}/s from its return to the last ack.`,
  ]
  if (r.error) out.push('', `Stopped early: ${r.error}`)
  return out
}

const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(0)}%`
