import { encodeFrame, type Encoding } from '../../protocol/codec.ts'
import type { HubFrame } from '../../protocol/frames.ts'
import type { CollectionFilter } from '../sync/collection-filter.ts'
import type { LiveBatch } from '../sync/feed.ts'
import type { FrameSink, StoredFrame } from '../sync/frame-sink.ts'
import { encodeChanges } from './change-frames.ts'
import type { Connection } from './connection.ts'
import type { EncodedFrame, LiveFrames } from './live-frames.ts'

/** What every socket's sink shares (the session's dependencies hold it). */
export interface SocketSinkOptions {
  limits: { maxFrameBytes: number }
  /** A socket whose unsent bytes exceed this is a slow consumer: closed, it resumes by cursor. */
  sendBufferBytes: number
  liveFrames: LiveFrames
  /** `delivered`: frames of changes and backfills sent (metrics). */
  hooks?: { delivered?(frames: number): void }
}

/** Who ends the socket when its sink cannot go on. */
export interface SinkOwner {
  /** The socket fell behind on live changes. */
  slowConsumer(): void
  /** The stream cannot go on (the store failed): close so the client reconnects and resumes. */
  retryLater(): void
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
  private waitingForRoom: Array<() => void> | undefined

  constructor(
    private readonly conn: Connection,
    private readonly opts: SocketSinkOptions,
    private readonly owner: SinkOwner,
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
    this.opts.hooks?.delivered?.(frames.length)
    if (this.conn.bufferedAmount > this.opts.sendBufferBytes) this.owner.slowConsumer()
  }

  async sendPaced(build: () => StoredFrame, current: () => boolean): Promise<boolean> {
    let parts: EncodedFrame[] | undefined
    for (let i = 0; !parts || i < parts.length; i++) {
      if (this.conn.bufferedAmount > this.opts.sendBufferBytes / 2) await this.room()
      if (this.ended || !current()) return false
      parts ??= this.encode(build())
      this.conn.send(parts[i]!)
    }
    this.opts.hooks?.delivered?.(parts.length)
    return true
  }

  /** A stored frame as it travels: `changes` split at the frame limit, a backfill page whole. */
  private encode(frame: StoredFrame): EncodedFrame[] {
    if (frame.t === 'changes') return encodeChanges(frame.from, frame.to, frame.items, this.encoding, this.opts.limits.maxFrameBytes)
    return [encodeFrame(frame, this.encoding)]
  }

  closeForRetry(): void {
    if (!this.ended) this.owner.retryLater()
  }

  /** The transport says the socket's send buffer went below its threshold. */
  writable(): void {
    const waiting = this.waitingForRoom
    this.waitingForRoom = undefined
    for (const wake of waiting ?? []) wake()
  }

  /** The connection ended: nothing more is sent, and paced sends stop. */
  end(): void {
    this.ended = true
    this.writable()
  }

  private room(): Promise<void> {
    if (this.ended) return Promise.resolve()
    return new Promise((resolve) => (this.waitingForRoom ??= []).push(resolve))
  }
}
