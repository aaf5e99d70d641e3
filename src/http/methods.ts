import { TrieRouter } from 'hono/router/trie-router'

/** Every method some route of the hub answers; OPTIONS is answered on every known path. */
export const HUB_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/**
 * Which methods each path answers, from the app's route table (middleware, method ALL, is not
 * a route). Used for the `Allow` header of 405 and OPTIONS answers and for CORS preflights.
 * Built on first use, once every route is mounted.
 */
export function methodTable(routes: () => ReadonlyArray<{ method: string; path: string }>): (path: string) => string[] {
  let router: TrieRouter<true> | undefined
  const build = () => {
    const r = new TrieRouter<true>()
    for (const { method, path } of routes()) if (method !== 'ALL') r.add(method.toUpperCase(), path, true)
    return r
  }
  return (path) => {
    router ??= build()
    const found = HUB_METHODS.filter((m) => m !== 'HEAD' && m !== 'OPTIONS' && router!.match(m, path)[0].length > 0)
    if (found.length === 0) return []
    // HEAD is GET without a body (the router answers it so); OPTIONS is answered on every path a route serves.
    return [...found.flatMap((m) => (m === 'GET' ? ['GET', 'HEAD'] : [m])), 'OPTIONS']
  }
}
