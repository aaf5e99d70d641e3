import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.ts'
import { KeyBoxError } from '../crypto/key-box.ts'
import type { RecordDataStore } from '../store/record-data-store.ts'
import type { RecordCodec } from '../sync/record-codec.ts'

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
  store: RecordDataStore,
  opts: { codec: RecordCodec; batchSize?: number; onProgress?: (p: RotateProgress) => void },
): Promise<{ checked: number; resealed: number }> {
  const batchSize = opts.batchSize ?? 500
  let checked = 0
  let resealed = 0
  for (const rule of opts.codec.registry.all().filter((r) => r.secretFields?.length)) {
    let after = { user: '', id: '' }
    for (;;) {
      const batch = await store.rewriteBatch(rule.name, after, batchSize, (row) => {
        try {
          const data = opts.codec.reseal(rule, decodeMsgpack(row.data) as Record<string, unknown>)
          return data && encodeMsgpack(data)
        } catch (err) {
          // The batch rolls back; name the record so the operator can see which secret is missing.
          throw new KeyBoxError(`${rule.name}/${row.id} of user ${row.user_id}: ${(err as Error).message}`)
        }
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
