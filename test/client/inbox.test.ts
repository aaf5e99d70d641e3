import t from 'tap'
import { Inbox } from '../../src/client/inbox.ts'
import { MemoryStorage } from '../../src/client/storage/memory.ts'
import { StateWriter } from '../../src/client/storage/writer.ts'
import { VirtualClock } from './virtual-clock.ts'

/** An inbox over memory storage whose change handler fails while `failing` says so. */
function inbox(clock: VirtualClock, state: { failing: boolean; calls: number; failures: number }): Inbox {
  return new Inbox(
    {
      writer: new StateWriter(new MemoryStorage()),
      clock,
      random: () => 0.5,
      onChanges: () => {
        state.calls++
        if (state.failing) throw new Error('the app could not take it')
      },
      persisted: () => {},
      applied: () => {},
      scopeApplied: () => {},
      handlerFailed: () => void state.failures++,
    },
    0,
    undefined,
  )
}

const change = (seq: number) => ({ collection: 'settings', id: `s${seq}`, seq, rev: seq, data: { value: seq }, updated_at: 1, device_id: 'd' })

t.test('a failing handler is retried after a pause until it takes the batch', async (t) => {
  const clock = new VirtualClock()
  const state = { failing: true, calls: 0, failures: 0 }
  const box = inbox(clock, state)
  box.acceptChanges({ from: 0, to: 1, items: [change(1)] as never }, 'socket')
  await clock.advance(0)
  t.equal(state.failures, 1, 'the first attempt failed')
  t.equal(clock.pending, 1, 'a retry waits on the clock')
  state.failing = false
  await clock.advance(60_000)
  await box.idle()
  t.equal(box.cursor, 1, 'the retry applied it')
  t.equal(clock.pending, 0, 'no timer left')
})

t.test('closed, it accepts nothing new and drops an item that keeps failing instead of retrying it forever', async (t) => {
  const clock = new VirtualClock()
  const state = { failing: true, calls: 0, failures: 0 }
  const box = inbox(clock, state)
  box.acceptChanges({ from: 0, to: 1, items: [change(1)] as never }, 'socket')
  await clock.advance(0)
  t.equal(clock.pending, 1, 'waiting to retry')
  box.close()
  await box.idle()
  t.equal(clock.pending, 0, 'the retry timer is gone: a stopped client keeps no timer')
  t.equal(box.cursor, 0, 'the cursor did not move past the batch it never applied')
  box.acceptChanges({ from: 1, to: 2, items: [change(2)] as never }, 'socket')
  await clock.advance(60_000)
  t.equal(state.calls, 1, 'nothing accepted after close reaches the handler')
  t.equal(box.pending, 0, 'nor waits in the queue')
})
