import { metricsOnlyApp, type MetricsRoutesOptions } from '../http/metrics-routes.ts'
import type { Config } from '../ops/config.ts'
import type { Metrics } from '../ops/metrics.ts'
import { startPlainHttpServer } from '../transport/plain-http-server.ts'

export interface MetricsEndpoint {
  /** What /metrics answers with: the registry, behind SYNCHUB_METRICS_TOKEN when one is set. */
  options: MetricsRoutesOptions
  /** The port of its own (SYNCHUB_METRICS_PORT); undefined when /metrics is on the API's port. */
  port?: number
  close(): Promise<void>
}

/** /metrics on SYNCHUB_METRICS_PORT when one is configured; otherwise the REST app serves it. */
export async function startMetricsEndpoint(config: Config, metrics: Metrics): Promise<MetricsEndpoint> {
  const options: MetricsRoutesOptions = { registry: metrics.registry, ...(config.metricsToken ? { token: config.metricsToken } : {}) }
  if (config.metricsPort === undefined) return { options, close: async () => {} }
  const app = metricsOnlyApp(options)
  const server = await startPlainHttpServer({ fetch: (req) => app.fetch(req), host: config.host, port: config.metricsPort })
  return { options, port: server.port, close: () => server.close() }
}
