/**
 * Group commit: pushes queue per lane, and each lane runs one transaction at a time holding
 * everything that queued while the previous one was committing. Under load one fsync covers
 * many pushes, so throughput is not capped by the disk's commit rate; idle, a push commits
 * alone with no added delay. A user always maps to the same lane, so one node never runs two
 * transactions for one user at once and commits (and so publishes) in seq order.
 *
 * A batch may hand back the work of answering it (acks, fan-out). The lane sends its next
 * batch's statement first and does that work while Postgres runs it, so the socket writes of
 * one batch and the commit of the next overlap instead of taking turns.
 *
 * With a linger, a lane that finds pushes queued when its commit returns answers that batch at
 * once, then waits `lingerMs` for more before committing them: fewer, larger commits, as
 * Postgres's own commit_delay, for a database that several nodes share. A lane that found its
 * queue empty goes idle, so a push arriving then never waits for the timer.
 */
export type Settle = () => void

export interface Lane<J> {
  queue: J[]
  running: boolean
}

export class GroupCommitter<J extends { userId: string; weight: number }> {
  private readonly lanes: Lane<J>[]

  constructor(
    laneCount: number,
    private readonly maxBatchWeight: number,
    private readonly runBatch: (jobs: J[]) => Promise<Settle | void>,
    private readonly lingerMs = 0,
  ) {
    this.lanes = Array.from({ length: Math.max(1, laneCount) }, () => ({ queue: [], running: false }))
  }

  submit(job: J): void {
    const lane = this.lanes[laneOf(job.userId, this.lanes.length)]!
    lane.queue.push(job)
    if (!lane.running) void this.drive(lane)
  }

  /** Jobs queued or running. */
  get pending(): number {
    return this.lanes.reduce((n, l) => n + l.queue.length + (l.running ? 1 : 0), 0)
  }

  private async drive(lane: Lane<J>): Promise<void> {
    lane.running = true
    let committed: Settle | void = undefined // answers of the batch that committed last
    let scheduled: Settle | undefined // answers waiting for the next tick
    const flush = () => {
      const s = scheduled
      scheduled = undefined
      s?.()
    }
    try {
      while (lane.queue.length > 0) {
        let weight = 0
        let n = 0
        while (n < lane.queue.length && (n === 0 || weight + lane.queue[n]!.weight <= this.maxBatchWeight)) {
          weight += lane.queue[n]!.weight
          n++
        }
        // runBatch answers every job itself; a throw here would be a bug, not a push failure.
        const committing = this.runBatch(lane.queue.splice(0, n))
        // The previous batch is answered once this one's statement is written: the Postgres pool
        // writes it in a process.nextTick queued during the call above, so one queued now runs after.
        // A batch that committed without I/O (PGlite) may get here first: answers run in commit order.
        const previous = committed
        committed = undefined // handed over: the finally below must not answer it again
        if (previous) {
          flush()
          scheduled = previous
          process.nextTick(() => scheduled === previous && flush())
        }
        committed = await committing
        if (this.lingerMs > 0 && lane.queue.length > 0) {
          const answer = committed
          committed = undefined // handed over, as above: never answered twice
          flush()
          answer?.()
          await new Promise((resolve) => setTimeout(resolve, this.lingerMs))
        }
      }
    } finally {
      flush()
      committed?.()
      lane.running = false
    }
  }
}

/** FNV-1a over the user id: stable lane choice. */
export function laneOf(userId: string, lanes: number): number {
  let h = 0x811c9dc5
  for (let i = 0; i < userId.length; i++) h = Math.imul(h ^ userId.charCodeAt(i), 0x01000193)
  return (h >>> 0) % lanes
}
