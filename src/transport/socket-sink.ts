import { encodeFrame, type Encoding } from '../../protocol/codec.ts'
import type { HubFrame } from '../../protocol/frames.ts'
import type { CollectionFilter } from '../sync/collection-filter.ts'
import type { LiveBatch } from '../sync/feed.ts'
import type { FrameSink, StoredFrame } from '../sync/frame-sink.ts'
import { encodeChanges } from './change-frames.ts'
import type { Connection } from './connection.ts'
import type { EncodedFrame, LiveFrames } from './live-frames.ts'

export interface SocketSinkOptions {
  maxFrameBytes: number
  /** A socket whose unsent bytes exceed this is a slow consumer: closed, it resumes by cursor. */
  sendBufferBytes: number
  liveFrames: LiveFrames
  /** The socket fell behind on live changes. */
  onSlowConsumer(): void
  /** The stream cannot go on (the store failed): close so the client reconnects and resumes. */
  onRetryLater(): void
  /** Frames of changes and backfills sent (metrics). */
  delivered?(frames: number): void
}

/**
 * Writes one socket's frames and owns its backpressure: live changes go at once and a socket
 * that lets them pile up is a slow consumer; stored frames (backlog, backfill) wait for the
 * client to read, so a device catching up is never called slow.
 */
export class SocketSink implements FrameSink {
  /** Set from the client's first frame (binary: msgpack, text: JSON). */
  encoding: Encoding = 'msgpack'
  private ended = false
  private waitingForRoom: Array<() => void> = []

  constructor(
    private readonly conn: Connection,
    private readonly opts: SocketSinkOptions,
  ) {}

  send(frame: HubFrame): void {
    if (!this.ended) this.conn.send(encodeFrame(frame, this.encoding))
  }

  /** Runs `fn`; what it sends on this socket leaves in one write. */
  together(fn: () => void): void {
    this.conn.cork(fn)
  }

  sendLive(batch: LiveBatch, filter: CollectionFilter): void {
    if (this.ended) return
    const frames = this.opts.liveFrames.of(batch, filter, this.encoding)
    for (const f of frames) this.conn.send(f)
    this.opts.delivered?.(frames.length)
    if (this.conn.bufferedAmount > this.opts.sendBufferBytes) this.opts.onSlowConsumer()
  }

  async sendPaced(build: () => StoredFrame, current: () => boolean): Promise<boolean> {
    let parts: EncodedFrame[] | undefined
    for (let i = 0; !parts || i < parts.length; i++) {
      if (this.conn.bufferedAmount > this.opts.sendBufferBytes / 2) await this.room()
      if (this.ended || !current()) return false
      parts ??= this.encode(build())
      this.conn.send(parts[i]!)
    }
    this.opts.delivered?.(parts.length)
    return true
  }

  /** A stored frame as it travels: `changes` split at the frame limit, a backfill page whole. */
  private encode(frame: StoredFrame): EncodedFrame[] {
    if (frame.t === 'changes') return encodeChanges(frame.from, frame.to, frame.items, this.encoding, this.opts.maxFrameBytes)
    return [encodeFrame(frame, this.encoding)]
  }

  closeForRetry(): void {
    if (!this.ended) this.opts.onRetryLater()
  }

  /** The transport says the socket's send buffer went below its threshold. */
  writable(): void {
    for (const wake of this.waitingForRoom.splice(0)) wake()
  }

  /** The connection ended: nothing more is sent, and paced sends stop. */
  end(): void {
    this.ended = true
    this.writable()
  }

  private room(): Promise<void> {
    if (this.ended) return Promise.resolve()
    return new Promise((resolve) => this.waitingForRoom.push(resolve))
  }
}
