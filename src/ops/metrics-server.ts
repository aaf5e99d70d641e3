import { createServer, type Server } from 'node:http'
import { getRequestListener } from '@hono/node-server'
import { Hono } from 'hono'
import { HubError } from '../../protocol/errors.ts'
import type { HubEnv } from '../http/env.ts'
import { metricsRoutes, type MetricsRoutesOptions } from '../http/metrics-routes.ts'
import { replyError } from '../http/negotiate.ts'
import { securityHeaders } from '../http/security-headers.ts'

/**
 * /metrics on a port of its own (SYNCHUB_METRICS_PORT), so operators can keep it off the
 * public listener; the hub's port then has no /metrics. Nothing else is served here.
 */
export async function startMetricsServer(opts: MetricsRoutesOptions & { host: string; port: number }): Promise<{ port: number; close(): Promise<void> }> {
  const app = new Hono<HubEnv>()
  app.use('*', securityHeaders())
  app.route('/', metricsRoutes(opts))
  app.notFound((c) => replyError(c, new HubError('not_found', 'only /metrics is served on this port')))
  const server: Server = createServer(getRequestListener(app.fetch, { overrideGlobalObjects: false }))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(opts.port, opts.host, () => resolve())
  })
  const address = server.address()
  return {
    port: typeof address === 'object' && address ? address.port : opts.port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
