import type { MiddlewareHandler } from 'hono'

/**
 * Paths the hub may one day serve a browser page from (an admin console at /admin): they get
 * only the headers that suit any answer, and set their own framing and content policy.
 */
const isPage = (path: string) => path === '/admin' || path.startsWith('/admin/')

/**
 * Headers for an API whose answers are data, never pages: no MIME sniffing, no referrer, never
 * framed, nothing loaded from them, and never cached (answers hold user data, tokens and keys;
 * a route that may be cached sets its own Cache-Control).
 */
export const API_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
  'cache-control': 'no-store',
}

const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

/** Sets the security headers on every answer, keeping any a route set itself. */
export function securityHeaders(): MiddlewareHandler {
  return async (c, next) => {
    await next()
    const headers = c.res.headers
    for (const [name, value] of Object.entries(isPage(c.req.path) ? PAGE_HEADERS : API_HEADERS)) {
      if (!headers.has(name)) headers.set(name, value)
    }
  }
}
