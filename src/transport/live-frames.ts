import type { Encoding } from '../../protocol/codec.ts'
import type { CollectionFilter } from '../sync/collection-filter.ts'
import type { LiveBatch } from '../sync/feed.ts'
import { encodeChanges } from './change-frames.ts'

export type EncodedFrame = Uint8Array | string

/**
 * The node's encoded live frames. A feed hands a batch to every socket of its user as one
 * object, in one synchronous pass: the batch is filtered and encoded once per (encoding,
 * filter) for all of them. Only the batch being handed out is remembered (frames kept per batch
 * in a WeakMap made the live path measurably slower); a batch a socket held while catching up
 * and sends later is encoded again for it.
 */
export class LiveFrames {
  private batch: LiveBatch | undefined
  private encoded: Array<{ encoding: Encoding; filter: string; frames: EncodedFrame[] }> = []

  constructor(private readonly maxFrameBytes: number) {}

  /** The `changes` frames of `batch` narrowed by `filter`, split at the frame limit. */
  of(batch: LiveBatch, filter: CollectionFilter, encoding: Encoding): EncodedFrame[] {
    if (batch !== this.batch) {
      this.batch = batch
      this.encoded = []
    }
    for (const e of this.encoded) if (e.filter === filter.key && e.encoding === encoding) return e.frames
    const frames = encodeChanges(batch.from, batch.to, filter.pick(batch.changes), encoding, this.maxFrameBytes)
    this.encoded.push({ encoding, filter: filter.key, frames })
    return frames
  }
}
