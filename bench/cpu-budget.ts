import type { ScenarioResult, StepRow } from './ladder.ts'

/**
 * What the machine's cores say about a relative target. Every side shares the same cores with
 * the load generator (and the hub with Postgres and Redis), so a rate a target asks for can
 * need more CPU than the machine has, whatever the latency would be. These figures say how much.
 */

/** CPU (cores) of every part a step measures: the server's processes, its Postgres backends, Redis, the load generator. */
export function measuredCores(server: StepRow['server'], generatorCpu: number): number {
  return server.cpuCores + server.postgresCpuCores + (server.redisCpuCores ?? 0) + generatorCpu
}

/**
 * CPU seconds the measured parts spent per acked push in a step. Processes the step does not
 * attribute (Postgres's WAL writer and checkpointer, say) are left out: a floor, not the whole.
 */
export function cpuPerPush(r: Pick<StepRow, 'server' | 'generator' | 'ackedPerSec'>): number | null {
  const seconds = measuredCores(r.server, r.generator.cpu) / r.ackedPerSec
  return r.ackedPerSec > 0 && Number.isFinite(seconds) ? seconds : null
}

/** The least CPU per push among a scenario's steps: where batching spread its fixed costs widest. */
export function leastCpuPerPush(s: ScenarioResult): number | null {
  const costs = s.steps.map(cpuPerPush).filter((c): c is number => c !== null)
  return costs.length > 0 ? Math.min(...costs) : null
}

/**
 * For a target's row: the cores `rate` would take at the scenario's least CPU per push, scaled
 * linearly, against the machine's. Empty when the scenario has no step to take it from.
 */
export function coresNeeded(s: ScenarioResult | undefined, rate: number, machineCores: number): string {
  const perPush = s && leastCpuPerPush(s)
  if (!perPush || !(rate > 0)) return ''
  return `; at ${s.name}'s least CPU per push (${(perPush * 1e6).toFixed(0)} µs, generator included), ${rate}/s would take ${(perPush * rate).toFixed(2)} of the machine's ${machineCores} cores`
}
