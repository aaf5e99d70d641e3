import { clusterScenario } from './cluster.ts'
import { hubScenario } from './hub.ts'
import { relayScenario } from './relay.ts'
import { sdkScenario } from './sdk.ts'
import { socketioScenario } from './socketio.ts'
import type { Scenario } from './types.ts'

/** Every scenario `--only` can name. */
export const SCENARIOS: Record<string, Scenario> = {
  relay: relayScenario,
  hub: hubScenario('uws'),
  'hub-ws': hubScenario('ws'),
  cluster: clusterScenario,
  socketio: socketioScenario,
  sdk: sdkScenario,
}
