import type { BackfillPage, ChangeSource, PageBounds } from './change-source.ts'
import { CollectionFilters, type CollectionFilter } from './collection-filter.ts'
import type { PullOutcome, SyncEngine } from './engine.ts'
import type { FeedListener, Feeds } from './feed.ts'

/** The ChangeSource of a hub node: reads through the engine, live batches from the node's feeds. */
export class EngineChangeSource implements ChangeSource {
  private readonly filters: CollectionFilters

  constructor(
    private readonly engine: SyncEngine,
    private readonly feeds: Feeds,
  ) {
    this.filters = new CollectionFilters(engine.registry)
  }

  async scopeOf(user: string): Promise<string[] | null> {
    return (await this.engine.streamState(user)).scope
  }

  filterFor(scope: readonly string[] | null, requested?: readonly string[]): CollectionFilter {
    return this.filters.of(scope, requested)
  }

  readPage(user: string, since: number, filter: CollectionFilter, bounds: PageBounds & { epoch?: string }): Promise<PullOutcome> {
    return this.engine.readPage(user, { since, limit: bounds.limit, collections: filter.names && [...filter.names], epoch: bounds.epoch, maxBytes: bounds.maxBytes })
  }

  readBackfill(user: string, collections: readonly string[], since: number, upTo: number, bounds: PageBounds): Promise<BackfillPage> {
    return this.engine.readBackfill(user, { collections, since, upTo, limit: bounds.limit, maxBytes: bounds.maxBytes })
  }

  follow(user: string, listener: FeedListener): () => void {
    return this.feeds.attach(user, listener)
  }

  ready(): Promise<void> {
    return this.feeds.ready()
  }

  seed(user: string, head: number): void {
    this.feeds.seed(user, head)
  }
}
