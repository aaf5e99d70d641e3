import { Hono } from 'hono'
import { PullQuery, PushBody, ScopeBody } from '../../protocol/rest.ts'
import { HubError } from '../../protocol/errors.ts'
import type { Bus } from '../bus/port.ts'
import { parseOrThrow } from '../../protocol/validate.ts'
import type { AccessVerifier } from '../auth/principal.ts'
import type { SyncEngine, PullOutcome } from '../sync/engine.ts'
import type { Feeds } from '../sync/feed.ts'
import type { SyncStore } from '../store/sync-store.ts'
import { deviceIdOf, requireAuth, type HubEnv } from './env.ts'
import { readBody, reply } from './negotiate.ts'

export interface SyncRoutesDeps {
  verifier: AccessVerifier
  engine: SyncEngine
  store: SyncStore
  feeds: Feeds
  bus: Bus
  maxBodyBytes: number
}

/** The change stream over REST: the same engine and the same commit notifications as sockets. */
export function syncRoutes(deps: SyncRoutesDeps): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  app.use('/v1/sync/*', requireAuth(deps.verifier))

  app.get('/v1/sync/pull', async (c) => {
    const q = parseOrThrow(PullQuery, c.req.query(), 'query')
    const userId = c.get('principal').userId
    const read = () => deps.engine.pull(userId, q)
    let page = await read()
    if (q.wait > 0 && isEmpty(page)) page = await longPoll(deps.feeds, userId, q.since, q.wait * 1000, read, c.req.raw.signal)
    return reply(c, page)
  })

  app.post('/v1/sync/push', async (c) => {
    const deviceId = deviceIdOf(c)
    const body = await readBody(c, PushBody, { maxBytes: deps.maxBodyBytes })
    const outcome = await deps.engine.push(c.get('principal').userId, deviceId, body.ops)
    return reply(c, outcome)
  })

  app.get('/v1/sync/status', async (c) => {
    const userId = c.get('principal').userId
    const [state, status] = await Promise.all([deps.store.userState(userId), deps.store.status(userId)])
    return reply(c, { cursor: state?.seq ?? 0, epoch: state?.epoch ?? '', ...status })
  })

  app.get('/v1/sync/scope', async (c) => {
    const state = await deps.store.userState(c.get('principal').userId)
    return reply(c, { scope: state?.scope ?? deps.engine.registry.scopeKeys() })
  })

  /** One list for all the user's devices: every subscribed socket, on any node, is re-filtered. */
  app.put('/v1/sync/scope', async (c) => {
    const userId = c.get('principal').userId
    const body = await readBody(c, ScopeBody, { maxBytes: 64 * 1024 })
    const known = deps.engine.registry.scopeKeys()
    const unknown = body.scope.filter((k) => !known.includes(k))
    if (unknown.length > 0) throw new HubError('invalid', `scope: unknown keys ${unknown.join(', ')} (known: ${known.join(', ')})`)
    const scope = [...new Set(body.scope)]
    await deps.store.setScope(userId, scope)
    deps.bus.publishControl({ type: 'scope_changed', user: userId, scope })
    return reply(c, { scope })
  })

  return app
}

const isEmpty = (page: PullOutcome) => 'items' in page && page.items.length === 0

/**
 * Waits for a commit past `since`, then reads again. The waiter attaches to the user's feed
 * before re-reading, so a commit between the first read and the attach is not missed.
 */
async function longPoll(
  feeds: Feeds,
  userId: string,
  since: number,
  waitMs: number,
  read: () => Promise<PullOutcome>,
  signal: AbortSignal,
): Promise<PullOutcome> {
  let wake!: () => void
  const woken = new Promise<void>((resolve) => (wake = resolve))
  const detach = feeds.attach(userId, { onBatch: (b) => b.to > since && wake() })
  const timer = setTimeout(wake, waitMs)
  signal.addEventListener('abort', wake, { once: true })
  try {
    await feeds.ready()
    const again = await read()
    if (!isEmpty(again)) return again
    await woken
    return await read()
  } finally {
    clearTimeout(timer)
    detach()
  }
}
