import type { CollectionRegistry } from './collections.ts'
import { requireKnownScopeKeys } from './scope.ts'

/**
 * The scope keys a backup covers and their collections: every key by default (a backup is of
 * the cloud's data, whatever the user's sync scope), else the ones asked for, all known.
 */
export function backupScopes(registry: CollectionRegistry, requested?: string[]): { scopes: string[]; collections: string[] } {
  const known = registry.scopeKeys()
  if (!requested) return { scopes: known, collections: registry.collectionsIn(known) }
  requireKnownScopeKeys(registry, requested, 'scopes')
  const scopes = known.filter((k) => requested.includes(k))
  return { scopes, collections: registry.collectionsIn(scopes) }
}
