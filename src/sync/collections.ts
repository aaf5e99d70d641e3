import { z } from 'zod'
import { BUILT_IN_COLLECTION_SPECS, type BuiltInCollection, type CollectionKind } from '../../protocol/collections.ts'

/**
 * The collection registry: which scope key each collection belongs to and how it may change.
 * `mutable`: puts replace `data` (stale bases become conflict copies).
 * `append_only`: `data` never changes after creation except the listed status fields.
 */
export type { CollectionKind }

/** A collection's rules: the protocol's shape (protocol/collections.ts), for built-in and declared ones alike. */
export type CollectionRule = BuiltInCollection

const loose = <T extends z.ZodRawShape>(shape: T) => z.looseObject(shape) as unknown as z.ZodType<Record<string, unknown>>

/** The built-in collections: their rules are the protocol's (protocol/collections.ts). */
export const BUILT_IN_COLLECTIONS: readonly CollectionRule[] = BUILT_IN_COLLECTION_SPECS

export class CollectionRegistry {
  private readonly byName = new Map<string, CollectionRule>()
  constructor(rules: readonly CollectionRule[] = BUILT_IN_COLLECTIONS) {
    for (const rule of rules) this.byName.set(rule.name, rule)
  }
  get(name: string): CollectionRule | undefined {
    return this.byName.get(name)
  }
  all(): CollectionRule[] {
    return [...this.byName.values()]
  }
  /** Every collection's name. */
  names(): string[] {
    return [...this.byName.keys()]
  }
  /** Every scope key, in declaration order: the default sync scope of a new user. */
  scopeKeys(): string[] {
    return [...new Set([...this.byName.values()].map((r) => r.scope))]
  }
  /** Collections whose records belong to a record of `parent` (conversations → messages). */
  childrenOf(parent: string): CollectionRule[] {
    return [...this.byName.values()].filter((r) => r.parentCollection === parent)
  }
  /** Collections a scope list covers. */
  collectionsIn(scope: readonly string[]): string[] {
    const keys = new Set(scope)
    return [...this.byName.values()].filter((r) => keys.has(r.scope)).map((r) => r.name)
  }
}

/** How an operator declares an extra collection (SYNCHUB_COLLECTIONS): same rules as the built-in ones. */
export const DeclaredCollection = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'collection names are lower snake case'),
  scope: z.string().regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/, 'scope keys look like "tools.mcp_servers"'),
  kind: z.enum(['mutable', 'append_only']).default('mutable'),
  /** append_only: the fields a later put may still change. */
  status_fields: z.array(z.string().min(1)).max(50).optional(),
  /** Fields encrypted at rest like provider_keys.key. */
  secret_fields: z.array(z.string().min(1)).max(50).optional(),
})
export type DeclaredCollection = z.infer<typeof DeclaredCollection>

/** The registry of a hub: the built-in collections plus the operator's; a clash is an error. */
export function registryWith(declared: readonly DeclaredCollection[]): CollectionRegistry {
  const rules: CollectionRule[] = [...BUILT_IN_COLLECTIONS]
  for (const d of declared) {
    if (rules.some((r) => r.name === d.name)) throw new Error(`collection ${d.name} is declared twice or is built in`)
    rules.push({
      name: d.name,
      scope: d.scope,
      kind: d.kind,
      // Any map: the operator's clients own the shape; unknown fields are kept as always.
      schema: loose({}),
      ...(d.status_fields ? { statusFields: d.status_fields } : {}),
      ...(d.secret_fields ? { secretFields: d.secret_fields } : {}),
    })
  }
  return new CollectionRegistry(rules)
}
