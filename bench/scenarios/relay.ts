import { startServerProcess } from '../hub-process.ts'
import { freePort } from '../../scripts/free-port.ts'
import type { Scenario } from './types.ts'

/** The bare uWebSockets.js relay (bench/relay.ts): the ceiling of one Node process here. */
export const relayScenario: Scenario = {
  name: 'relay',
  description: 'bare uWebSockets.js pub/sub relay, stores nothing',
  async start(ctx) {
    const port = await freePort()
    const proc = await startServerProcess({
      name: 'relay',
      args: ['--import', 'tsx', 'bench/relay.ts'],
      env: { PORT: String(port), HOST: '127.0.0.1' },
      cwd: ctx.root,
      port,
    })
    return {
      wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
      // The relay trusts its token as the user id.
      tokens: Array.from({ length: ctx.users }, (_, i) => `user-${i}`),
      process: proc,
      stop: () => proc.stop(),
    }
  },
}
