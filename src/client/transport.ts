import type { ClientFrame, HubFrame } from '../../protocol/frames.ts'

/**
 * The two ways the client reaches a hub, as ports: the SDK's state machine speaks only to
 * these. Adapters: socket-adapter.ts (a WHATWG WebSocket: the browser's, or `ws` in Node) and
 * rest-adapter.ts (fetch). Tests put a scripted in-process hub behind the same ports.
 */
export interface SocketEvents {
  open(): void
  frame(frame: HubFrame): void
  /** The socket is gone (after open or instead of it); `status` is the HTTP status of a refused upgrade, when the platform says. */
  close(code: number, reason: string, status?: number): void
}

export interface SocketLink {
  send(frame: ClientFrame): void
  close(code?: number, reason?: string): void
}

export interface SocketPort {
  /** Opens a socket to `url` (ws:// or wss://); events arrive until `close`. */
  connect(url: string, events: SocketEvents): SocketLink
}

export interface RestRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  /** Path with its query, e.g. `/v1/sync/pull?since=3`. */
  path: string
  body?: unknown
  token?: string
  deviceId?: string
  signal?: AbortSignal
}

export interface RestAnswer {
  status: number
  body: unknown
  /** Seconds, from a 429 or 503 answer's Retry-After. */
  retryAfter?: number
}

export interface RestPort {
  /** One request to `baseUrl` + path; rejects only when no answer came (network, abort). */
  request(baseUrl: string, req: RestRequest): Promise<RestAnswer>
}
