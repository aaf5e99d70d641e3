import { createHash, timingSafeEqual } from 'node:crypto'
import { Hono } from 'hono'
import type { Registry } from 'prom-client'
import { HubError } from '../../protocol/errors.ts'
import type { HubEnv } from './env.ts'
import { replyError } from './negotiate.ts'
import { securityHeaders } from './security-headers.ts'

export interface MetricsRoutesOptions {
  registry: Registry
  /** When set, /metrics needs `Authorization: Bearer <this>` (SYNCHUB_METRICS_TOKEN). */
  token?: string
}

/** `GET /metrics` in the Prometheus text format, on the hub's port or a port of its own. */
export function metricsRoutes(opts: MetricsRoutesOptions): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  app.get('/metrics', async (c) => {
    if (opts.token !== undefined && !bearerMatches(c.req.header('authorization'), opts.token)) {
      const res = replyError(c, new HubError('unauthorized', '/metrics needs the operator’s metrics token'))
      res.headers.set('www-authenticate', 'Bearer realm="metrics"')
      return res
    }
    return new Response(await opts.registry.metrics(), { headers: { 'content-type': opts.registry.contentType } })
  })
  return app
}

/** Constant-time comparison of a bearer token with the expected one (hashed first: equal lengths). */
function bearerMatches(header: string | undefined, expected: string): boolean {
  const sent = /^Bearer\s+(\S+)$/i.exec(header ?? '')?.[1]
  if (sent === undefined) return false
  const digest = (s: string) => createHash('sha256').update(s).digest()
  return timingSafeEqual(digest(sent), digest(expected))
}

/** The app of /metrics's own port (SYNCHUB_METRICS_PORT): /metrics and nothing else. */
export function metricsOnlyApp(opts: MetricsRoutesOptions): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  app.use('*', securityHeaders())
  app.route('/', metricsRoutes(opts))
  app.notFound((c) => replyError(c, new HubError('not_found', 'only /metrics is served on this port')))
  return app
}
