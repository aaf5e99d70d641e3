import type { WireChange } from './changes.ts'
import type { CollectionFilter } from './collection-filter.ts'
import type { PullOutcome } from './engine.ts'
import type { FeedListener } from './feed.ts'

/** How much one read of the stream may return: rows, and bytes of record data (at least one row). */
export interface PageBounds {
  limit: number
  maxBytes: number
}

/** One page of a backfill: records of some collections with seq ≤ a bound, in seq order. */
export interface BackfillPage {
  items: WireChange[]
  /** More records follow: read again from `next`. */
  more: boolean
  next: number
}

/**
 * What a subscription needs of the sync engine: the user's scope, pages of the stream and of a
 * backfill, and the live batches of the user as this node receives them. The engine with the
 * node's feeds implements it (engine-change-source.ts); the subscription's tests use an
 * in-memory one, and both pass test/sync/change-source-contract.ts.
 */
export interface ChangeSource {
  /** The user's sync scope as stored (null: every scope key); HubError `unauthorized` for an unknown user. */
  scopeOf(user: string): Promise<string[] | null>
  /** The filter of a reader with this scope that asked for `requested` (undefined: everything in scope). */
  filterFor(scope: readonly string[] | null, requested?: readonly string[]): CollectionFilter
  /**
   * The user's stream after `since`, through `filter`: items in seq order, `cursor` the page's
   * end, `more` when the stream goes on; or why `since` (with `epoch`) cannot be served.
   */
  readPage(user: string, since: number, filter: CollectionFilter, bounds: PageBounds & { epoch?: string }): Promise<PullOutcome>
  /** Records of `collections` with since < seq ≤ upTo, their latest versions, in seq order. */
  readBackfill(user: string, collections: readonly string[], since: number, upTo: number, bounds: PageBounds): Promise<BackfillPage>
  /** Starts handing `listener` the user's live batches, in order; returns the function that stops it. */
  follow(user: string, listener: FeedListener): () => void
  /** Resolves once every `follow` so far receives what commits from now on (read the stream after this). */
  ready(): Promise<void>
  /** Tells the user's live stream where a reader found the head, for a stream that has not seen a batch yet. */
  seed(user: string, head: number): void
}
