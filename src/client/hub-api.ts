import { HubError, isErrorCode, type ErrorCode } from '../../protocol/errors.ts'
import type { Op, Result } from '../../protocol/ops.ts'
import type { Change } from '../../protocol/records.ts'
import type { ResetReason } from '../../protocol/frames.ts'
import type { RestAnswer, RestPort } from './transport.ts'

/** A refusal from the hub's REST API: its stable code, the HTTP status, and Retry-After. */
export class RestError extends HubError {
  constructor(
    code: ErrorCode,
    message: string,
    readonly status: number,
    readonly retryAfter?: number,
  ) {
    super(code, message)
    this.name = 'RestError'
  }
}

export interface Tokens {
  access_token: string
  refresh_token: string
  expires_in: number
}

export type PullAnswer = { items: Change[]; cursor: number; more: boolean; epoch: string } | { reset: ResetReason; epoch?: string }

export interface PullQuery {
  since: number
  limit?: number
  collections?: readonly string[]
  wait?: number
  epoch?: string
}

/** The hub's REST routes the client uses, each answer checked for its status. */
export class HubApi {
  constructor(
    private readonly rest: RestPort,
    readonly baseUrl: string,
  ) {}

  login(username: string, password: string, deviceId?: string): Promise<Tokens> {
    return this.call<Tokens>({ method: 'POST', path: '/v1/auth/login', body: { username, password }, deviceId })
  }

  refresh(refreshToken: string): Promise<Tokens> {
    return this.call<Tokens>({ method: 'POST', path: '/v1/auth/refresh', body: { refresh_token: refreshToken } })
  }

  pull(token: string, q: PullQuery, signal?: AbortSignal): Promise<PullAnswer> {
    const params = new URLSearchParams({ since: String(q.since) })
    if (q.limit !== undefined) params.set('limit', String(q.limit))
    if (q.collections) params.set('collections', q.collections.join(','))
    if (q.wait) params.set('wait', String(q.wait))
    if (q.epoch) params.set('epoch', q.epoch)
    return this.call<PullAnswer>({ method: 'GET', path: `/v1/sync/pull?${params}`, token, signal })
  }

  push(token: string, deviceId: string, ops: Op[]): Promise<{ cursor: number; results: Result[] }> {
    return this.call({ method: 'POST', path: '/v1/sync/push', body: { ops }, token, deviceId })
  }

  scope(token: string): Promise<{ scope: string[] }> {
    return this.call({ method: 'GET', path: '/v1/sync/scope', token })
  }

  devices(token: string): Promise<{ items: Array<{ id: string; last_mid: number }> }> {
    return this.call({ method: 'GET', path: '/v1/devices', token })
  }

  private async call<T>(req: Parameters<RestPort['request']>[1]): Promise<T> {
    const answer = await this.rest.request(this.baseUrl, req)
    if (answer.status >= 200 && answer.status < 300) return answer.body as T
    throw restError(answer)
  }
}

/**
 * The hub's `{error:{code,message}}`. An answer without it came from something in between (a
 * proxy's 403 or 502 page): that says nothing about the account, so it counts as `unavailable`.
 */
export function restError(answer: RestAnswer): RestError {
  const err = (answer.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error
  if (err && isErrorCode(err.code)) return new RestError(err.code, String(err.message ?? ''), answer.status, answer.retryAfter)
  return new RestError('unavailable', `HTTP ${answer.status} without the hub's error body (a proxy or another server answered)`, answer.status, answer.retryAfter)
}
