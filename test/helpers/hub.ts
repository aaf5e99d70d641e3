import { randomUUID } from 'node:crypto'
import type { Test } from 'tap'
import { startHub, type Hub } from '../../src/hub.ts'
import { loadConfig } from '../../src/ops/config.ts'
import { createLogger } from '../../src/ops/logger.ts'
import { SyncClient, type ConnectOptions } from '../../src/client/socket-client.ts'
import { RestClient } from '../../src/client/rest-client.ts'
import { freshPostgresSchema, postgresAvailable } from './services.ts'
import { waitUntil } from './wait.ts'
import { createPgliteClient } from '../../src/store/pglite.ts'
import { migrate } from '../../src/store/migrate.ts'
import type { SessionClock } from '../../src/transport/session-clock.ts'

export { waitUntil }

export interface HubVariant {
  name: string
  store: 'postgres' | 'pglite'
  transport: 'uws' | 'ws'
}

/** Every suite that talks to a hub runs against each store and each transport. */
export const HUB_VARIANTS: HubVariant[] = [
  { name: 'postgres+uws', store: 'postgres', transport: 'uws' },
  { name: 'postgres+ws', store: 'postgres', transport: 'ws' },
  { name: 'pglite+uws', store: 'pglite', transport: 'uws' },
  { name: 'pglite+ws', store: 'pglite', transport: 'ws' },
]

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
  url: string
  wsUrl: string
  newUser(): Promise<TestUser>
  /** A REST client logged in as the admin the hub was configured with. */
  admin(username: string, password: string): Promise<RestClient>
  stop(): Promise<void>
}

let template: Promise<Blob> | undefined
/** A migrated, empty PGlite data directory, made once per test process: each hub loads a copy. */
function pgliteTemplate(): Promise<Blob> {
  return (template ??= (async () => {
    const db = await createPgliteClient()
    await migrate(db)
    const blob = await db.dump()
    await db.close()
    return blob
  })())
}

export const TEST_SECRET = 'test-secret-0123456789-abcdefghijklmnop'

/** `hubOptions`: what startHub takes besides the config (a session clock a test moves by hand). */
export async function startTestHub(variant: HubVariant, env: Record<string, string> = {}, hubOptions: { sessionClock?: SessionClock } = {}): Promise<TestHub> {
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
  const db = variant.store === 'pglite' ? await createPgliteClient(undefined, { template: await pgliteTemplate() }) : undefined
  const hub = await startHub(config, createLogger(process.env.TEST_LOG_LEVEL ?? 'silent'), { db, ...hubOptions })
  const wsUrl = hub.url.replace(/^http/, 'ws') + '/v1/ws'
  const clients = new Set<SyncClient>()
  let n = 0
  const testHub: TestHub = {
    hub,
    variant,
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

/** Runs `fn` as a subtest per hub variant, each on a fresh hub. Postgres variants skip (never under CI) when it is down. */
export function eachHub(t: Test, fn: (t: Test, h: TestHub) => Promise<void>, opts: { env?: Record<string, string>; variants?: HubVariant[] } = {}): void {
  for (const variant of opts.variants ?? HUB_VARIANTS) {
    t.test(variant.name, async (t) => {
      if (variant.store === 'postgres' && !(await postgresAvailable())) return void t.skip('Postgres is not running (set it up, or CI=true to make this a failure)', () => {})
      const h = await startTestHub(variant, opts.env)
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
