import { Hono } from 'hono'
import { z } from 'zod'
import { Id } from '../../protocol/records.ts'
import { CollectionList } from '../../protocol/rest.ts'
import { parseOrThrow } from '../../protocol/validate.ts'
import type { AccessVerifier } from '../auth/principal.ts'
import type { Browse } from '../sync/browse.ts'
import { requireAuth, type HubEnv } from './env.ts'
import { reply } from './negotiate.ts'

const MessagesQuery = z.object({
  before: z.string().max(100).optional(),
  limit: z.coerce.number().pipe(z.int().min(1).max(1000)).default(50),
})
const TrashQuery = z.object({
  collections: CollectionList,
  limit: z.coerce.number().pipe(z.int().min(1).max(10_000)).default(1000),
})

/** Browsing rather than syncing: a conversation's messages page by page, and the recycle bin. */
export function browseRoutes(deps: { verifier: AccessVerifier; browse: Browse }): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  app.use('/v1/conversations/*', requireAuth(deps.verifier))
  app.use('/v1/trash', requireAuth(deps.verifier))

  app.get('/v1/conversations/:id/messages', async (c) => {
    const id = parseOrThrow(Id, c.req.param('id'), 'conversation id')
    const q = parseOrThrow(MessagesQuery, c.req.query(), 'query')
    return reply(c, await deps.browse.messages(c.get('principal').userId, id, q))
  })

  app.get('/v1/trash', async (c) => {
    const q = parseOrThrow(TrashQuery, c.req.query(), 'query')
    return reply(c, await deps.browse.trash(c.get('principal').userId, q))
  })

  return app
}
