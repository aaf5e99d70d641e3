import { Hono } from 'hono'
import { z } from 'zod'
import { HubError } from '../../protocol/errors.ts'
import { Id } from '../../protocol/records.ts'
import { CollectionList } from '../../protocol/rest.ts'
import { parseOrThrow } from '../../protocol/validate.ts'
import type { AccessVerifier } from '../auth/principal.ts'
import type { BrowseStore } from '../store/browse-store.ts'
import { rowToWireChange } from '../sync/changes.ts'
import { requireAuth, type HubEnv } from './env.ts'
import { reply } from './negotiate.ts'

/** The opaque `before` cursor of message pages: the creation seq, so pages stay put as records change. */
const encodeBefore = (createdSeq: number) => Buffer.from(`m${createdSeq}`).toString('base64url')
function decodeBefore(before: string): number {
  const seq = Number(/^m(\d+)$/.exec(Buffer.from(before, 'base64url').toString())?.[1])
  if (!Number.isSafeInteger(seq)) throw new HubError('invalid', 'before: not a cursor this hub gave out')
  return seq
}

const MessagesQuery = z.object({
  before: z.string().max(100).optional(),
  limit: z.coerce.number().pipe(z.int().min(1).max(1000)).default(50),
})
const TrashQuery = z.object({
  collections: CollectionList,
  limit: z.coerce.number().pipe(z.int().min(1).max(10_000)).default(1000),
})

/** Browsing rather than syncing: a conversation's messages page by page, and the recycle bin. */
export function browseRoutes(deps: { verifier: AccessVerifier; browse: BrowseStore }): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  app.use('/v1/conversations/*', requireAuth(deps.verifier))
  app.use('/v1/trash', requireAuth(deps.verifier))

  app.get('/v1/conversations/:id/messages', async (c) => {
    const id = parseOrThrow(Id, c.req.param('id'), 'conversation id')
    const q = parseOrThrow(MessagesQuery, c.req.query(), 'query')
    const before = q.before === undefined ? null : decodeBefore(q.before)
    const page = await deps.browse.childrenBefore(c.get('principal').userId, 'messages', id, before, q.limit)
    const oldest = page.rows[0]
    return reply(c, {
      items: page.rows.map(rowToWireChange),
      ...(page.older && oldest ? { before: encodeBefore(oldest.created_seq) } : {}),
    })
  })

  app.get('/v1/trash', async (c) => {
    const q = parseOrThrow(TrashQuery, c.req.query(), 'query')
    const rows = await deps.browse.trash(c.get('principal').userId, q.collections ?? null, q.limit)
    return reply(c, { items: rows.map(rowToWireChange) })
  })

  return app
}
