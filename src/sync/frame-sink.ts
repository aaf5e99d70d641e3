import type { HubFrame } from '../../protocol/frames.ts'
import type { WireChange } from './changes.ts'
import type { CollectionFilter } from './collection-filter.ts'
import type { LiveBatch } from './feed.ts'

/** A frame read from the store: a backlog (or gap) page, or a page of a backfill. */
export type StoredFrame =
  | { t: 'changes'; from: number; to: number; items: WireChange[] }
  | { t: 'backfill'; collections: readonly string[]; items: WireChange[]; more?: true }

/** What the stream tells the client besides changes. */
export type StreamNotice = Extract<HubFrame, { t: 'synced' | 'scope' | 'reset' }>

/**
 * Where a subscription's frames go: one socket. The sink encodes, splits at the frame limit,
 * and owns the socket's backpressure; the subscription decides what is sent and when.
 */
export interface FrameSink {
  /** Sends a notice at once. */
  send(frame: StreamNotice): void
  /**
   * Sends a live batch as `changes`, its items narrowed by `filter`. A sink may close a socket
   * that does not keep up (the client resumes by cursor).
   */
  sendLive(batch: LiveBatch, filter: CollectionFilter): void
  /**
   * Sends a frame read from the store, paced by the reader: once the socket has room, and only
   * while `current()` holds, `build()` makes the frame (so it reflects the stream as it is when
   * it goes, not when it was read) and it goes out, part by part if it is over the frame limit,
   * each part waiting for room again. Resolves true when all of it went, false when it stopped
   * (the socket ended, or `current()` turned false).
   */
  sendPaced(build: () => StoredFrame, current: () => boolean): Promise<boolean>
  /** The store failed mid-stream: the socket closes with "try again", and the client resumes by cursor. */
  closeForRetry(): void
}
