import type { RestAnswer, RestPort, RestRequest } from './transport.ts'

export type FetchLike = (url: string, init: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal }) => Promise<{
  status: number
  headers: { get(name: string): string | null }
  text(): Promise<string>
}>

/** REST over fetch, JSON bodies both ways. */
export function fetchRestPort(fetchImpl?: FetchLike): RestPort {
  return {
    async request(baseUrl: string, req: RestRequest): Promise<RestAnswer> {
      const f = fetchImpl ?? (globalThis.fetch as unknown as FetchLike)
      const headers: Record<string, string> = { accept: 'application/json' }
      if (req.body !== undefined) headers['content-type'] = 'application/json'
      if (req.token) headers.authorization = `Bearer ${req.token}`
      if (req.deviceId) headers['device-id'] = req.deviceId
      const res = await f(baseUrl + req.path, {
        method: req.method,
        headers,
        body: req.body === undefined ? undefined : JSON.stringify(req.body),
        signal: req.signal,
      })
      const text = await res.text()
      let body: unknown
      try {
        body = text ? JSON.parse(text) : undefined
      } catch {
        body = text // a proxy's HTML error page: the status is what counts
      }
      const retry = Number(res.headers.get('retry-after'))
      return { status: res.status, body, ...(Number.isFinite(retry) && retry > 0 ? { retryAfter: retry } : {}) }
    },
  }
}
