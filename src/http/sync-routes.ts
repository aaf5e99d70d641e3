import { Hono } from 'hono'
import { PullQuery, PushBody, ScopeBody } from '../../protocol/rest.ts'
import { parseOrThrow } from '../../protocol/validate.ts'
import type { AccessVerifier } from '../auth/principal.ts'
import type { SyncEngine } from '../sync/engine.ts'
import type { Puller } from '../sync/long-poll.ts'
import type { ScopeSettings } from '../sync/scope.ts'
import type { StreamStatus } from '../sync/stream-status.ts'
import { deviceIdOf, requireAuth, type HubEnv } from './env.ts'
import { readBody, reply } from './negotiate.ts'

export interface SyncRoutesDeps {
  verifier: AccessVerifier
  engine: Pick<SyncEngine, 'push'>
  puller: Puller
  scopes: ScopeSettings
  status(userId: string): Promise<StreamStatus>
  maxBodyBytes: number
}

const SCOPE_BODY_BYTES = 64 * 1024

/** The change stream over REST: the same engine and the same commit notifications as sockets. */
export function syncRoutes(deps: SyncRoutesDeps): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  app.use('/v1/sync/*', requireAuth(deps.verifier))

  app.get('/v1/sync/pull', async (c) => {
    const q = parseOrThrow(PullQuery, c.req.query(), 'query')
    return reply(c, await deps.puller.pull(c.get('principal').userId, q, c.req.raw.signal))
  })

  app.post('/v1/sync/push', async (c) => {
    const deviceId = deviceIdOf(c)
    const body = await readBody(c, PushBody, { maxBytes: deps.maxBodyBytes })
    return reply(c, await deps.engine.push(c.get('principal').userId, deviceId, body.ops))
  })

  app.get('/v1/sync/status', async (c) => reply(c, await deps.status(c.get('principal').userId)))

  app.get('/v1/sync/scope', async (c) => reply(c, { scope: await deps.scopes.get(c.get('principal').userId) }))

  /** One list for all the user's devices: every subscribed socket, on any node, is re-filtered. */
  app.put('/v1/sync/scope', async (c) => {
    const body = await readBody(c, ScopeBody, { maxBytes: SCOPE_BODY_BYTES })
    return reply(c, { scope: await deps.scopes.set(c.get('principal').userId, body.scope) })
  })

  return app
}
