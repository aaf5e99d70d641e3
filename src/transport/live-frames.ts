import type { Encoding } from '../../protocol/codec.ts'
import type { CollectionFilter } from '../sync/collection-filter.ts'
import type { LiveBatch } from '../sync/feed.ts'
import { encodeChanges } from './change-frames.ts'

export type EncodedFrame = Uint8Array | string
type ByFilter = Map<string, EncodedFrame[]>

/**
 * The node's encoded live frames: a batch reaches every socket of its user as one object, and
 * is filtered and encoded once per (encoding, filter), however many sockets take it. Entries
 * live as long as their batch does.
 */
export class LiveFrames {
  private readonly byBatch = new WeakMap<LiveBatch, { msgpack?: ByFilter; json?: ByFilter }>()

  constructor(private readonly maxFrameBytes: number) {}

  /** The `changes` frames of `batch` narrowed by `filter`, split at the frame limit. */
  of(batch: LiveBatch, filter: CollectionFilter, encoding: Encoding): EncodedFrame[] {
    let encodings = this.byBatch.get(batch)
    if (!encodings) this.byBatch.set(batch, (encodings = {}))
    const byFilter = (encodings[encoding] ??= new Map())
    let frames = byFilter.get(filter.key)
    if (!frames) byFilter.set(filter.key, (frames = encodeChanges(batch.from, batch.to, filter.pick(batch.changes), encoding, this.maxFrameBytes)))
    return frames
  }
}
