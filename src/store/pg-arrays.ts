/**
 * Postgres array literals for the group commit's column arrays, built in one pass. node-pg
 * formats a JS array itself, running two regex replaces over every element (numbers too) and
 * hex-encoding each bytea through a fresh string; a batch has thirty such arrays, and that
 * formatting was about a twentieth of the hub's busy time at 7,500 pushes/s. A string parameter
 * travels as it is, on Postgres and on PGlite alike, and the server parses it as the function's
 * declared array type.
 */
import type { RecordRow } from './rows.ts'

const QUOTE_OR_BACKSLASH = /[\\"]/
const QUOTE_OR_BACKSLASH_ALL = /[\\"]/g

/** `{"a","b",NULL}`: every element quoted, so any text (commas, braces, spaces, "NULL") stays text. */
export function textArray(values: ReadonlyArray<string | null | undefined>): string {
  return arrayLiteral(values, (v) => '"' + (QUOTE_OR_BACKSLASH.test(v) ? v.replace(QUOTE_OR_BACKSLASH_ALL, '\\$&') : v) + '"')
}

/** `{1,2,NULL}` for int8[]: safe integers only, so no value is silently rounded on the way. */
export function int8Array(values: ReadonlyArray<number | null | undefined>): string {
  return arrayLiteral(values, (v) => {
    if (!Number.isSafeInteger(v)) throw new TypeError(`not an int8: ${v}`)
    return String(v)
  })
}

/** `{"\\x0a0b",NULL}` for bytea[]: hex input format, the backslash escaped for the array parser. */
export function byteaArray(values: ReadonlyArray<Uint8Array | null | undefined>): string {
  return arrayLiteral(values, (v) => '"\\\\x' + Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex') + '"')
}

/** `{a,b,NULL}`: each present element as `element` writes it, absent ones as NULL. */
function arrayLiteral<T>(values: ReadonlyArray<T | null | undefined>, element: (v: T) => string): string {
  let out = '{'
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (i > 0) out += ','
    out += v == null ? 'NULL' : element(v)
  }
  return out + '}'
}

/**
 * A batch of records as fifteen array literals, one per column in table order (`user_id`, then
 * RECORD_COLUMNS): what a push's group commit and an import's write both unnest into records.
 */
export function recordArrays(rows: readonly RecordRow[]): string[] {
  const text = (k: 'user_id' | 'collection' | 'id' | 'parent_id' | 'replaced_by' | 'conflict_of' | 'device_id' | 'trashed_with') => textArray(rows.map((row) => row[k]))
  const int8 = (k: 'seq' | 'created_at' | 'updated_at' | 'deleted_at' | 'purge_at' | 'created_seq') => int8Array(rows.map((row) => row[k]))
  return [
    text('user_id'), text('collection'), text('id'), int8('seq'), byteaArray(rows.map((row) => row.data)), text('parent_id'),
    int8('created_at'), int8('updated_at'), int8('deleted_at'), int8('purge_at'), text('replaced_by'), text('conflict_of'),
    text('device_id'), int8('created_seq'), text('trashed_with'),
  ]
}
