import { createServer } from 'node:http'
import { getRequestListener } from '@hono/node-server'

export interface PlainHttpServer {
  port: number
  close(): Promise<void>
}

/**
 * A plain HTTP listener (no sockets, either transport) for a fetch handler: what the hub serves
 * apart from its API port, such as /metrics on SYNCHUB_METRICS_PORT.
 */
export async function startPlainHttpServer(opts: { fetch(req: Request): Response | Promise<Response>; host: string; port: number }): Promise<PlainHttpServer> {
  const server = createServer(getRequestListener((req) => opts.fetch(req), { overrideGlobalObjects: false }))
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
