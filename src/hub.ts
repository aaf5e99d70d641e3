import type { Logger } from 'pino'
import type { Config } from './ops/config.ts'
import { createMetrics, type Metrics } from './ops/metrics.ts'
import { drain } from './ops/drain.ts'
import { openStore } from './store/open.ts'
import { migrate } from './store/migrate.ts'
import type { SqlClient } from './store/sql-client.ts'
import { SyncStore } from './store/sync-store.ts'
import { DeviceStore } from './store/device-store.ts'
import { BrowseStore } from './store/browse-store.ts'
import { createMemoryBus } from './bus/memory.ts'
import { createRedisBus } from './bus/redis.ts'
import type { Bus } from './bus/port.ts'
import { createClusterState } from './cluster/state.ts'
import { applyControl } from './cluster/control.ts'
import { authServiceFromConfig } from './auth/service.ts'
import { SyncEngine } from './sync/engine.ts'
import { registryWith } from './sync/collections.ts'
import { Feeds } from './sync/feed.ts'
import { EngineChangeSource } from './sync/engine-change-source.ts'
import { AckRecorder } from './sync/ack-recorder.ts'
import { configureRecordCodec } from './sync/record-codec.ts'
import { KeyBox } from './crypto/key-box.ts'
import { purgeExpired } from './sync/purge.ts'
import { pruneReplayAnswers } from './sync/replay-window.ts'
import { Session, type SessionDeps } from './transport/session.ts'
import type { SessionClock } from './transport/session-clock.ts'
import { LiveFrames } from './transport/live-frames.ts'
import { SessionRegistry } from './transport/session-registry.ts'
import { startTransport } from './transport/start.ts'
import type { TransportServer } from './transport/connection.ts'
import { buildApp } from './http/app.ts'
import { syncRoutes } from './http/sync-routes.ts'
import { authRoutes } from './http/auth-routes.ts'
import { adminRoutes } from './http/admin-routes.ts'
import { deviceRoutes } from './http/device-routes.ts'
import { browseRoutes } from './http/browse-routes.ts'
import { backupRoutes } from './http/backup-routes.ts'

