import { builtInCollectionsOf } from '../../protocol/collections.ts'
import { HubError } from '../../protocol/errors.ts'
import type { HubApi } from './hub-api.ts'
import type { Inbox } from './inbox.ts'
import type { TokenReason } from './tokens.ts'

export interface ScopeWatchDeps {
  api: HubApi
  token(reason: TokenReason): Promise<string>
  inbox: Inbox
  /** The scope (keys) whose records the device holds; undefined before the first check. */
  known(): string[] | undefined
  collections?: readonly string[]
  /** Scope keys of operator-declared collections. */
  collectionScopes?: Record<string, string>
  failed(err: unknown): void
}

/**
 * Catches scope changes the socket's `scope`/`backfill` frames did not bring: ones made while the
 * device was offline or polling, or whose event the cluster bus lost (PROTOCOL.md, "Sync scope").
 * Compares the hub's scope with the one the device holds and, after a widening, pulls the added
 * collections from 0 up to the cursor over REST as backfill.
 */
export class ScopeWatch {
  private running: Promise<void> | undefined

  constructor(private readonly deps: ScopeWatchDeps) {}

  check(): void {
    this.running ??= this.run()
      .catch((err) => this.deps.failed(err))
      .finally(() => (this.running = undefined))
  }

  private collectionsOf(keys: readonly string[]): { names: string[]; unknown: string[] } {
    const declared = this.deps.collectionScopes ?? {}
    const ofKey = (k: string) => [...builtInCollectionsOf([k]), ...Object.keys(declared).filter((c) => declared[c] === k)]
    const names = keys.flatMap(ofKey)
    const wanted = this.deps.collections ? names.filter((n) => this.deps.collections!.includes(n)) : names
    return { names: wanted, unknown: keys.filter((k) => ofKey(k).length === 0) }
  }

  private async run(): Promise<void> {
    const { api, inbox } = this.deps
    const { scope } = await api.scope(await this.deps.token('initial'))
    const known = this.deps.known()
    if (!known) {
      // Nothing to compare with yet: the stream from here on is this scope's.
      inbox.acceptScope({ t: 'scope', scope, added: [], removed: [] })
      return
    }
    const addedKeys = scope.filter((k) => !known.includes(k))
    const removedKeys = known.filter((k) => !scope.includes(k))
    if (addedKeys.length === 0 && removedKeys.length === 0) return
    const removed = this.collectionsOf(removedKeys).names
    const added = this.collectionsOf(addedKeys)
    if (added.unknown.length > 0) {
      this.deps.failed(new HubError('invalid', `scope keys ${added.unknown.join(', ')} were added, whose collections this client does not know: give them in collectionScopes to backfill them`))
    }
    inbox.acceptScope({ t: 'scope', scope, added: added.names, removed })
    if (added.names.length === 0) return inbox.acceptBackfill({ collections: [], items: [] }, 'rest', scope)
    // Everything of the added collections up to the cursor: what follows comes with the stream.
    const upTo = inbox.streamTo
    let since = 0
    for (;;) {
      const page = await api.pull(await this.deps.token('initial'), { since, limit: 1000, collections: added.names, ...(inbox.epoch ? { epoch: inbox.epoch } : {}) })
      if ('reset' in page) return // the stream's own reset handling starts everything over
      const items = page.items.filter((c) => c.seq <= upTo)
      const done = !page.more || page.cursor >= upTo
      inbox.acceptBackfill({ collections: added.names, items, ...(done ? {} : { more: true as const }) }, 'rest', done ? scope : undefined)
      if (done) return
      since = page.cursor
    }
  }
}
