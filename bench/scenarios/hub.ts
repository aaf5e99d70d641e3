import { startHubNodes } from './hub-nodes.ts'
import type { Scenario } from './types.ts'

/** synchub itself (`node bin/synchub.js serve`) on a fresh Postgres schema, with one socket transport. */
export function hubScenario(transport: 'uws' | 'ws'): Scenario {
  return {
    name: transport === 'uws' ? 'hub' : `hub-${transport}`,
    description: `synchub serve, Postgres, in-process bus, SYNCHUB_TRANSPORT=${transport}`,
    start: (ctx) => startHubNodes(ctx, [{ SYNCHUB_TRANSPORT: transport }]),
  }
}
