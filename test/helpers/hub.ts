import { randomUUID } from 'node:crypto'
import type { Logger } from 'pino'
import type { Test } from 'tap'
import { startHub, type Hub } from '../../src/hub.ts'
import { systemClock, type Clock } from '../../src/time/clock.ts'
import { loadConfig } from '../../src/ops/config.ts'
import { createLogger } from '../../src/ops/logger.ts'
import { SyncClient, type ConnectOptions } from '../../src/client/socket-client.ts'
import { RestClient } from '../../src/client/rest-client.ts'
import { freshPostgresSchema, postgresAvailable } from './services.ts'
import { waitUntil } from './wait.ts'
import { STORES, TRANSPORTS } from '../contracts/adapters.ts'
import { ManualClock } from './manual-clock.ts'
import { migratedPglite } from './pglite-template.ts'
import { TEST_SCRYPT } from './scrypt.ts'

export { waitUntil }

export interface HubVariant {
  name: string
  store: 'postgres' | 'pglite'
  transport: 'uws' | 'ws'
}

/** Every suite that talks to a hub runs against each store and each transport (the lists in test/contracts/adapters.ts). */
export const HUB_VARIANTS: HubVariant[] = STORES.flatMap((store) =>
  TRANSPORTS.map((transport) => ({ name: `${store.name}+${transport.name}`, store: store.name as HubVariant['store'], transport: transport.name })),
)

export interface TestUser {
  id: string
  username: string
  password: string
  token: string
  /** REST client authenticated as this user, writing as device `rest-device`. */
  rest: RestClient
  connect(deviceId?: string, opts?: Partial<ConnectOptions>): Promise<SyncClient>
}

export interface TestHub {
  hub: Hub
  variant: HubVariant
  /** The hub's clock: a ManualClock when the suite asked for one (`{ clock: 'manual' }`), the system clock otherwise. */
  clock: Clock
  url: string
  wsUrl: string
  newUser(): Promise<TestUser>
  /** A REST client logged in as the admin the hub was configured with. */
  admin(username: string, password: string): Promise<RestClient>
  stop(): Promise<void>
}


export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnop'


export async function startTestHub(variant: HubVariant, env: Record<string, string> = {}, opts: { clock?: Clock; log?: Logger } = {}): Promise<TestHub> {
  // A DATABASE_URL in env joins an existing database (several nodes of one cluster).
  const pgSchema = variant.store === 'postgres' && !env.DATABASE_URL ? await freshPostgresSchema() : undefined
  const config = loadConfig({
    HOST: '127.0.0.1',
    PORT: '0',
    SYNCHUB_SECRET: TEST_SECRET,
    SYNCHUB_REGISTRATION: 'open',
    SYNCHUB_TRANSPORT: variant.transport,
    // Suites register many users from one address; the limits have a test of their own.
    SYNCHUB_AUTH_RATE_IP: '100000',
    SYNCHUB_AUTH_RATE_USER: '1000',
    ...(pgSchema ? { DATABASE_URL: pgSchema.url } : { SYNCHUB_DATA_DIR: 'memory://' }),
    ...env,
  })
  const db = variant.store === 'pglite' ? await migratedPglite() : undefined
  const hub = await startHub(config, opts.log ?? createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'), { db, clock: opts.clock, passwordParams: TEST_SCRYPT })
  const wsUrl = hub.url.replace(/^http/, 'ws') + '/v1/ws'
  const clients = new Set<SyncClient>()
  let n = 0
  const testHub: TestHub = {
    hub,
    variant,
    clock: opts.clock ?? systemClock,
    url: hub.url,
    wsUrl,
    async newUser() {
      const username = `user${++n}_${Math.random().toString(36).slice(2, 7)}`
      const password = 'correct horse battery'
      const rest = new RestClient(hub.url, undefined, 'rest-device')
      const { user } = await rest.register(username, password)
      const tokens = await rest.login(username, password)
      return {
        id: user.id,
        username,
        password,
        token: tokens.access_token,
        rest,
        async connect(deviceId = randomUUID(), opts = {}) {
          const client = await SyncClient.connect(wsUrl, { token: tokens.access_token, device: { id: deviceId }, ...opts })
          clients.add(client)
          return client
        },
      }
    },
    async admin(username, password) {
      const rest = new RestClient(hub.url)
      await rest.login(username, password)
      return rest
    },
    async stop() {
      for (const c of clients) c.kill()
      await hub.stop('shutdown')
      await pgSchema?.drop()
    },
  }
  return testHub
}

/**
 * Runs `fn` as a subtest per hub variant, each on a fresh hub. Postgres variants skip (never
 * under CI) when it is down. `clock: 'manual'` gives each hub a ManualClock (`h.clock`, moved
 * with `advance`): its timers (purge, position check, long-poll waits…) fire only when moved.
 */
export function eachHub(
  t: Test,
  fn: (t: Test, h: TestHub & { clock: ManualClock }) => Promise<void>,
  opts: { env?: Record<string, string>; variants?: HubVariant[]; clock: 'manual' },
): void
export function eachHub(t: Test, fn: (t: Test, h: TestHub) => Promise<void>, opts?: { env?: Record<string, string>; variants?: HubVariant[]; clock?: 'system' }): void
export function eachHub(t: Test, fn: (t: Test, h: any) => Promise<void>, opts: { env?: Record<string, string>; variants?: HubVariant[]; clock?: 'manual' | 'system' } = {}): void {
  for (const variant of opts.variants ?? HUB_VARIANTS) {
    t.test(variant.name, async (t) => {
      if (variant.store === 'postgres' && !(await postgresAvailable())) return void t.skip('Postgres is not running (set it up, or CI=true to make this a failure)', () => {})
      // Manual time starts at the real now: tokens it signs stay valid for the sockets' own timers.
      const h = await startTestHub(variant, opts.env, opts.clock === 'manual' ? { clock: new ManualClock(Date.now()) } : {})
      t.teardown(() => h.stop())
      await fn(t, h)
    })
  }
}

/** Collects every change a client receives, in arrival order. */
export function collect(client: SyncClient): { frames: any[]; seqs: () => number[]; gaps: any[]; waitFor(pred: () => boolean, ms?: number): Promise<void> } {
  const frames: any[] = []
  const gaps: any[] = []
  client.on('changes', (f) => frames.push(f))
  client.on('gap', (g) => gaps.push(g))
  return {
    frames,
    gaps,
    seqs: () => frames.flatMap((f) => f.items.map((i: any) => i.seq)),
    waitFor: (pred, ms = 5000) => waitUntil(pred, ms),
  }
}

export { messagePut } from './ops.ts'
