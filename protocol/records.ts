import { z } from 'zod'
import { storedText } from './text-rules.ts'

/** Client-generated ids (UUIDs in practice): non-empty strings of bounded length, stored as text. */
export const Id = storedText(z.string().min(1).max(200))
/** Collection names: lower snake case, as in the built-in `provider_keys`. */
export const CollectionName = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'collection names are lower snake case')
/** How deep maps and arrays may nest inside a record's data. */
export const MAX_DATA_DEPTH = 64

/** True when no map or array inside `value` is nested deeper than `max` (iterative: no stack). */
export function withinDepth(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array) continue
    if (depth > max) return false
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1])
  }
  return true
}

/** A record's payload: always a map; any msgpack values inside, nested at most MAX_DATA_DEPTH deep. */
export const RecordData = z
  .record(z.string(), z.unknown())
  .refine((v) => withinDepth(v, MAX_DATA_DEPTH), `data is nested deeper than ${MAX_DATA_DEPTH} levels`)
export const Seq = z.int().nonnegative()
export const Millis = z.int().nonnegative()

/** One change in the user's stream: the record as it is after the change with sequence `seq`. */
/** A record's sync fields, as changes and backups carry them. */
export const RecordSyncFields = z.object({
  created_at: Millis,
  updated_at: Millis,
  deleted_at: Millis.optional(),
  purge_at: Millis.optional(),
  replaced_by: Id.optional(),
  conflict_of: Id.optional(),
  device_id: Id.optional(),
})

export const Change = z.object({
  seq: Seq,
  collection: CollectionName,
  id: Id,
  data: RecordData,
  rev: Seq,
  ...RecordSyncFields.shape,
})
export type Change = z.infer<typeof Change>
