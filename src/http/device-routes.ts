import { Hono } from 'hono'
import { HubError } from '../../protocol/errors.ts'
import { Id } from '../../protocol/records.ts'
import type { AccessVerifier } from '../auth/principal.ts'
import type { Devices } from '../sync/devices.ts'
import { requireAuth, type HubEnv } from './env.ts'
import { reply } from './negotiate.ts'

/** The user's devices with where they are online now (any node), and revoking one. */
export function deviceRoutes(deps: { verifier: AccessVerifier; devices: Devices }): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  app.use('/v1/devices', requireAuth(deps.verifier))
  app.use('/v1/devices/*', requireAuth(deps.verifier))

  app.get('/v1/devices', async (c) => reply(c, { items: await deps.devices.list(c.get('principal').userId) }))

  app.delete('/v1/devices/:id', async (c) => {
    const parsed = Id.safeParse(c.req.param('id'))
    if (!parsed.success) throw new HubError('invalid', 'device id: 1 to 200 characters')
    await deps.devices.revoke(c.get('principal').userId, parsed.data)
    return c.body(null, 204)
  })

  return app
}
