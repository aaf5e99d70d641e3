import type { SqlClient } from './sql-client.ts'

/** A stored record's key and data, as the key rotation walks them. */
export interface StoredData {
  user_id: string
  id: string
  data: Uint8Array
}

/** Rewrites records' data in place, seqs untouched (`synchub rotate-keys`). */
export class RecordDataStore {
  constructor(private readonly db: SqlClient) {}

  /**
   * One batch of a collection's records in primary-key order after `after`, locked in one
   * transaction: `rewrite` gives each row's new data (undefined: unchanged), and the changed
   * ones are written before the transaction commits. A throw from `rewrite` rolls the batch back.
   */
  rewriteBatch(
    collection: string,
    after: { user: string; id: string },
    limit: number,
    rewrite: (row: StoredData) => Uint8Array | undefined,
  ): Promise<{ rows: StoredData[]; changed: number }> {
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<StoredData>(
        `SELECT user_id, id, data FROM records
          WHERE collection = $1 AND (user_id, id) > ($2, $3)
          ORDER BY user_id, id LIMIT $4 FOR UPDATE`,
        [collection, after.user, after.id, limit],
      )
      const changed: Array<{ user: string; id: string; data: Uint8Array }> = []
      for (const row of rows) {
        const data = rewrite(row)
        if (data) changed.push({ user: row.user_id, id: row.id, data })
      }
      if (changed.length > 0) {
        await tx.query(
          `UPDATE records r SET data = k.data FROM unnest($2::text[], $3::text[], $4::bytea[]) AS k(u, i, data)
            WHERE r.user_id = k.u AND r.collection = $1 AND r.id = k.i`,
          [collection, changed.map((c) => c.user), changed.map((c) => c.id), changed.map((c) => c.data)],
        )
      }
      return { rows, changed: changed.length }
    })
  }
}
