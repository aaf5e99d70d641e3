import t from 'tap'
import { ackMaxByWindow, slowestWindows } from '../stats.ts'

t.test('ackMaxByWindow: the slowest ack per window of the measured time, placed by scheduled time', async (t) => {
  // Pushes scheduled at 1000 (warm-up), 1050, 1120, 1190, 1310 (past the window); acked later.
  const scheduledAt = Float64Array.from([1000, 1050, 1120, 1190, 1310, 0])
  const ackedAt = Float64Array.from([1400, 1055, 1200, 1195, 1320, 0])
  const byWindow = ackMaxByWindow(scheduledAt, ackedAt, 1050, 1300, 100)
  t.same([...byWindow], [80, 5, 0], 'warm-up and later pushes stay out; each window keeps its slowest ack')

  const unacked = ackMaxByWindow(Float64Array.from([1060]), Float64Array.from([0]), 1050, 1150, 100)
  t.same([...unacked], [0], 'a push not acked (another thread’s, or lost) adds nothing')
})

t.test('slowestWindows: merges threads by max and ranks windows slowest first', async (t) => {
  const a = Float64Array.from([4, 90, 3, 0])
  const b = Float64Array.from([6, 2, 120, 0])
  t.same(slowestWindows([a, b], 2, 100), [
    { atSec: 0.2, maxAckMs: 120 },
    { atSec: 0.1, maxAckMs: 90 },
  ])
  t.same(slowestWindows([new Float64Array(3)], 3), [], 'windows without acks are not reported')
})
