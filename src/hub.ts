import { isUtf8 } from 'node:buffer'
import type { Logger } from 'pino'
import { newPasswordProblem, type ScryptParams } from './auth/passwords.ts'
import { originPolicy } from './http/cors.ts'
import { authServiceFromConfig, type AuthService } from './auth/service.ts'
import type { Bus } from './bus/port.ts'
import { applyControl } from './cluster/control.ts'
import type { ClusterState } from './cluster/state.ts'
import { Closers } from './hub/closers.ts'
import { openDatabase, type Database } from './hub/database.ts'
import { startBus, startClusterState } from './hub/fan-out.ts'
import { buildHttp } from './hub/http.ts'
import { startMaintenance } from './hub/maintenance.ts'
import { startMetricsEndpoint } from './hub/metrics-port.ts'
import { startSockets } from './hub/sockets.ts'
import { startSync, type SyncCore } from './hub/sync.ts'
import type { Config } from './ops/config.ts'
import { drain } from './ops/drain.ts'
import { createMetrics, type Metrics } from './ops/metrics.ts'
import { AuthStore } from './store/auth-store.ts'
import type { SqlClient } from './store/sql-client.ts'
import type { SyncStore } from './store/sync-store.ts'
import type { SyncEngine } from './sync/engine.ts'
import { systemClock, type Clock } from './time/clock.ts'
import type { TransportServer } from './transport/connection.ts'
import { SessionRegistry } from './transport/session-registry.ts'

export interface Hub {
  url: string
  port: number
  nodeId: string
  transport: TransportServer['kind']
  /** Where /metrics is served when SYNCHUB_METRICS_PORT gives it a port of its own. */
  metricsPort?: number
  store: SyncStore
  engine: SyncEngine
  bus: Bus
  sessions: SessionRegistry
  metrics: Metrics
  /** Removes what outlived its time in the recycle bin as of `now` (also run every SYNCHUB_PURGE_INTERVAL_MS). */
  purge(now?: number): Promise<{ users: number; records: number }>
  /** Drops replay answers older than each device's latest SYNCHUB_REPLAY_WINDOW ops (also run with the purge). */
  pruneReplayAnswers(): Promise<{ devices: number; answers: number }>
  /**
   * `draining` (SIGTERM): readiness off, no new sockets, in-flight pushes commit and are acked,
   * every socket is told `bye` and reconnects elsewhere; then everything is released.
   * `shutdown`: the same without the pauses between batches of byes.
   */
  stop(reason?: 'draining' | 'shutdown'): Promise<void>
}

/** What a caller may hand the hub instead of letting it make its own (tests, embedding). */
export interface HubParts {
  /** An open store; the hub migrates it and closes it when it stops. */
  db?: SqlClient
  /** Time and timers for everything the hub schedules; the system clock by default. */
  clock?: Clock
  /**
   * The scrypt cost of new password hashes; DEFAULT_SCRYPT (passwords.ts) unless a test suite
   * lowers it, so the many accounts it makes do not each cost a full hash.
   */
  passwordParams?: ScryptParams
}

/**
 * Builds and starts one hub node from its configuration, one named step after another; each
 * step's closer is registered as it completes, and `stop` (or a step that fails) runs them in
 * reverse order.
 */
