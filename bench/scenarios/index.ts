import { hubScenario } from './hub.ts'
import { relayScenario } from './relay.ts'
import type { Scenario } from './types.ts'

/** Every scenario `--only` can name. New ones (a Redis cluster, a Socket.IO peer) register here. */
export const SCENARIOS: Record<string, Scenario> = {
  relay: relayScenario,
  hub: hubScenario('uws'),
  'hub-ws': hubScenario('ws'),
}
