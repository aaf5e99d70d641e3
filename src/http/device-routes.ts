import { Hono } from 'hono'
import { HubError } from '../../protocol/errors.ts'
import { Id } from '../../protocol/records.ts'
import type { AccessVerifier } from '../auth/principal.ts'
import type { Bus } from '../bus/port.ts'
import type { Presence } from '../cluster/presence.ts'
import type { DeviceStore } from '../store/device-store.ts'
import { requireAuth, type HubEnv } from './env.ts'
import { reply } from './negotiate.ts'

export interface DeviceRoutesDeps {
  verifier: AccessVerifier
  devices: DeviceStore
  presence: Presence
  bus: Bus
}

/** The user's devices with where they are online now (any node), and revoking one. */
export function deviceRoutes(deps: DeviceRoutesDeps): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  app.use('/v1/devices', requireAuth(deps.verifier))
  app.use('/v1/devices/*', requireAuth(deps.verifier))

  app.get('/v1/devices', async (c) => {
    const userId = c.get('principal').userId
    const [rows, online] = await Promise.all([deps.devices.list(userId), deps.presence.list(userId)])
    const where = new Map(online.map((p) => [p.device, p]))
    const items = rows.map((d) => {
      const p = where.get(d.id)
      return {
        id: d.id,
        ...(d.name !== null ? { name: d.name } : {}),
        ...(d.platform !== null ? { platform: d.platform } : {}),
        created_at: d.created_at,
        last_seen: d.last_seen,
        acked_cursor: d.acked_cursor,
        last_mid: d.last_mid,
        revoked: d.revoked_at !== null,
        online: p !== undefined,
        ...(p ? { node: p.nodes[0], nodes: p.nodes, online_since: p.since } : {}),
      }
    })
    return reply(c, { items })
  })

  app.delete('/v1/devices/:id', async (c) => {
    const parsed = Id.safeParse(c.req.param('id'))
    if (!parsed.success) throw new HubError('invalid', 'device id: 1 to 200 characters')
    const userId = c.get('principal').userId
    if (!(await deps.devices.revoke(userId, parsed.data, Date.now()))) throw new HubError('not_found', `no device ${parsed.data}`)
    // Every node closes the device's sockets (bye revoked, 4403).
    deps.bus.publishControl({ type: 'device_revoked', user: userId, device: parsed.data })
    return c.body(null, 204)
  })

  return app
}
