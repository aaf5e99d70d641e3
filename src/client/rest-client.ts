import { HubError, isErrorCode } from '../../protocol/errors.ts'
import type { Op } from '../../protocol/ops.ts'

/** A small REST client (JSON): auth, pull, push, status. */
export class RestClient {
  constructor(
    readonly baseUrl: string,
    public token?: string,
    public deviceId?: string,
  ) {}

  async call<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const res = await fetch(this.baseUrl + path, {
      method,
      headers: {
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        ...(this.deviceId ? { 'device-id': this.deviceId } : {}),
        ...headers,
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    const json = text ? JSON.parse(text) : undefined
    if (!res.ok) {
      const code = json?.error?.code
      throw Object.assign(new HubError(isErrorCode(code) ? code : 'internal', json?.error?.message ?? res.statusText), { status: res.status })
    }
    return json as T
  }

  register(username: string, password: string, invite?: string) {
    return this.call('POST', '/v1/auth/register', { username, password, ...(invite ? { invite } : {}) })
  }

  /** Logs in and keeps the access token for later calls. */
  async login(username: string, password: string): Promise<{ access_token: string; refresh_token: string; expires_in: number }> {
    const tokens = await this.call('POST', '/v1/auth/login', { username, password })
    this.token = tokens.access_token
    return tokens
  }

  pull(q: { since?: number; limit?: number; collections?: string[]; wait?: number; epoch?: string } = {}) {
    const params = new URLSearchParams()
    for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, Array.isArray(v) ? v.join(',') : String(v))
    return this.call('GET', `/v1/sync/pull?${params}`)
  }

  push(ops: Op[]) {
    return this.call('POST', '/v1/sync/push', { ops })
  }

  status() {
    return this.call('GET', '/v1/sync/status')
  }
}
