import type { Change } from '../../protocol/records.ts'
import type { CollectionFilter } from '../../src/sync/collection-filter.ts'
import type { LiveBatch } from '../../src/sync/feed.ts'
import type { FrameSink, StoredFrame, StreamNotice } from '../../src/sync/frame-sink.ts'

/** One thing the subscription did to its sink, as the client would see it. */
export type Sent =
  | { via: 'notice'; frame: StreamNotice }
  | { via: 'live'; frame: { t: 'changes'; from: number; to: number; items: Change[] } }
  | { via: 'paced'; frame: StoredFrame }
  | { via: 'retry' }

/**
 * A FrameSink that records what it is given, for the subscription's tests: frames in order and
 * how they came (at once, live, paced). A test makes the reader slow (`stall`) and quick again
 * (`drain`). It passes the FrameSink contract suite (test/transport/frame-sink.test.ts) like
 * the socket's sink.
 */
export class RecordingSink implements FrameSink {
  readonly sent: Sent[] = []
  /** The batch objects live sends were given (a whole batch is the one every socket shares). */
  readonly liveBatches: LiveBatch[] = []
  /** Calls that came after `end` (the sink drops them; a subscription should not make them). */
  readonly afterEnd: string[] = []
  /** Called with each frame as it is recorded (a model client checks and applies it). */
  onSent: ((s: Sent) => void) | undefined
  private stalled = false
  private isEnded = false
  private waiting: Array<() => void> = []

  send(frame: StreamNotice): void {
    this.record({ via: 'notice', frame }, frame.t)
  }

  sendLive(batch: LiveBatch, filter: CollectionFilter): void {
    if (!this.isEnded) this.liveBatches.push(batch)
    this.record({ via: 'live', frame: { t: 'changes', from: batch.from, to: batch.to, items: filter.pick(batch.changes) } }, 'live changes')
  }

  async sendPaced(build: () => StoredFrame, current: () => boolean): Promise<boolean> {
    if (this.isEnded) this.afterEnd.push('paced')
    if (this.stalled && !this.isEnded) await new Promise<void>((resolve) => this.waiting.push(resolve))
    if (this.isEnded || !current()) return false
    const frame = build()
    this.record({ via: 'paced', frame }, frame.t)
    return true
  }

  closeForRetry(): void {
    this.record({ via: 'retry' }, 'retry')
  }

  /** The reader stops reading: paced sends wait. */
  stall(): void {
    this.stalled = true
  }

  /** The reader reads again: paced sends go on. */
  drain(): void {
    this.stalled = false
    for (const wake of this.waiting.splice(0)) wake()
  }

  get waitingSends(): number {
    return this.waiting.length
  }

  get ended(): boolean {
    return this.isEnded
  }

  /** The connection ended. */
  end(): void {
    this.isEnded = true
    this.drain()
  }

  /** The frames recorded, without how they came. */
  frames(): Array<StreamNotice | StoredFrame | { t: 'changes'; from: number; to: number; items: Change[] } | { t: 'retry' }> {
    return this.sent.map((s) => (s.via === 'retry' ? { t: 'retry' as const } : s.frame))
  }

  private record(s: Sent, what: string): void {
    if (this.isEnded) return void this.afterEnd.push(what)
    this.sent.push(s)
    this.onSent?.(s)
  }
}
