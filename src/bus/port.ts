import type { Change } from '../../protocol/records.ts'

/**
 * What a node tells the others after a commit: the user's changes from cursor `from` to `to`.
 * `changes` is absent when the batch was too large to carry (a poke): receivers read the range
 * from the store.
 */
export interface ChangeBatch {
  user: string
  from: number
  to: number
  changes?: Change[]
  /** Holds plaintext secrets (provider keys): delivered whole on this node, a poke to any other. */
  sensitive?: true
}

/** Cluster-wide control events: sockets affected by them close on every node. */
export type ControlMessage =
  | { type: 'device_revoked'; user: string; device: string }
  | { type: 'user_disabled'; user: string }
  /** The user's history was replaced (an import's overwrite): every socket of the user gets `reset`. */
  | { type: 'user_reset'; user: string; reason: 'epoch_changed' | 'cursor_purged'; epoch?: string }
  | { type: 'scope_changed'; user: string; scope: string[] }

/**
 * The fan-out port. At-most-once: a subscriber may miss batches (the store fills gaps), but it
 * never gets one that was not committed. Adapters: in-process (single node) and Redis.
 */
export interface Bus {
  readonly kind: 'memory' | 'redis'
  publish(batch: ChangeBatch): void
  /** Listens to one user's batches on this node. Returns the unsubscribe function. */
  subscribe(user: string, onBatch: (batch: ChangeBatch) => void): () => void
  publishControl(message: ControlMessage): void
  onControl(handler: (message: ControlMessage) => void): () => void
  /** Resolves once the bus is connected and every subscribe and unsubscribe made so far is in effect. */
  ready(): Promise<void>
  /** Called after the bus lost messages it cannot name (e.g. Redis reconnected): check every user. */
  onResync(handler: () => void): () => void
  close(): Promise<void>
}
