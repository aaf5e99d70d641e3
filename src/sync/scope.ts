import { HubError } from '../../protocol/errors.ts'
import type { Bus } from '../bus/port.ts'
import type { SyncStore } from '../store/sync-store.ts'
import type { CollectionRegistry } from './collections.ts'

/** Throws `invalid` naming `field` when any of `keys` is not a scope key of the registry. */
export function requireKnownScopeKeys(registry: CollectionRegistry, keys: readonly string[], field: string): void {
  const known = registry.scopeKeys()
  const unknown = keys.filter((k) => !known.includes(k))
  if (unknown.length > 0) throw new HubError('invalid', `${field}: unknown keys ${unknown.join(', ')} (known: ${known.join(', ')})`)
}

/**
 * A user's sync scope: one list of scope keys for all their devices (`GET`/`PUT /v1/sync/scope`).
 * A change re-filters every subscribed socket of the user, on any node.
 */
export class ScopeSettings {
  constructor(private readonly deps: { store: SyncStore; registry: CollectionRegistry; bus: Pick<Bus, 'publishControl'> }) {}

  /** The user's scope keys; every key when the user never chose. */
  async get(userId: string): Promise<string[]> {
    const state = await this.deps.store.userState(userId)
    return state?.scope ?? this.deps.registry.scopeKeys()
  }

  /** Replaces the user's scope (duplicates dropped) and tells every node; returns the scope stored. */
  async set(userId: string, keys: string[]): Promise<string[]> {
    requireKnownScopeKeys(this.deps.registry, keys, 'scope')
    const scope = [...new Set(keys)]
    await this.deps.store.setScope(userId, scope)
    this.deps.bus.publishControl({ type: 'scope_changed', user: userId, scope })
    return scope
  }
}
