import { startHubNodes } from './hub-nodes.ts'
import type { Scenario } from './types.ts'

/**
 * The `hub` scenario's server (uWebSockets.js, Postgres) with every device driven through the
 * client SDK: run beside `hub` (`--only hub,sdk`), the same rates give the SDK's overhead.
 */
export const sdkScenario: Scenario = {
  name: 'sdk',
  description: 'synchub serve (uws, Postgres), devices through the client SDK (SyncClient, memory storage)',
  start: async (ctx) => ({ ...(await startHubNodes(ctx, [{ SYNCHUB_TRANSPORT: 'uws' }])), client: 'sdk' }),
}
