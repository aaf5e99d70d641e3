import t from 'tap'
import { GroupCommitter, laneOf } from '../../src/sync/group-commit.ts'

type Job = { userId: string; weight: number; n: number }

/** Resolves once no job is queued or committing (the engine itself waits on each push's answer). */
async function drained(gc: GroupCommitter<Job>): Promise<void> {
  while (gc.pending > 0) await new Promise((r) => setTimeout(r, 1))
}

t.test('jobs that queue while a batch commits go together into the next batch', async (t) => {
  const batches: number[][] = []
  let release!: () => void
  let gate = new Promise<void>((r) => (release = r))
  const gc = new GroupCommitter<Job>(1, 100, async (jobs) => {
    batches.push(jobs.map((j) => j.n))
    await gate
  })
  gc.submit({ userId: 'u', weight: 1, n: 1 })
  for (let n = 2; n <= 5; n++) gc.submit({ userId: 'u', weight: 1, n })
  t.equal(gc.pending, 5)
  release()
  gate = Promise.resolve()
  await drained(gc)
  t.same(batches, [[1], [2, 3, 4, 5]], 'the first commits alone, the rest as one group')
  t.equal(gc.pending, 0)
})

t.test('a batch never exceeds the weight limit unless one job alone does', async (t) => {
  const batches: number[][] = []
  let release!: () => void
  const gate = new Promise<void>((r) => (release = r))
  const gc = new GroupCommitter<Job>(1, 10, async (jobs) => {
    batches.push(jobs.map((j) => j.weight))
    await gate
  })
  gc.submit({ userId: 'u', weight: 1, n: 0 })
  for (const w of [4, 4, 4, 25, 3]) gc.submit({ userId: 'u', weight: w, n: 0 })
  release()
  await drained(gc)
  t.same(batches, [[1], [4, 4], [4], [25], [3]])
})

t.test('a user always lands on the same lane; lanes run in parallel', async (t) => {
  t.equal(laneOf('alice', 4), laneOf('alice', 4))
  const lanes = new Set(Array.from({ length: 100 }, (_, i) => laneOf(`user-${i}`, 4)))
  t.equal(lanes.size, 4, 'users spread over every lane')
  let running = 0
  let peak = 0
  const gc = new GroupCommitter<Job>(4, 100, async () => {
    peak = Math.max(peak, ++running)
    await new Promise((r) => setTimeout(r, 20))
    running--
  })
  for (let i = 0; i < 40; i++) gc.submit({ userId: `user-${i}`, weight: 1, n: i })
  await drained(gc)
  t.ok(peak > 1, `several lanes committed at once (peak ${peak})`)
  t.ok(peak <= 4, 'never more than the lane count')
})

t.test('a batch is answered after the next one has started, once, and the last before idle', async (t) => {
  const events: string[] = []
  const gates: Array<() => void> = []
  const gc = new GroupCommitter<Job>(1, 1, async (jobs) => {
    const n = jobs[0]!.n
    events.push(`start ${n}`)
    await new Promise<void>((r) => gates.push(r))
    events.push(`committed ${n}`)
    return () => events.push(`answer ${n}`)
  })
  for (let n = 1; n <= 3; n++) gc.submit({ userId: 'u', weight: 1, n })
  const idle = drained(gc).then(() => events.push('idle'))
  while (!events.includes('idle')) {
    await new Promise((r) => setTimeout(r, 5))
    gates.shift()?.()
  }
  await idle
  t.same(events, ['start 1', 'committed 1', 'start 2', 'answer 1', 'committed 2', 'start 3', 'answer 2', 'committed 3', 'answer 3', 'idle'])
})

t.test('batches that commit without I/O are still answered in order, all before idle', async (t) => {
  const events: string[] = []
  const gc = new GroupCommitter<Job>(1, 1, async (jobs) => {
    await Promise.resolve()
    return () => events.push(`answer ${jobs[0]!.n}`)
  })
  for (let n = 1; n <= 4; n++) gc.submit({ userId: 'u', weight: 1, n })
  await drained(gc)
  events.push('idle')
  t.same(events, ['answer 1', 'answer 2', 'answer 3', 'answer 4', 'idle'])
})

t.test('a linger answers the committed batch at once, then gathers what queued and arrives before the next commit', async (t) => {
  const events: string[] = []
  let release!: () => void
  const gc = new GroupCommitter<Job>(
    1,
    100,
    async (jobs) => {
      const ns = jobs.map((j) => j.n).join(',')
      events.push(`start ${ns}`)
      if (jobs[0]!.n === 1) await new Promise<void>((r) => (release = r))
      return () => events.push(`answer ${ns}`)
    },
    1000,
  )
  gc.submit({ userId: 'u', weight: 1, n: 1 })
  gc.submit({ userId: 'u', weight: 1, n: 2 }) // queued while 1 commits
  release()
  while (!events.includes('answer 1')) await new Promise((r) => setImmediate(r))
  t.same(events, ['start 1', 'answer 1'], 'batch 1 is answered before its linger ends; batch 2 is not sent yet')
  gc.submit({ userId: 'u', weight: 1, n: 3 }) // arrives during the linger
  await drained(gc)
  t.same(events, ['start 1', 'answer 1', 'start 2,3', 'answer 2,3'], 'what queued and what arrived commit together')
})

t.test('a linger never delays a push that finds its lane idle', async (t) => {
  const batches: number[][] = []
  const gc = new GroupCommitter<Job>(1, 100, async (jobs) => void batches.push(jobs.map((j) => j.n)), 60_000)
  gc.submit({ userId: 'u', weight: 1, n: 1 })
  await drained(gc)
  gc.submit({ userId: 'u', weight: 1, n: 2 })
  t.same(batches, [[1], [2]], 'the second push started its commit in the same turn as submit, not after the linger')
  await drained(gc)
})
