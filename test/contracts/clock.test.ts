import { CLOCKS, eachAdapter } from './adapters.ts'

/**
 * The clock port's contract, run against the system clock and the manual one the tests move by
 * hand (adapters.ts). It asserts what timers do and in what order, never how long anything took.
 */
eachAdapter(CLOCKS, async (t, { clock, until, elapse }) => {
  const start = clock.now()
  t.ok(Number.isSafeInteger(start) && start > Date.UTC(2020, 0, 1), 'now is milliseconds since the epoch')

  const fired: string[] = []
  clock.after(30, () => fired.push('later'))
  clock.after(10, () => fired.push('sooner'))
  t.same(fired, [], 'a timer never fires in the call that sets it')
  await until(() => fired.length === 2)
  t.same(fired, ['sooner', 'later'], 'timers fire once each, in the order they fall due')
  t.ok(clock.now() >= start, 'time does not go back')

  const cancelled = clock.after(5, () => fired.push('cancelled'))
  cancelled.cancel()
  clock.after(15, () => fired.push('sentinel'))
  await until(() => fired.includes('sentinel'))
  t.notOk(fired.includes('cancelled'), 'a cancelled timer never fires')
  cancelled.cancel() // cancelling twice is harmless

  let ticks = 0
  const every = clock.every(5, () => void ticks++)
  await until(() => ticks >= 3)
  every.cancel()
  const seen = ticks
  let done = false
  clock.after(20, () => (done = true))
  await until(() => done)
  t.equal(ticks, seen, 'a repeating timer repeats until cancelled, then stops')

  await elapse(1)
  t.equal(fired.filter((f) => f === 'later').length, 1, 'a one-off timer fires only once')
})
