import { Hono } from 'hono'
import { Id } from '../../protocol/records.ts'
import { AdminUserListQuery, AdminUserPatch, CreateInviteBody } from '../../protocol/rest.ts'
import { parseOrThrow } from '../../protocol/validate.ts'
import type { AuthService } from '../auth/service.ts'
import type { UserAdmin } from '../sync/user-admin.ts'
import { requireAdmin, requireAuth, type HubEnv } from './env.ts'
import { readBody, reply } from './negotiate.ts'

export interface AdminRoutesOptions {
  maxBodyBytes: number
}

/** User and invite administration; every route needs an admin's access token. */
export function adminRoutes(auth: AuthService, users: UserAdmin, opts: AdminRoutesOptions): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  const limit = { maxBytes: opts.maxBodyBytes }
  app.use('/v1/admin/users', requireAuth(auth), requireAdmin())
  app.use('/v1/admin/users/*', requireAuth(auth), requireAdmin())
  app.use('/v1/admin/invites', requireAuth(auth), requireAdmin())

  app.get('/v1/admin/users', async (c) => {
    const page = parseOrThrow(AdminUserListQuery, c.req.query(), 'query')
    return reply(c, await auth.listUsers(page))
  })

  app.patch('/v1/admin/users/:id', async (c) => {
    const id = parseOrThrow(Id, c.req.param('id'), 'user id')
    const patch = await readBody(c, AdminUserPatch, limit)
    return reply(c, await users.update(c.get('principal').userId, id, patch))
  })

  app.post('/v1/admin/invites', async (c) => {
    const body = await readBody(c, CreateInviteBody, limit)
    return reply(c, await auth.createInvite(c.get('principal').userId, body), 201)
  })

  app.get('/v1/admin/invites', async (c) => reply(c, { items: await auth.listInvites() }))

  return app
}
