import t from 'tap'
import { clusterTargets, compareCluster } from '../cluster-compare.ts'
import type { ScenarioResult, StepRow } from '../ladder.ts'
import { escapeXml, latencySvg, linearTicks, logTicks } from '../plot.ts'

/** Just the fields the comparison and the plot read. */
const step = (rate: number, p50: number, p99: number, ok = true, generatorBound = false) =>
  ({ rate, ok, generatorBound, latency: { p50, p99 } }) as unknown as StepRow

function scenario(name: string, steps: StepRow[], extra: Partial<ScenarioResult> = {}): ScenarioResult {
  let maxOkRate: number | null = null
  for (const s of steps) if (s.ok && steps.filter((x) => x.rate <= s.rate).every((x) => x.ok)) maxOkRate = s.rate
  return { name, description: name, users: 200, sockets: 600, p99LimitMs: 100, steps, maxOkRate, ...extra }
}

t.test('linear ticks are round steps from 0 covering the maximum', async (t) => {
  t.same(linearTicks(30000), [0, 5000, 10000, 15000, 20000, 25000, 30000])
  t.same(linearTicks(7500), [0, 2000, 4000, 6000, 8000])
  t.same(linearTicks(1), [0, 0.2, 0.4, 0.6, 0.8, 1], 'no float residue')
  t.same(linearTicks(0), [0, 1])
})

t.test('log ticks are the decades around the values', async (t) => {
  t.same(logTicks(0.4, 250), [0.1, 1, 10, 100, 1000])
  t.same(logTicks(10, 10), [10, 100], 'at least one decade')
})

t.test('escapes what would break the XML', async (t) => {
  t.equal(escapeXml(`a<b & "c"`), 'a&lt;b &amp; &quot;c&quot;')
})

t.test('the plot draws p99 and p50 per series, hollow markers for broken steps, and skips missing values', async (t) => {
  const svg = latencySvg({
    title: 'x < y',
    limitMs: 100,
    series: [
      { name: 'cluster', color: '#00f', points: [{ rate: 1000, p50: 2, p99: 9, ok: true }, { rate: 5000, p50: 40, p99: 300, ok: false }] },
      { name: 'socketio', color: '#f00', points: [{ rate: 1000, p50: NaN, p99: NaN, ok: false }, { rate: 5000, p50: 3, p99: 20, ok: true }] },
    ],
  })
  t.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/)
  t.match(svg, /<\/svg>\n$/)
  t.match(svg, 'x &lt; y', 'title escaped')
  t.match(svg, 'break limit 100 ms')
  t.equal((svg.match(/<polyline /g) ?? []).length, 4, 'p99 and p50 for both series')
  t.equal((svg.match(/<circle /g) ?? []).length, 6, 'no marker for a step without samples')
  t.equal((svg.match(/<circle [^>]*fill="white"/g) ?? []).length, 2, "the broken step's two markers are hollow")
  t.match(svg, 'cluster R=5000: p99 300.00 ms (broke)')
  for (const n of svg.match(/(?:x|y|cx|cy)\d?="[^"]*"/g) ?? []) t.notMatch(n, /NaN|Infinity/, n)
})

t.test('the comparison: ceilings, their ratio and p99 at the target rate', async (t) => {
  const cluster = scenario('cluster', [step(1000, 1, 5), step(5000, 2, 10), step(10000, 3, 40), step(20000, 30, 400, false)], {
    verification: { ok: true, detail: '1 stored for 1 acked' },
  })
  const peer = scenario('socketio', [step(1000, 2, 20), step(2500, 5, 80), step(5000, 30, 200, false)])
  const c = compareCluster([cluster, peer], 5000, 'latest-cluster.svg')!
  t.equal(c.cluster?.maxOkRate, 10000)
  t.equal(c.cluster?.brokeAt, 20000)
  t.equal(c.socketio?.maxOkRate, 2500)
  t.equal(c.rateRatio, 4)
  t.equal(c.rateRatioText, '4.00')
  t.equal(c.p99Ratio, 0.05)
  t.same(
    clusterTargets(c, cluster).map((r) => r.met),
    [true, true, true],
  )
})

t.test('a side that sustains no rate still bounds the ratio', async (t) => {
  const broke = (rate: number) => step(rate, 50, 150, false)
  const peerNone = scenario('socketio', [broke(1000)])
  const high = compareCluster([scenario('cluster', [step(1000, 1, 5), step(5000, 1, 8)]), peerNone], 5000, 'p.svg')!
  t.equal(high.rateRatio, null)
  t.equal(high.rateRatioText, '> 5.00', 'the peer held less than 1000')
  t.equal(clusterTargets(high, undefined)[0]!.met, true)
  t.match(clusterTargets(high, undefined)[0]!.measured, 'never broke: a lower bound')
  const low = compareCluster([scenario('cluster', [step(1000, 1, 5), broke(2500)]), peerNone], 5000, 'p.svg')!
  t.equal(low.rateRatioText, '> 1.00')
  t.equal(clusterTargets(low, undefined)[0]!.met, null, 'cannot tell')
  t.equal(clusterTargets(low, undefined)[1]!.met, null, 'p99 at 5000 not measured')
  const clusterNone = compareCluster([scenario('cluster', [broke(1000)]), scenario('socketio', [step(1000, 1, 5), step(2500, 1, 9), broke(5000)])], 5000, 'p.svg')!
  t.equal(clusterNone.rateRatioText, '< 0.40')
  t.equal(clusterNone.rateRatioMet, false)
  const bothNone = compareCluster([scenario('cluster', [broke(1000)]), peerNone], 5000, 'p.svg')!
  t.equal(bothNone.rateRatioText, 'n/a')
  t.equal(bothNone.rateRatioMet, null)
})

t.test('no comparison when neither side ran', async (t) => {
  t.equal(compareCluster([scenario('hub', [step(1000, 1, 5)])], 5000, 'p.svg'), undefined)
})
