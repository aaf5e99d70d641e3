import { randomUUID } from 'node:crypto'
import { Hono } from 'hono'
import type { Logger } from 'pino'
import type { Registry } from 'prom-client'
import { HubError } from '../../protocol/errors.ts'
import type { HubEnv } from './env.ts'
import { reply, replyError } from './negotiate.ts'

export interface AppOptions {
  log: Logger
  /** Readiness: false while starting and once draining. */
  isReady(): boolean
  /** Route modules, mounted in order. */
  routes: Array<Hono<HubEnv>>
  /** Served at /metrics in the Prometheus text format. */
  metrics?: Registry
  /** Told of every answered request (metrics). */
  onResponse?(method: string, status: number): void
}

/** The REST surface: one Hono app served on the socket's port by either transport. */
export function buildApp(opts: AppOptions): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  app.use('*', async (c, next) => {
    const requestId = c.req.header('x-request-id') ?? randomUUID()
    c.set('requestId', requestId)
    const started = performance.now()
    await next()
    c.header('x-request-id', requestId)
    opts.onResponse?.(c.req.method, c.res.status)
    // Failures are worth a line each; successes only when debugging (they are many).
    // A draining node's readiness 503 is the plan, not a failure.
    const level = c.req.path === '/readyz' ? 'debug' : c.res.status >= 500 ? 'error' : c.res.status >= 400 ? 'info' : 'debug'
    opts.log[level]({ requestId, method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(performance.now() - started) }, 'request')
  })
  app.get('/healthz', (c) => reply(c, { ok: true }))
  app.get('/readyz', (c) => (opts.isReady() ? reply(c, { ready: true }) : reply(c, { ready: false }, 503)))
  if (opts.metrics) {
    const registry = opts.metrics
    app.get('/metrics', async () => new Response(await registry.metrics(), { headers: { 'content-type': registry.contentType } }))
  }
  for (const routes of opts.routes) app.route('/', routes)
  app.notFound((c) => replyError(c, new HubError('not_found', `no route for ${c.req.method} ${c.req.path}`)))
  app.onError((err, c) => {
    if (!(err instanceof HubError)) opts.log.error({ err, requestId: c.get('requestId'), path: c.req.path }, 'request failed')
    return replyError(c, err)
  })
  return app
}
