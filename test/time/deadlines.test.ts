import fc from 'fast-check'
import t from 'tap'
import { Deadlines } from '../../src/time/deadlines.ts'
import { ManualClock } from '../helpers/manual-clock.ts'

t.test('deadlines fire once each, at their time, in due order (set order among equals), on one timer', async (t) => {
  const clock = new ManualClock()
  const d = new Deadlines(clock)
  const fired: string[] = []
  const start = clock.now()
  d.after(30, () => fired.push(`c@${clock.now() - start}`))
  d.after(10, () => fired.push(`a@${clock.now() - start}`))
  d.after(10, () => fired.push(`b@${clock.now() - start}`))
  t.equal(clock.pending, 1, 'three deadlines, one timer on the clock')
  t.equal(d.size, 3)
  await clock.advance(9)
  t.same(fired, [], 'nothing before its time')
  await clock.advance(1)
  t.same(fired, ['a@10', 'b@10'], 'both due at 10 fire then, in the order they were set')
  await clock.advance(100)
  t.same(fired, ['a@10', 'b@10', 'c@30'], 'and the last exactly at its time')
  t.equal(clock.pending, 0, 'no timer left once none is waiting')
})

t.test('an earlier deadline re-arms the timer; cancelled ones never fire; a firing one may set another', async (t) => {
  const clock = new ManualClock()
  const d = new Deadlines(clock)
  const fired: string[] = []
  d.after(100, () => fired.push('late'))
  const gone = d.after(5, () => fired.push('cancelled'))
  d.after(20, () => {
    fired.push('early')
    d.after(0, () => fired.push('chained'))
  })
  gone.cancel()
  gone.cancel()
  t.equal(d.size, 2, 'a cancelled deadline leaves at once')
  await clock.advance(20)
  t.same(fired, ['early', 'chained'], 'the early one fired at 20, and one it set for then right after it (not within its call)')
  await clock.advance(80)
  t.same(fired, ['early', 'chained', 'late'])
})

t.test('close forgets everything and stops the timer', async (t) => {
  const clock = new ManualClock()
  const d = new Deadlines(clock)
  let fired = 0
  const kept = d.after(10, () => void fired++)
  d.close()
  kept.cancel()
  await clock.advance(50)
  t.equal(fired, 0)
  t.equal(clock.pending, 0)
})

t.test('against a sorted list: any adds, cancels and time moves fire the same deadlines at the same times', async (t) => {
  type Step = { kind: 'add'; ms: number } | { kind: 'cancel'; pick: number } | { kind: 'advance'; ms: number }
  const step = fc.oneof(
    fc.record({ kind: fc.constant('add' as const), ms: fc.integer({ min: 0, max: 50 }) }),
    fc.record({ kind: fc.constant('cancel' as const), pick: fc.nat() }),
    fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 30 }) }),
  )
  await fc.assert(
    fc.asyncProperty(fc.array(step, { maxLength: 60 }), async (steps: Step[]) => {
      const clock = new ManualClock()
      const d = new Deadlines(clock)
      const fired: Array<[number, number]> = []
      const model: Array<{ id: number; at: number; live: boolean }> = []
      const handles: Array<{ cancel(): void }> = []
      for (const s of steps) {
        if (s.kind === 'add') {
          const id = model.length
          model.push({ id, at: clock.now() + s.ms, live: true })
          handles.push(d.after(s.ms, () => fired.push([id, clock.now()])))
        } else if (s.kind === 'cancel' && model.length > 0) {
          const k = s.pick % model.length
          handles[k]!.cancel()
          if (!fired.some(([id]) => id === k)) model[k]!.live = false
        } else if (s.kind === 'advance') await clock.advance(s.ms)
      }
      await clock.advance(100)
      const expected = model.filter((m) => m.live).sort((a, b) => a.at - b.at || a.id - b.id).map((m): [number, number] => [m.id, m.at])
      t.same(fired, expected)
      return JSON.stringify(fired) === JSON.stringify(expected) && d.size === 0 && clock.pending === 0
    }),
    { numRuns: 200 },
  )
})
