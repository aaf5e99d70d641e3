import type { Change } from '../../protocol/records.ts'
import type { CollectionRegistry } from './collections.ts'

/** The collections a reader may see: its scope, narrowed by what it asked for. null = all. */
export function visibleCollections(registry: CollectionRegistry, scope: readonly string[] | null, requested?: readonly string[]): string[] | null {
  const inScope = scope ? registry.collectionsIn(scope) : null
  if (!requested) return inScope
  return inScope ? requested.filter((c) => inScope.includes(c)) : [...requested]
}

/** Makes readers' filters for one registry; every reader that sees everything shares one filter. */
export class CollectionFilters {
  private readonly all: readonly string[]
  private readonly everything: CollectionFilter

  constructor(private readonly registry: CollectionRegistry) {
    this.all = registry.names()
    this.everything = new CollectionFilter(null, this.all)
  }

  /** The filter of a reader with this scope that asked for `requested` (undefined: everything in scope). */
  of(scope: readonly string[] | null, requested?: readonly string[]): CollectionFilter {
    const names = visibleCollections(this.registry, scope, requested)
    return names === null ? this.everything : new CollectionFilter(names, this.all)
  }
}

/**
 * The collections one reader's stream shows: its scope narrowed by what it asked for, or every
 * collection (`names` null). `key` names the filter, so readers with equal filters can share
 * work (one encode of a live batch per filter, not per socket).
 */
export class CollectionFilter {
  readonly key: string
  private readonly set: ReadonlySet<string> | null

  /** `all`: every collection of the registry, what `names` null stands for. */
  constructor(
    readonly names: readonly string[] | null,
    private readonly all: readonly string[],
  ) {
    this.set = names ? new Set(names) : null
    this.key = names ? [...names].sort().join(',') : '*'
  }

  covers(collection: string): boolean {
    return this.set === null || this.set.has(collection)
  }

  /** The changes this filter shows, in their order (the same array when it shows all). */
  pick(changes: Change[]): Change[] {
    const set = this.set
    return set === null ? changes : changes.filter((c) => set.has(c.collection))
  }

  /** What moving to `next` shows that this does not (`added`, in `next`'s order) and the reverse. */
  changesTo(next: CollectionFilter): { added: string[]; removed: string[] } {
    const before = this.names ?? this.all
    const after = next.names ?? next.all
    return { added: after.filter((c) => !before.includes(c)), removed: before.filter((c) => !after.includes(c)) }
  }
}
