import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.ts'
import { KeyBoxError, type KeyBox } from '../crypto/key-box.ts'
import type { CollectionRegistry } from '../sync/collections.ts'
import { resealData } from '../sync/record-codec.ts'
import type { SqlClient } from '../store/sql-client.ts'

export interface RotateProgress {
  collection: string
  /** Records looked at so far (this collection and the ones before it). */
  checked: number
  /** Of those, records whose secret fields were sealed again under the current key. */
  resealed: number
}

/**
 * `synchub rotate-keys`: seals every secret field not yet under the current key (SYNCHUB_SECRET)
 * again, after a rotation or for values stored before encryption. Walks each collection with
 * secret fields in primary-key order, one transaction per batch, so it holds few locks at a
 * time and can be stopped and rerun. Only `data` is written: seqs stay, since the plaintext does
 * not change and devices have nothing to sync. Rerunning it reseals nothing.
 */
export async function rotateKeys(
  db: SqlClient,
  opts: { registry: CollectionRegistry; box: KeyBox; batchSize?: number; onProgress?: (p: RotateProgress) => void },
): Promise<{ checked: number; resealed: number }> {
  const batchSize = opts.batchSize ?? 500
  let checked = 0
  let resealed = 0
  for (const rule of opts.registry.all().filter((r) => r.secretFields?.length)) {
    let after = { user: '', id: '' }
    for (;;) {
      const batch = await db.transaction(async (tx) => {
        const { rows } = await tx.query<{ user_id: string; id: string; data: Uint8Array }>(
          `SELECT user_id, id, data FROM records
            WHERE collection = $1 AND (user_id, id) > ($2, $3)
            ORDER BY user_id, id LIMIT $4 FOR UPDATE`,
          [rule.name, after.user, after.id, batchSize],
        )
        const changed: Array<{ user: string; id: string; data: Uint8Array }> = []
        for (const row of rows) {
          let data: Record<string, unknown> | undefined
          try {
            data = resealData(rule, decodeMsgpack(row.data) as Record<string, unknown>, opts.box)
          } catch (err) {
            // The batch rolls back; name the record so the operator can see which secret is missing.
            throw new KeyBoxError(`${rule.name}/${row.id} of user ${row.user_id}: ${(err as Error).message}`)
          }
          if (data) changed.push({ user: row.user_id, id: row.id, data: encodeMsgpack(data) })
        }
        if (changed.length > 0) {
          await tx.query(
            `UPDATE records r SET data = k.data FROM unnest($2::text[], $3::text[], $4::bytea[]) AS k(u, i, data)
              WHERE r.user_id = k.u AND r.collection = $1 AND r.id = k.i`,
            [rule.name, changed.map((c) => c.user), changed.map((c) => c.id), changed.map((c) => c.data)],
          )
        }
        return { rows, changed: changed.length }
      })
      checked += batch.rows.length
      resealed += batch.changed
      if (batch.rows.length > 0) opts.onProgress?.({ collection: rule.name, checked, resealed })
      if (batch.rows.length < batchSize) break
      const last = batch.rows.at(-1)!
      after = { user: last.user_id, id: last.id }
    }
  }
  return { checked, resealed }
}
