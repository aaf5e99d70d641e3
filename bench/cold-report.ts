import type { TargetRow } from './cluster-compare.ts'
import type { ColdStartPhase, ColdStartResult } from './cold-start.ts'

/** The cold-start target: a full pull at this many changes per second or more. */
export const COLD_PULL_TARGET = 50_000

/**
 * The hub's memory is "flat" through a pull when its RSS grows by less than the history's size
 * (the backup's bytes). A hub that held the history would grow by several times that (decoded
 * records are larger than their encoding); a streaming one grows by its working set for a page
 * or two plus V8's young-generation headroom, some 15-30 MiB whatever the history, so only a
 * history well above that (the default 100,000 messages) can tell the two apart.
 *
 * Below JUDGED_FROM_MIB of history the growth is reported, not judged.
 */
const JUDGED_FROM_MIB = 32

export function coldTargets(cold: ColdStartResult): TargetRow[] {
  const history = cold.phases.find((p) => p.name.startsWith('export'))?.bytes
  const pulls = cold.phases.filter((p) => p.name.includes('pull'))
  if (cold.error && pulls.length === 0) return [{ scenario: 'cold', target: 'cold start', measured: cold.error, met: null }]
  return pulls.flatMap((p): TargetRow[] => [
    {
      scenario: 'cold',
      target: `${p.name}: ≥ ${COLD_PULL_TARGET} changes/s`,
      measured: `${Math.round(p.perSecond)}/s (${p.items} in ${p.seconds.toFixed(2)} s)`,
      met: p.perSecond >= COLD_PULL_TARGET,
    },
    {
      scenario: 'cold',
      target: `${p.name}: hub memory flat (RSS growth < the history's size; judged from ${JUDGED_FROM_MIB} MiB of history)`,
      measured: `+${growth(p).toFixed(0)} MiB over a ${history ? `${mib(history).toFixed(0)} MiB` : 'unmeasured'} history`,
      met: history && mib(history) >= JUDGED_FROM_MIB ? growth(p) < mib(history) : null,
    },
  ])
}

export function coldMarkdown(cold: ColdStartResult): string[] {
  const out = [
    '## Cold start',
    '',
    `A new device joins an account of ${cold.messages} messages in ${cold.conversations} conversations (seeded over REST in ${cold.seedSeconds.toFixed(1)} s) and pulls everything; then the account is exported and imported into an empty one. Memory is sampled every 50 ms.`,
    '',
    '| phase | items | seconds | per second | hub RSS start → peak (MiB) | client RSS peak (MiB) | bytes | detail |',
    '|---|---:|---:|---:|---:|---:|---:|---|',
  ]
  for (const p of cold.phases) {
    out.push(`| ${p.name} | ${p.items} | ${p.seconds.toFixed(2)} | ${Math.round(p.perSecond)} | ${p.hubRssStartMiB.toFixed(0)} → ${p.hubRssPeakMiB.toFixed(0)} | ${p.clientRssPeakMiB.toFixed(0)} | ${p.bytes ?? ''} | ${p.detail ?? ''} |`)
  }
  if (cold.error) out.push('', `Stopped early: ${cold.error}`)
  return out
}

const growth = (p: ColdStartPhase) => p.hubRssPeakMiB - p.hubRssStartMiB
const mib = (bytes: number) => bytes / 2 ** 20
