import t from 'tap'
import { clusterTargets, compareCluster } from '../cluster-compare.ts'
import { coresNeeded, cpuPerPush, leastCpuPerPush } from '../cpu-budget.ts'
import type { ScenarioResult, StepRow } from '../ladder.ts'
import { parseOptions, type Options } from '../options.ts'
import { summarize } from '../report.ts'

/** A step with the fields the budget and the comparison read; CPU in cores. */
const step = (rate: number, cpu: { server: number; postgres: number; redis?: number; gen: number }, acked = rate, ok = true) =>
  ({
    rate,
    ok,
    generatorBound: false,
    ackedPerSec: acked,
    latency: { p50: 1, p99: ok ? 10 : 500 },
    server: { cpuCores: cpu.server, postgresCpuCores: cpu.postgres, redisCpuCores: cpu.redis, rssMaxMiB: 1, rssEndMiB: 1 },
    generator: { cpu: cpu.gen },
    counts: { unacked: 0, failed: 0, lostPushes: 0 },
  }) as unknown as StepRow

const near = (x: number | null, want: number) => x !== null && Math.abs(x - want) < 1e-12

function scenario(name: string, steps: StepRow[]): ScenarioResult {
  let maxOkRate: number | null = null
  for (const s of steps) if (s.ok && steps.filter((x) => x.rate <= s.rate).every((x) => x.ok)) maxOkRate = s.rate
  return { name, description: name, users: 200, sockets: 600, p99LimitMs: 50, steps, maxOkRate }
}

t.test('CPU per push adds every measured part and divides by the acked rate', async (t) => {
  t.ok(near(cpuPerPush(step(7500, { server: 0.66, postgres: 0.45, gen: 0.39 })), 0.0002), '150% of a core over 7,500 acked/s: 200 µs')
  t.ok(near(cpuPerPush(step(1000, { server: 0.5, postgres: 0.3, redis: 0.1, gen: 0.1 })), 0.001), "Redis's CPU counts where it ran")
  t.ok(near(cpuPerPush(step(1000, { server: 0.5, postgres: 0.3, gen: 0.1 })), 0.0009), 'no Redis: nothing added for it')
  t.equal(cpuPerPush(step(1000, { server: 0.5, postgres: 0, gen: 0.1 }, 0)), null, 'nothing acked: no figure')
  t.equal(cpuPerPush(step(1000, { server: NaN, postgres: 0, gen: 0.1 })), null, 'an unmeasured part: no figure')
})

t.test('the least CPU per push is taken over the steps that have one', async (t) => {
  const s = scenario('hub', [
    step(1000, { server: 0.5, postgres: 0.4, gen: 0.2 }), // 1,100 µs
    step(5000, { server: 0.6, postgres: 0.5, gen: 0.4 }), // 300 µs
    step(7500, { server: 0.66, postgres: 0.45, gen: 0.39 }, 7500, false), // 200 µs, broken: still a measured cost
    step(10000, { server: 0.7, postgres: 0.4, gen: 0.4 }, 0, false),
  ])
  t.ok(near(leastCpuPerPush(s), 0.0002))
  t.equal(leastCpuPerPush(scenario('none', [])), null)
  t.equal(coresNeeded(s, 10000, 2), "; at hub's least CPU per push (200 µs, generator included), 10000/s would take 2.00 of the machine's 2 cores")
  t.equal(coresNeeded(scenario('none', []), 10000, 2), '', 'nothing to scale from: nothing said')
  t.equal(coresNeeded(undefined, 10000, 2), '')
})

t.test("the relative targets' rows say what their rates would take of the machine", async (t) => {
  const relay = scenario('relay', [step(10000, { server: 0.4, postgres: 0, gen: 0.6 }), step(20000, { server: 0.6, postgres: 0, gen: 0.9 })])
  const hub = scenario('hub', [step(5000, { server: 0.6, postgres: 0.5, gen: 0.4 }), step(7500, { server: 0.66, postgres: 0.45, gen: 0.39 }, 7500, false)])
  const opts = parseOptions([]) as Options
  const ratioRow = summarize([relay, hub], {}, { root: '', opts, machineCores: 2, log: () => {} }).targets.find((r) => r.target.includes('the relay'))!
  t.match(ratioRow.measured, "10000/s would take 2.00 of the machine's 2 cores", "half the relay's 20,000/s, at the hub's 200 µs")
  t.equal(ratioRow.met, false)

  const cluster = scenario('cluster', [step(5000, { server: 0.95, postgres: 0.4, redis: 0.02, gen: 0.35 }), step(7500, { server: 1, postgres: 0.45, redis: 0.025, gen: 0.4 }, 7500, false)])
  const peer = scenario('socketio', [step(5000, { server: 0.95, postgres: 0, redis: 0.12, gen: 0.6 }), step(7500, { server: 1, postgres: 0, redis: 0.1, gen: 0.6 }, 7500, false)])
  const c = compareCluster([cluster, peer], 5000, 'p.svg')!
  const rateRow = clusterTargets(c, cluster, 2)[1]!
  t.match(rateRow.measured, "15000/s would take 3.75 of the machine's 2 cores", "3× the peer's 5,000/s, at the cluster's 250 µs")
  t.notMatch(clusterTargets(c, cluster)[1]!.measured, 'would take', 'without the core count, nothing is said')
})
