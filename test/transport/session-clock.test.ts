import t, { type Test } from 'tap'
import { systemClock, type SessionClock } from '../../src/transport/session-clock.ts'
import { ManualClock } from './manual-clock.ts'

/** Lets time pass on a clock: the manual one is moved, the system one is waited for. */
type Pass = (ms: number) => Promise<void>

/** The SessionClock port's behaviour, run against the system clock and the tests' manual one. */
function sessionClockContract(t: Test, clock: SessionClock, pass: Pass): void {
  t.test('a timer fires once its time has passed, in order of due time, never from inside after()', async (t) => {
    const fired: string[] = []
    clock.after(40, () => fired.push('late'))
    clock.after(10, () => fired.push('early'))
    t.same(fired, [], 'nothing fires while it is set')
    await pass(80)
    t.same(fired, ['early', 'late'])
  })

  t.test('a cancelled timer never fires; cancelling twice or after it fired is harmless', async (t) => {
    const fired: string[] = []
    const cancelled = clock.after(10, () => fired.push('cancelled'))
    const kept = clock.after(10, () => fired.push('kept'))
    clock.cancel(cancelled)
    clock.cancel(cancelled)
    await pass(40)
    clock.cancel(kept)
    t.same(fired, ['kept'])
  })

  t.test('time moves forward; a timer for the past fires at the next chance', async (t) => {
    const before = clock.now()
    const fired: number[] = []
    clock.after(-5, () => fired.push(1))
    await pass(20)
    t.ok(clock.now() >= before, 'now() does not go back')
    t.same(fired, [1])
  })
}

t.test('system clock', async (t) => {
  sessionClockContract(t, systemClock, (ms) => new Promise((r) => setTimeout(r, ms)))
})

t.test('manual clock', async (t) => {
  const clock = new ManualClock(1_000)
  sessionClockContract(t, clock, async (ms) => clock.advance(ms))
  t.test('moves only when advanced, and fires each timer at its own time', async (t) => {
    const at: number[] = []
    clock.after(30, () => at.push(clock.now()))
    clock.after(10, () => at.push(clock.now()))
    const start = clock.now()
    clock.advance(5)
    t.same([at, clock.now() - start], [[], 5])
    clock.advance(100)
    t.same(at, [start + 10, start + 30])
    t.equal(clock.pending, 0)
  })
})
