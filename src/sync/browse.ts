import { HubError } from '../../protocol/errors.ts'
import type { BrowseStore } from '../store/browse-store.ts'
import { rowToWireChange, type WireChange } from './changes.ts'
import type { RecordCodec } from './record-codec.ts'

/** The opaque `before` cursor of message pages: the creation seq, so pages stay put as records change. */
const encodeBefore = (createdSeq: number) => Buffer.from(`m${createdSeq}`).toString('base64url')
function decodeBefore(before: string): number {
  const seq = Number(/^m(\d+)$/.exec(Buffer.from(before, 'base64url').toString())?.[1])
  if (!Number.isSafeInteger(seq)) throw new HubError('invalid', 'before: not a cursor this hub gave out')
  return seq
}

/** Browsing rather than syncing: a conversation's messages page by page, and the recycle bin. */
export class Browse {
  constructor(private readonly deps: { store: BrowseStore; codec: RecordCodec }) {}

  /** The newest `limit` live messages of a conversation older than the `before` cursor; `before` in the answer pages further back. */
  async messages(userId: string, conversationId: string, q: { before?: string; limit: number }): Promise<{ items: WireChange[]; before?: string }> {
    const beforeSeq = q.before === undefined ? null : decodeBefore(q.before)
    const page = await this.deps.store.childrenBefore(userId, { collection: 'messages', parentId: conversationId, beforeSeq, limit: q.limit })
    const oldest = page.rows[0]
    return {
      items: page.rows.map((row) => rowToWireChange(row, this.deps.codec)),
      ...(page.older && oldest ? { before: encodeBefore(oldest.created_seq) } : {}),
    }
  }

  /** What is in the recycle bin, soonest purged first; `collections` narrows it. */
  async trash(userId: string, q: { collections?: string[]; limit: number }): Promise<{ items: WireChange[] }> {
    const rows = await this.deps.store.trash(userId, q.collections ?? null, q.limit)
    return { items: rows.map((row) => rowToWireChange(row, this.deps.codec)) }
  }
}
