import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.ts'
import { KeyBox } from '../crypto/key-box.ts'
import type { CollectionRegistry, CollectionRule } from './collections.ts'

/**
 * Seals the secret fields of record data (a rule's `secretFields`, e.g. `provider_keys.key`)
 * before the data is stored, and opens them when a stored row becomes a Change again. A field's
 * value (any msgpack value) is sealed whole, as one `enc:v1:…` string.
 *
 * One per hub (or command), made from its secret and its collections, and handed to whatever
 * turns stored rows into Changes: pull, the feed's gap fill, browse, backups. Without a key box
 * it serves collections with no secret fields and refuses to seal or open a secret one.
 */
export class RecordCodec {
  constructor(
    readonly registry: CollectionRegistry,
    private readonly box?: KeyBox,
  ) {}

  /** `data` with every secret field sealed; `data` itself when the rule has none. */
  seal(rule: CollectionRule, data: Record<string, unknown>): Record<string, unknown> {
    if (!rule.secretFields?.length) return data
    const sealed = { ...data }
    for (const field of rule.secretFields) {
      if (data[field] !== undefined) sealed[field] = this.need().seal(encodeMsgpack(data[field]))
    }
    return sealed
  }

  /**
   * `data` with every sealed secret field opened. A field that is not sealed was stored before
   * encryption existed and is passed as it is (`synchub rotate-keys` seals it); a sealed field
   * that does not open throws rather than hand out garbage.
   */
  open(rule: CollectionRule, data: Record<string, unknown>): Record<string, unknown> {
    if (!rule.secretFields?.length) return data
    let opened: Record<string, unknown> | undefined
    for (const field of rule.secretFields) {
      const value = data[field]
      if (KeyBox.kidOf(value) !== undefined) (opened ??= { ...data })[field] = decodeMsgpack(this.need().open(value as string))
    }
    return opened ?? data
  }

  /** `open` for a stored row's collection, by the registry. */
  openStored(collection: string, data: Record<string, unknown>): Record<string, unknown> {
    const rule = this.registry.get(collection)
    return rule ? this.open(rule, data) : data
  }

  /** True when a stored row's data goes out exactly as stored: its collection has no secret fields to open. */
  sentAsStored(collection: string): boolean {
    return !this.registry.get(collection)?.secretFields?.length
  }

  /** `data` with every secret field sealed under the box's current key; undefined when it already is. */
  reseal(rule: CollectionRule, data: Record<string, unknown>): Record<string, unknown> | undefined {
    let resealed: Record<string, unknown> | undefined
    const box = this.need()
    for (const field of rule.secretFields ?? []) {
      const value = data[field]
      const kid = KeyBox.kidOf(value)
      if (value === undefined || kid === box.kid) continue
      const plain = kid === undefined ? value : decodeMsgpack(box.open(value as string))
      ;(resealed ??= { ...data })[field] = box.seal(encodeMsgpack(plain))
    }
    return resealed
  }

  private need(): KeyBox {
    if (!this.box) throw new Error('record codec: no key box (a collection with secret fields needs the hub secret)')
    return this.box
  }
}
