import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.ts'
import { KeyBox } from '../crypto/key-box.ts'
import { CollectionRegistry, type CollectionRule } from './collections.ts'

/**
 * Seals the secret fields of record data (a rule's `secretFields`, e.g. `provider_keys.key`)
 * before the data is stored, and opens them when a stored row becomes a Change again. A field's
 * value (any msgpack value) is sealed whole, as one `enc:v1:…` string.
 *
 * The key box is process-wide, set by the hub at start: stored rows become Changes in several
 * places (pull, the feed's gap fill, the trash), and each would otherwise need it threaded in.
 * A process runs one hub (tests may run several, all with the same secret).
 */
let defaultBox: KeyBox | undefined
let defaultRegistry = new CollectionRegistry()

/** Called by the hub at start: the box that seals and opens, and the rules that say which fields. */
export function configureRecordCodec(box: KeyBox, registry: CollectionRegistry): void {
  defaultBox = box
  defaultRegistry = registry
}

/** `data` with every secret field sealed; `data` itself when the rule has none. */
export function sealData(rule: CollectionRule, data: Record<string, unknown>, box = defaultBox): Record<string, unknown> {
  if (!rule.secretFields?.length) return data
  const sealed = { ...data }
  for (const field of rule.secretFields) {
    if (data[field] !== undefined) sealed[field] = need(box).seal(encodeMsgpack(data[field]))
  }
  return sealed
}

/**
 * `data` with every sealed secret field opened. A field that is not sealed was stored before
 * encryption existed and is passed as it is (`synchub rotate-keys` seals it); a sealed field
 * that does not open throws rather than hand out garbage.
 */
export function openData(rule: CollectionRule, data: Record<string, unknown>, box = defaultBox): Record<string, unknown> {
  if (!rule.secretFields?.length) return data
  let opened: Record<string, unknown> | undefined
  for (const field of rule.secretFields) {
    const value = data[field]
    if (KeyBox.kidOf(value) !== undefined) (opened ??= { ...data })[field] = decodeMsgpack(need(box).open(value as string))
  }
  return opened ?? data
}

/** openData for a stored row's collection, by the configured registry (rowToChange). */
export function openStored(collection: string, data: Record<string, unknown>): Record<string, unknown> {
  const rule = defaultRegistry.get(collection)
  return rule ? openData(rule, data) : data
}

/** True when a stored row's data goes out exactly as stored: its collection has no secret fields to open. */
export function sentAsStored(collection: string): boolean {
  return !defaultRegistry.get(collection)?.secretFields?.length
}

/** `data` with every secret field sealed under the box's current key; undefined when it already is. */
export function resealData(rule: CollectionRule, data: Record<string, unknown>, box: KeyBox): Record<string, unknown> | undefined {
  let resealed: Record<string, unknown> | undefined
  for (const field of rule.secretFields ?? []) {
    const value = data[field]
    const kid = KeyBox.kidOf(value)
    if (value === undefined || kid === box.kid) continue
    const plain = kid === undefined ? value : decodeMsgpack(box.open(value as string))
    ;(resealed ??= { ...data })[field] = box.seal(encodeMsgpack(plain))
  }
  return resealed
}

function need(box: KeyBox | undefined): KeyBox {
  if (!box) throw new Error('record codec: no key box configured (the hub sets one at start with configureRecordCodec)')
  return box
}