export interface Hub {
  url: string
  port: number
  nodeId: string
  transport: TransportServer['kind']
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

/** Frames above the configured limit get `too_large` and the socket lives; far larger ones are cut by the server. */
const HARD_FRAME_FACTOR = 4
/** A REST push may carry what several socket frames would (bots pushing large batches). */
const REST_BODY_FACTOR = 8
const AUTH_BODY_BYTES = 64 * 1024

/** Builds and starts one hub node from its configuration. */
export async function startHub(config: Config, log: Logger, opened: { db?: SqlClient; sessionClock?: SessionClock } = {}): Promise<Hub> {
  const db = opened.db ?? (await openStore(config))
  const applied = await migrate(db)
  if (applied.length > 0) log.info({ applied }, 'migrations applied')

  // Live-state gauges read the objects below at scrape time.
  let sessions!: SessionRegistry
  let feeds!: Feeds
  let engine!: SyncEngine
  const metrics = createMetrics({
    sockets: () => sessions.size,
    usersOnline: () => sessions.users,
    feeds: () => feeds.users,
    pendingPushes: () => engine.pending,
  })

  const bus: Bus = config.redisUrl
    ? createRedisBus({
        url: config.redisUrl,
        nodeId: config.nodeId,
        prefix: config.redisPrefix,
        sharded: config.redisSharded,
        dropRate: config.faultDropPublish,
        onReconnect: () => {
          metrics.redisReconnects.inc()
          log.warn('redis reconnected: checking every live feed against the database')
        },
        onRemoteBatch: (ms) => metrics.deliverSeconds.observe(Math.max(0, ms) / 1000),
      })
    : createMemoryBus()
  if (config.faultDropPublish > 0) log.warn({ share: config.faultDropPublish }, 'fault injection: dropping a share of Redis publishes')
  await withDeadline(bus.ready(), 10_000, 'the bus (Redis) did not become ready within 10 s')
  const cluster = createClusterState({ redisUrl: config.redisUrl, nodeId: config.nodeId, prefix: config.redisPrefix })

  const lanes = db.kind === 'pglite' ? 1 : config.commitLanes
  // One connection per lane, apart from the pool: no burst of reads (devices catching up after
  // a node died, exports, REST pulls) can make a commit wait for a connection.
  const commitDb = db.reserved(lanes)
  const store = new SyncStore(db, commitDb)
  const auth = authServiceFromConfig(config, db, {
    denylist: cluster.denylist,
    onUserDisabled: (user: string) => bus.publishControl({ type: 'user_disabled', user }),
  })
  if (config.adminUsername && config.adminPassword) await auth.upsertAdmin(config.adminUsername, config.adminPassword)

  const limits = { maxFrameBytes: config.maxFrameBytes, maxOpsPerPush: config.maxOpsPerPush, maxRecordBytes: config.maxRecordBytes }
  engine = new SyncEngine({
    store,
    bus,
    registry: registryWith(config.collections),
    maxOpsPerPush: limits.maxOpsPerPush,
    maxRecordBytes: limits.maxRecordBytes,
    trashRetentionMs: config.trashRetentionMs,
    lanes,
    commitDelayMs: config.commitDelayMs,
    onBatch: ({ pushes, ops, ms }) => {
      metrics.commits.inc()
      metrics.pushes.inc(pushes)
      metrics.ops.inc(ops)
      metrics.commitSeconds.observe(ms / 1000)
    },
  })
  configureRecordCodec(new KeyBox(config.secret, config.previousSecret), engine.registry)
  feeds = new Feeds({ bus, store, onGapFill: (cause) => metrics.gapFills.inc({ cause }) })
  sessions = new SessionRegistry(cluster.presence)
  const acks = new AckRecorder(store)
  bus.onControl((message) => applyControl(message, sessions, (user) => auth.forgetUser(user)))

  let ready = false
  const app = buildApp({
    log,
    isReady: () => ready,
    metrics: metrics.registry,
    onResponse: (method, status) => metrics.httpRequests.inc({ method, status }),
    routes: [
      authRoutes(auth, {
        maxBodyBytes: AUTH_BODY_BYTES,
        rateLimit: { limiter: cluster.rateLimiter, perIp: config.authRatePerIp, perUser: config.authRatePerUser, trustProxy: config.trustProxy },
      }),
      adminRoutes(auth, { maxBodyBytes: AUTH_BODY_BYTES }),
      syncRoutes({ verifier: auth, engine, store, feeds, bus, maxBodyBytes: limits.maxFrameBytes * REST_BODY_FACTOR }),
      deviceRoutes({ verifier: auth, devices: new DeviceStore(db), presence: cluster.presence, bus }),
      browseRoutes({ verifier: auth, browse: new BrowseStore(db) }),
      backupRoutes({
        verifier: auth,
        db,
        registry: engine.registry,
        bus,
        maxRecordBytes: limits.maxRecordBytes,
        maxImportBytes: config.maxImportBytes,
        trashRetentionMs: config.trashRetentionMs,
        onRecords: (direction, n) => metrics.backupRecords.inc({ direction }, n),
        onInternalError: (err) => log.error({ err }, 'import failed'),
      }),
    ],
  })
  const sessionDeps: SessionDeps = {
    nodeId: config.nodeId,
    limits,
    authTimeoutMs: config.authTimeoutMs,
    sendBufferBytes: config.sendBufferBytes,
    backlogPageSize: 1000,
    verifier: auth,
    engine,
    changes: new EngineChangeSource(engine, feeds),
    liveFrames: new LiveFrames(limits.maxFrameBytes),
    registry: sessions,
    acks,
    log,
    badFrameLimit: config.badFrameLimit,
    clock: opened.sessionClock,
    hooks: {
      badFrame: (code) => metrics.badFrames.inc({ code }),
      bye: (reason) => metrics.byes.inc({ reason }),
      delivered: (frames) => metrics.framesSent.inc(frames),
    },
  }
  const transport = await startTransport(
    config.transport,
    {
      host: config.host,
      port: config.port,
      wsPath: '/v1/ws',
      maxPayloadBytes: limits.maxFrameBytes * HARD_FRAME_FACTOR,
      idleTimeoutSec: config.idleTimeoutSec,
      fetch: (req, info) => app.fetch(req, info),
      sockets: { open: (conn) => new Session(conn, sessionDeps) },
    },
    (msg) => log.warn(msg),
  )
  const positionCheck = setInterval(() => void feeds.checkAll(), config.positionCheckMs)
  positionCheck.unref()
  const purge = async (now = Date.now()) => {
    const purged = await purgeExpired(db, now)
    metrics.pruned.inc({ what: 'records' }, purged.records)
    return purged
  }
  const pruneAnswers = async () => {
    const pruned = await pruneReplayAnswers(db, config.replayWindow)
    metrics.pruned.inc({ what: 'replay_answers' }, pruned.answers)
    return pruned
  }
  const purgeTimer = setInterval(
    // One after the other, each failing on its own: a failed purge does not keep the prune from running.
    () => void purge()
      .then((r) => r.records > 0 && log.info(r, 'purged expired records from the recycle bin'), (err) => log.warn({ err }, 'purge failed'))
      .then(pruneAnswers)
      .then((r) => r.answers > 0 && log.info(r, 'dropped replay answers past the replay window'), (err) => log.warn({ err }, 'replay answer prune failed')),
    config.purgeIntervalMs,
  )
  purgeTimer.unref()
  // Every refresh adds a row; expired and revoked ones are only history.
  const tokenPrune = setInterval(() => void auth.pruneRefreshTokens().catch((err) => log.warn({ err }, 'refresh token prune failed')), 3600_000)
  tokenPrune.unref()
  ready = true
  const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host
  const url = `http://${host}:${transport.port}`
  log.info(
    { url, transport: transport.kind, store: db.kind, bus: bus.kind, node: config.nodeId },
    `synchub listening on ${url} (transport ${transport.kind}, store ${db.kind}, bus ${bus.kind})`,
  )

  let stopping: Promise<void> | undefined
  const stop = (reason: 'draining' | 'shutdown' = 'draining') =>
    (stopping ??= (async () => {
      await drain(
        {
          markUnready: () => (ready = false),
          stopAccepting: () => transport.stopAccepting(),
          pushesSettled: () => engine.settled(),
          sessions: () => sessions.all(),
        },
        log,
        reason === 'shutdown' ? { batchGapMs: 0 } : {},
      )
      clearInterval(positionCheck)
      clearInterval(tokenPrune)
      clearInterval(purgeTimer)
      await acks.stop()
      feeds.close()
      await transport.close()
      await cluster.close()
      await bus.close()
      await commitDb.close()
      await db.close()
    })())

  return { url, port: transport.port, nodeId: config.nodeId, transport: transport.kind, store, engine, bus, sessions, metrics, purge, pruneReplayAnswers: pruneAnswers, stop }
}

/** Rejects with `message` when `promise` takes longer than `ms`. */
function withDeadline<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
  ])
}
