import { createServer } from 'node:net'
import t from 'tap'
import { startHub } from '../../src/hub.ts'
import { Closers } from '../../src/hub/closers.ts'
import { loadConfig } from '../../src/ops/config.ts'
import { createLogger } from '../../src/ops/logger.ts'
import { TRANSPORTS } from '../contracts/adapters.ts'
import { ManualClock } from '../helpers/manual-clock.ts'
import { migratedPglite } from '../helpers/pglite-template.ts'
import { TEST_SCRYPT } from '../helpers/scrypt.ts'

/**
 * startHub is a sequence of steps, each registering how to close what it built. What the
 * tests watch: the store they hand in (closed or not) and the hub's clock, whose timers (ack
 * flushes, maintenance, the rate limiter's sweep) are all cancelled once the hub is gone.
 */

t.test('closers run in reverse order, all of them even when one fails', async (t) => {
  const closed: string[] = []
  const closers = new Closers()
  closers.add({ close: () => void closed.push('database') })
  closers.add({
    close: async () => {
      closed.push('bus')
      throw new Error('the bus would not close')
    },
  })
  closers.add({ close: async () => void closed.push('sockets') })
  await t.rejects(closers.closeAll(), /the bus would not close/, 'the first failure is reported')
  t.same(closed, ['sockets', 'bus', 'database'], 'last built, first closed; a failure stops nothing')
  await closers.closeAll()
  t.equal(closed.length, 3, 'each closes once')
})

const config = (env: Record<string, string>) =>
  loadConfig({ HOST: '127.0.0.1', PORT: '0', SYNCHUB_SECRET: 'start-stop-secret-0123456789-abcdefghijkl', SYNCHUB_DATA_DIR: 'memory://', ...env })

for (const { name: transport } of TRANSPORTS) {
  t.test(`${transport}: a hub stopped releases everything its steps opened`, async (t) => {
    const clock = new ManualClock()
    const db = await migratedPglite()
    const hub = await startHub(config({ SYNCHUB_TRANSPORT: transport }), createLogger('silent'), { db, clock, passwordParams: TEST_SCRYPT })
    t.ok(clock.pending > 0, `the running hub has timers on its clock (${clock.pending})`)
    t.equal((await fetch(`${hub.url}/healthz`)).status, 200, 'and serves')
    await hub.stop('shutdown')
    t.equal(clock.pending, 0, 'stopped: every timer cancelled')
    await t.rejects(db.query('SELECT 1'), 'and the store closed')
    await t.rejects(fetch(`${hub.url}/healthz`), 'nothing listens any more')
  })

  t.test(`${transport}: a hub that cannot start releases what the steps before the failing one opened`, async (t) => {
    const taken = createServer()
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
    const port = (taken.address() as { port: number }).port
    const clock = new ManualClock()
    const db = await migratedPglite()
    await t.rejects(
      startHub(config({ SYNCHUB_TRANSPORT: transport, PORT: String(port) }), createLogger('silent'), { db, clock, passwordParams: TEST_SCRYPT }),
      'its port is taken: the start fails',
    )
    t.equal(clock.pending, 0, 'no timer of the steps that ran is left')
    await t.rejects(db.query('SELECT 1'), 'and the store it was handed is closed')
  })
}
