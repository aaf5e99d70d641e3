import type { Logger } from 'pino'
import { sleep, systemClock, type Clock } from '../time/clock.ts'

/** A socket the node tells to go: `bye` draining, then close 1012. */
export interface DrainedSocket {
  bye(reason: 'draining', retryMs: number): void
}

export interface DrainTarget {
  /** Readiness off: the load balancer stops sending new connections. */
  markUnready(): void
  /** The socket server refuses new sockets; open ones stay. */
  stopAccepting(): void
  /** Resolves when every push received so far has committed and been acked (not when all is quiet). */
  pushesSettled(): Promise<void>
  sockets(): DrainedSocket[]
}

export interface DrainOptions {
  /** Sockets told `bye` per batch, so a node with many sockets does not stampede the others. */
  batchSize?: number
  batchGapMs?: number
  /** The client waits a random time below this before reconnecting elsewhere. */
  maxRetryMs?: number
  /** Times the pauses between batches. */
  clock?: Clock
}

/**
 * A node leaving on purpose (SIGTERM): stop taking new sockets, let in-flight pushes commit and
 * be acked, then tell every socket to reconnect elsewhere (`bye` draining, close 1012) in
 * bounded batches with jittered retry times. Devices resume by cursor on another node; nothing
 * acked is lost because acks are only ever sent after commit.
 */
export async function drain(target: DrainTarget, log: Logger, opts: DrainOptions = {}): Promise<void> {
  const batchSize = opts.batchSize ?? 500
  const gap = opts.batchGapMs ?? 50
  const maxRetry = opts.maxRetryMs ?? 2000
  const clock = opts.clock ?? systemClock
  target.markUnready()
  target.stopAccepting()
  await target.pushesSettled()
  const sockets = target.sockets()
  log.info({ sockets: sockets.length }, 'draining: telling sockets to reconnect elsewhere')
  for (let i = 0; i < sockets.length; i += batchSize) {
    for (const s of sockets.slice(i, i + batchSize)) s.bye('draining', 250 + Math.floor(Math.random() * maxRetry))
    if (gap > 0 && i + batchSize < sockets.length) await sleep(clock, gap)
  }
  // Pushes that raced the byes still commit (their devices replay them by mid and get `dup`).
  await target.pushesSettled()
}
