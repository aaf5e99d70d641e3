import type { Hono } from 'hono'
import type { Logger } from 'pino'
import type { AuthService } from '../auth/service.ts'
import type { OriginPolicy } from '../http/cors.ts'
import type { HubEnv } from '../http/env.ts'
import type { Config } from '../ops/config.ts'
import type { Metrics } from '../ops/metrics.ts'
import type { TransportServer } from '../transport/connection.ts'
import { Session, type SessionDeps } from '../transport/session.ts'
import type { SessionRegistry } from '../transport/session-registry.ts'
import { startTransport } from '../transport/start.ts'
import { LiveFrames } from '../transport/live-frames.ts'
import { EngineChangeSource } from '../sync/engine-change-source.ts'
import type { Clock } from '../time/clock.ts'
import type { SyncCore } from './sync.ts'

/** Frames above the configured limit get `too_large` and the socket lives; far larger ones are cut by the server. */
const HARD_FRAME_FACTOR = 4
const BACKLOG_PAGE_ROWS = 1000

/** The socket server on the configured port: `/v1/ws` sockets become sessions, every other path goes to the REST app. */
export async function startSockets(
  config: Config,
  deps: { app: Hono<HubEnv>; auth: AuthService; sync: SyncCore; sessions: SessionRegistry; metrics: Metrics; log: Logger; origins: OriginPolicy; clock: Clock },
): Promise<TransportServer> {
  const { app, auth, sync, sessions, metrics, log } = deps
  const limits = { maxFrameBytes: config.maxFrameBytes, maxOpsPerPush: config.maxOpsPerPush, maxRecordBytes: config.maxRecordBytes }
  const sessionDeps: SessionDeps = {
    nodeId: config.nodeId,
    limits,
    authTimeoutMs: config.authTimeoutMs,
    sendBufferBytes: config.sendBufferBytes,
    backlogPageSize: BACKLOG_PAGE_ROWS,
    verifier: auth,
    engine: sync.engine,
    changes: new EngineChangeSource(sync.engine, sync.feeds),
    liveFrames: new LiveFrames(limits.maxFrameBytes),
    registry: sessions,
    acks: sync.acks,
    log,
    badFrameLimit: config.badFrameLimit,
    clock: deps.clock,
    hooks: {
      badFrame: (code) => metrics.badFrames.inc({ code }),
      bye: (reason) => metrics.byes.inc({ reason }),
      delivered: (frames) => metrics.framesSent.inc(frames),
    },
  }
  return startTransport(
    config.transport,
    {
      host: config.host,
      port: config.port,
      wsPath: '/v1/ws',
      maxPayloadBytes: limits.maxFrameBytes * HARD_FRAME_FACTOR,
      idleTimeoutSec: config.idleTimeoutSec,
      fetch: (req, info) => app.fetch(req, info),
      sockets: { open: (conn) => new Session(conn, sessionDeps) },
      upgradeAllowed: (origin, host) => deps.origins.upgradeAllowed(origin, host),
    },
    (msg) => log.warn(msg),
  )
}
