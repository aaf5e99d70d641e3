import { randomUUID } from 'node:crypto'
import { Hono, type Context } from 'hono'
import type { Logger } from 'pino'
import { HubError } from '../../protocol/errors.ts'
import { cors, originPolicy, type OriginPolicy } from './cors.ts'
import type { HubEnv } from './env.ts'
import { HUB_METHODS, methodTable } from './methods.ts'
import { metricsRoutes, type MetricsRoutesOptions } from './metrics-routes.ts'
import { reply, replyError } from './negotiate.ts'
import { securityHeaders } from './security-headers.ts'

export interface AppOptions {
  log: Logger
  /** Readiness: false while starting and once draining. */
  isReady(): boolean
  /** Route modules, mounted in order. */
  routes: Array<Hono<HubEnv>>
  /** Served at /metrics (not when metrics have a port of their own). */
  metrics?: MetricsRoutesOptions
  /** Browser origins allowed to call the API (CORS); none by default. */
  origins?: OriginPolicy
  /** Told of every answered request (metrics); status 499 is a client that left before its answer. */
  onResponse?(method: string, status: number): void
}

/** A client's X-Request-Id is kept when it is a plain token; anything else gets a fresh id. */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/
/** nginx's "client closed request": logged and counted for a request whose client went away. */
const CLIENT_CLOSED = 499

/** The REST surface: one Hono app served on the socket's port by either transport. */
export function buildApp(opts: AppOptions): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  const allowed = methodTable(() => app.routes)
  app.use('*', async (c, next) => {
    const sent = c.req.header('x-request-id')
    const requestId = sent !== undefined && SANE_REQUEST_ID.test(sent) ? sent : randomUUID()
    c.set('requestId', requestId)
    const started = performance.now()
    await next()
    c.header('x-request-id', requestId)
    const aborted = c.req.raw.signal.aborted
    const status = aborted ? CLIENT_CLOSED : c.res.status
    opts.onResponse?.(c.req.method, status)
    // Failures are worth a line each; successes only when debugging (they are many).
    // A draining node's readiness 503 is the plan, not a failure; a client that left is its own business.
    const level = c.req.path === '/readyz' || aborted ? 'debug' : status >= 500 ? 'error' : status >= 400 ? 'info' : 'debug'
    const line = { requestId, method: c.req.method, path: c.req.path, status, ms: Math.round(performance.now() - started) }
    opts.log[level](line, aborted ? 'request aborted by the client' : 'request')
  })
  app.use('*', securityHeaders())
  app.use('*', cors(opts.origins ?? originPolicy([])))
  // Before any route's middleware (auth would answer 401 first): methods no route serves, and OPTIONS.
  app.use('*', async (c, next) => {
    const method = c.req.method
    if (method === 'OPTIONS') {
      const methods = allowed(c.req.path)
      return methods.length > 0 ? c.body(null, 204, { allow: methods.join(', ') }) : notFound(c)
    }
    if (!(HUB_METHODS as readonly string[]).includes(method)) return methodNotAllowed(c, allowed(c.req.path))
    await next()
  })
  app.get('/healthz', (c) => reply(c, { ok: true }))
  app.get('/readyz', (c) => (opts.isReady() ? reply(c, { ready: true }) : reply(c, { ready: false }, 503)))
  if (opts.metrics) app.route('/', metricsRoutes(opts.metrics))
  for (const routes of opts.routes) app.route('/', routes)
  app.notFound((c) => {
    const methods = allowed(c.req.path)
    return methods.length > 0 ? methodNotAllowed(c, methods) : notFound(c)
  })
  app.onError((err, c) => {
    // A body stream cut by a client that went away is not a hub failure.
    if (!(err instanceof HubError) && !c.req.raw.signal.aborted) opts.log.error({ err, requestId: c.get('requestId'), path: c.req.path }, 'request failed')
    return replyError(c, err)
  })
  return app
}

function notFound(c: Context): Response {
  return replyError(c, new HubError('not_found', `no route for ${c.req.method} ${c.req.path}`))
}

/** 405 with the path's methods, or every method the hub serves for a method it never does (TRACE, CONNECT…). */
function methodNotAllowed(c: Context, methods: string[]): Response {
  const allow = methods.length > 0 ? methods : [...HUB_METHODS]
  const res = replyError(c, new HubError('method_not_allowed', `${c.req.method} is not allowed on ${c.req.path}; allowed: ${allow.join(', ')}`))
  res.headers.set('allow', allow.join(', '))
  return res
}
