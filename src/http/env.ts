import type { Context, MiddlewareHandler } from 'hono'
import { HubError } from '../../protocol/errors.ts'
import type { AccessVerifier, Principal } from '../auth/principal.ts'
import { Id } from '../../protocol/records.ts'

/** Hono environment shared by every route module. */
export type HubEnv = {
  /** What the transport knows of the connection. */
  Bindings: {
    remoteAddress: string
  }
  Variables: {
    principal: Principal
    requestId: string
  }
}

/** Requires `Authorization: Bearer <access token>`; sets `principal`. */
export function requireAuth(verifier: AccessVerifier): MiddlewareHandler<HubEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? ''
    const match = /^Bearer\s+(\S+)$/i.exec(header)
    if (!match) throw new HubError('unauthorized', 'missing bearer token')
    c.set('principal', await verifier.verifyAccess(match[1]!))
    await next()
  }
}

export function requireAdmin(): MiddlewareHandler<HubEnv> {
  return async (c, next) => {
    if (c.get('principal').role !== 'admin') throw new HubError('forbidden', 'admin only')
    await next()
  }
}

/** The `Device-Id` header every write carries; 400 `invalid` without it. */
export function deviceIdOf(c: Context<HubEnv>): string {
  const parsed = Id.safeParse(c.req.header('device-id'))
  if (!parsed.success) throw new HubError('invalid', 'writes need a Device-Id header')
  return parsed.data
}

/**
 * The client's address: the socket's peer, or behind a trusted proxy the last X-Forwarded-For
 * entry, the one that proxy appended itself (earlier entries are whatever the client sent).
 */
export function clientAddress(c: Context<HubEnv>, trustProxy: boolean): string {
  const forwarded = trustProxy ? c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim() : undefined
  return forwarded || c.env?.remoteAddress || 'unknown'
}