export async function startHub(config: Config, log: Logger, parts: HubParts = {}): Promise<Hub> {
  const clock = parts.clock ?? systemClock
  const closers = new Closers()
  try {
    const metrics = createMetrics()
    const database = closers.add(await openDatabase(config, log, parts.db))
    const { bus } = closers.add(await startBus(config, { metrics, log, clock }))
    const cluster = closers.add(startClusterState(config, clock))
    const auth = await startAuth(config, { database, cluster, clock, log, passwordParams: parts.passwordParams })
    const sync = closers.add(startSync(config, { database, bus, metrics, clock }))
    const sessions = followControl(bus, auth, new SessionRegistry(cluster.presence))
    watchLiveState(metrics, sync, sessions)
    let ready = false
    const origins = originPolicy(config.corsOrigins)
    const metricsEndpoint = closers.add(await startMetricsEndpoint(config, metrics))
    const app = buildHttp(config, { database, bus, cluster, auth, sync, metrics, log, clock, origins, metricsEndpoint, isReady: () => ready })
    const transport = closers.add(await startSockets(config, { app, auth, sync, sessions, metrics, log, origins, clock }))
    const maintenance = closers.add(startMaintenance(config, { database, feeds: sync.feeds, auth, metrics, log, clock }))
    ready = true
    const url = announce(config, log, { port: transport.port, transport: transport.kind, store: database.db.kind, bus: bus.kind })

    let stopping: Promise<void> | undefined
    const stop = (reason: 'draining' | 'shutdown' = 'draining') =>
      (stopping ??= (async () => {
        await drain(
          {
            markUnready: () => (ready = false),
            stopAccepting: () => transport.stopAccepting(),
            pushesSettled: () => sync.engine.settled(),
            sockets: () => sessions.all(),
          },
          log,
          { clock, ...(reason === 'shutdown' ? { batchGapMs: 0 } : {}) },
        )
        await closers.closeAll()
      })())

    return {
      url,
      port: transport.port,
      nodeId: config.nodeId,
      transport: transport.kind,
      metricsPort: metricsEndpoint.port,
      store: sync.store,
      engine: sync.engine,
      bus,
      sessions,
      metrics,
      purge: maintenance.purge,
      pruneReplayAnswers: maintenance.pruneReplayAnswers,
      stop,
    }
  } catch (err) {
    // A step failed (a port taken, Redis unreachable): release what the steps before it built.
    await closers.closeAll().catch(() => {})
    throw err
  }
}

/** The auth service over the database and the cluster's denylist; the configured admin is created or updated. */
async function startAuth(config: Config, deps: { database: Database; cluster: ClusterState; clock: Clock; log: Logger; passwordParams?: ScryptParams }): Promise<AuthService> {
  const auth = authServiceFromConfig(config, new AuthStore(deps.database.db), { denylist: deps.cluster.denylist, clock: deps.clock, passwordParams: deps.passwordParams })
  if (config.adminUsername && config.adminPassword) {
    // Refusing to start over it would lock an existing deployment out on upgrade: say it instead.
    const weak = await newPasswordProblem(config.adminPassword, { username: config.adminUsername })
    if (weak) deps.log.warn(`SYNCHUB_ADMIN_PASSWORD is weak: ${weak}; choose another`)
    await auth.upsertAdmin(config.adminUsername, config.adminPassword)
  }
  return auth
}

/** Control events from any node (a device revoked, a user disabled or reset, a scope changed) reach this node's sockets. */
function followControl(bus: Bus, auth: AuthService, sessions: SessionRegistry): SessionRegistry {
  bus.onControl((message) => applyControl(message, { forUser: (user) => sessions.forUser(user), forgetUser: (user) => auth.forgetUser(user) }))
  return sessions
}

/** The gauges read the node's live state at scrape time. */
function watchLiveState(metrics: Metrics, sync: SyncCore, sessions: SessionRegistry): void {
  metrics.watch({
    sockets: () => sessions.size,
    usersOnline: () => sessions.users,
    feeds: () => sync.feeds.users,
    pendingPushes: () => sync.engine.pending,
  })
}

/** Logs where the node listens and with what; returns its URL. */
function announce(config: Config, log: Logger, node: { port: number; transport: string; store: string; bus: string }): string {
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host
  const url = `http://${host}:${node.port}`
  log.info(
    { url, transport: node.transport, store: node.store, bus: node.bus, node: config.nodeId },
    `synchub listening on ${url} (transport ${node.transport}, store ${node.store}, bus ${node.bus})`,
  )
  return url
}
