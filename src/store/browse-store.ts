import { RECORD_COLUMNS, type RecordRow } from './rows.ts'
import type { SqlQueryable } from './sql-client.ts'

const COLUMNS = `user_id, ${RECORD_COLUMNS}`

/** Reads that browse a user's records rather than follow the change stream. */
export class BrowseStore {
  constructor(private readonly db: SqlQueryable) {}

  /** What is in the recycle bin, soonest purged first. */
  async trash(userId: string, collections: string[] | null, limit: number): Promise<RecordRow[]> {
    const { rows } = await this.db.query<RecordRow>(
      `SELECT ${COLUMNS} FROM records
        WHERE user_id = $1 AND deleted_at IS NOT NULL AND ($2::text[] IS NULL OR collection = ANY($2::text[]))
        ORDER BY purge_at, seq LIMIT $3`,
      [userId, collections, limit],
    )
    return rows
  }

  /**
   * The newest `limit` live children of a parent created before `beforeSeq` (a conversation's
   * messages), read newest first through the (user, parent, created_seq) index, so a long
   * history is paged without being loaded. One more row than asked tells whether older ones exist.
   */
  async childrenBefore(userId: string, q: { collection: string; parentId: string; beforeSeq: number | null; limit: number }): Promise<{ rows: RecordRow[]; older: boolean }> {
    const { collection, parentId, beforeSeq, limit } = q
    const { rows } = await this.db.query<RecordRow>(
      `SELECT ${COLUMNS} FROM records
        WHERE user_id = $1 AND parent_id = $2 AND collection = $3 AND deleted_at IS NULL
          AND ($4::int8 IS NULL OR created_seq < $4::int8)
        ORDER BY created_seq DESC LIMIT $5`,
      [userId, parentId, collection, beforeSeq, limit + 1],
    )
    const older = rows.length > limit
    return { rows: rows.slice(0, limit).reverse(), older }
  }
}
