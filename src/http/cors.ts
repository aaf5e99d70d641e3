import type { MiddlewareHandler } from 'hono'

/**
 * Which browser origins may use the hub (SYNCHUB_CORS_ORIGINS): REST answers carry CORS headers
 * for them, and a WebSocket upgrade that sends `Origin` must come from one of them. Requests
 * without `Origin` (native apps, backends, curl) are not affected. A page served by the hub's own
 * host is same-origin and always allowed to open a socket.
 */
export interface OriginPolicy {
  /** True when `origin` is listed. */
  listed(origin: string): boolean
  /** Whether a WebSocket upgrade with these headers may proceed. */
  upgradeAllowed(origin: string | undefined, host: string | undefined): boolean
  readonly configured: boolean
}

export function originPolicy(origins: readonly string[]): OriginPolicy {
  const allowed = new Set(origins.map((o) => o.toLowerCase()))
  const listed = (origin: string) => allowed.has(origin.toLowerCase())
  return {
    configured: allowed.size > 0,
    listed,
    upgradeAllowed(origin, host) {
      if (origin === undefined || listed(origin)) return true
      try {
        return host !== undefined && new URL(origin).host === host.toLowerCase()
      } catch {
        return false
      }
    },
  }
}

/** Request headers a browser app may send; what it may read of an answer besides the basics. */
const ALLOW_HEADERS = 'authorization, content-type, accept, device-id, x-request-id'
const EXPOSE_HEADERS = 'x-request-id, retry-after, content-disposition, www-authenticate'
const PREFLIGHT_MAX_AGE_SEC = '600'

/**
 * CORS for the listed origins. A preflight (OPTIONS with Access-Control-Request-Method) is
 * answered by the method guard with 204 and `Allow`; this adds the Access-Control-* headers
 * when the origin is listed, the methods being the path's. Other answers to a listed origin
 * name it in Access-Control-Allow-Origin. No credentials: the API takes bearer tokens, not cookies.
 */
export function cors(policy: OriginPolicy): MiddlewareHandler {
  return async (c, next) => {
    await next()
    if (!policy.configured) return
    const headers = c.res.headers
    headers.append('vary', 'Origin')
    const origin = c.req.header('origin')
    if (origin === undefined || !policy.listed(origin)) return
    headers.set('access-control-allow-origin', origin)
    if (c.req.method === 'OPTIONS' && c.req.header('access-control-request-method') !== undefined) {
      headers.append('vary', 'Access-Control-Request-Method, Access-Control-Request-Headers')
      headers.set('access-control-allow-methods', headers.get('allow') ?? '')
      headers.set('access-control-allow-headers', ALLOW_HEADERS)
      headers.set('access-control-max-age', PREFLIGHT_MAX_AGE_SEC)
    } else {
      headers.set('access-control-expose-headers', EXPOSE_HEADERS)
    }
  }
}
