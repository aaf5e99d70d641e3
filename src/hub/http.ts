import type { Hono } from 'hono'
import type { Logger } from 'pino'
import { LoginThrottle } from '../auth/login-throttle.ts'
import type { AuthService } from '../auth/service.ts'
import type { Bus } from '../bus/port.ts'
import type { ClusterState } from '../cluster/state.ts'
import { adminRoutes } from '../http/admin-routes.ts'
import { buildApp } from '../http/app.ts'
import { authRoutes } from '../http/auth-routes.ts'
import { backupRoutes } from '../http/backup-routes.ts'
import { browseRoutes } from '../http/browse-routes.ts'
import { deviceRoutes } from '../http/device-routes.ts'
import type { OriginPolicy } from '../http/cors.ts'
import type { HubEnv } from '../http/env.ts'
import { syncRoutes } from '../http/sync-routes.ts'
import type { Config } from '../ops/config.ts'
import type { Metrics } from '../ops/metrics.ts'
import { BackupStore } from '../store/backup-store.ts'
import { BrowseStore } from '../store/browse-store.ts'
import { DeviceStore } from '../store/device-store.ts'
import { Backups } from '../sync/backups.ts'
import { Browse } from '../sync/browse.ts'
import { Devices } from '../sync/devices.ts'
import { Puller } from '../sync/long-poll.ts'
import { ScopeSettings } from '../sync/scope.ts'
import { streamStatus } from '../sync/stream-status.ts'
import { UserAdmin } from '../sync/user-admin.ts'
import type { Clock } from '../time/clock.ts'
import type { Database } from './database.ts'
import type { MetricsEndpoint } from './metrics-port.ts'
import type { SyncCore } from './sync.ts'

/** A REST push may carry what several socket frames would (bots pushing large batches). */
const REST_BODY_FACTOR = 8
const AUTH_BODY_BYTES = 64 * 1024

export interface HttpDeps {
  database: Database
  bus: Bus
  cluster: ClusterState
  auth: AuthService
  sync: SyncCore
  metrics: Metrics
  log: Logger
  clock: Clock
  /** Browser origins allowed to call the API. */
  origins: OriginPolicy
  /** Served by the app unless it has a port of its own. */
  metricsEndpoint: MetricsEndpoint
  /** Readiness: false while starting and once draining. */
  isReady(): boolean
}

/** The REST surface: each route module over the use cases it translates to. */
export function buildHttp(config: Config, deps: HttpDeps): Hono<HubEnv> {
  const { database, bus, cluster, auth, sync, metrics, log, clock } = deps
  const throttle = new LoginThrottle({ limiter: cluster.rateLimiter, perIp: config.authRatePerIp, perUser: config.authRatePerUser })
  const backups = new Backups({
    store: new BackupStore(database.db),
    codec: sync.codec,
    bus,
    limits: { maxRecordBytes: config.maxRecordBytes, maxImportBytes: config.maxImportBytes, trashRetentionMs: config.trashRetentionMs },
    onRecords: (direction, n) => metrics.backupRecords.inc({ direction }, n),
  })
  return buildApp({
    log,
    isReady: deps.isReady,
    ...(deps.metricsEndpoint.port === undefined ? { metrics: deps.metricsEndpoint.options } : {}),
    origins: deps.origins,
    onResponse: (method, status) => metrics.httpRequests.inc({ method, status }),
    routes: [
      authRoutes(auth, { maxBodyBytes: AUTH_BODY_BYTES, rateLimit: { throttle, trustProxy: config.trustProxy } }),
      adminRoutes(auth, new UserAdmin({ auth, bus }), { maxBodyBytes: AUTH_BODY_BYTES }),
      syncRoutes({
        verifier: auth,
        engine: sync.engine,
        puller: new Puller({ engine: sync.engine, feeds: sync.feeds, clock }),
        scopes: new ScopeSettings({ store: sync.store, registry: sync.codec.registry, bus }),
        status: (userId) => streamStatus(sync.store, userId),
        maxBodyBytes: config.maxFrameBytes * REST_BODY_FACTOR,
      }),
      deviceRoutes({ verifier: auth, devices: new Devices({ store: new DeviceStore(database.db), presence: cluster.presence, bus, clock }) }),
      browseRoutes({ verifier: auth, browse: new Browse({ store: new BrowseStore(database.db), codec: sync.codec }) }),
      backupRoutes({ verifier: auth, backups, maxImportBytes: config.maxImportBytes, clock, onInternalError: (err) => log.error({ err }, 'import failed') }),
    ],
  })
}
