import type { Logger } from 'pino'
import type { AuthService } from '../auth/service.ts'
import type { Config } from '../ops/config.ts'
import type { Metrics } from '../ops/metrics.ts'
import type { Database } from './database.ts'
import { PurgeStore } from '../store/purge-store.ts'
import { ReplayAnswerStore } from '../store/replay-answer-store.ts'
import type { Feeds } from '../sync/feed.ts'
import { purgeExpired } from '../sync/purge.ts'
import { pruneReplayAnswers } from '../sync/replay-window.ts'
import type { Clock } from '../time/clock.ts'

/** Every refresh adds a row; expired and revoked ones are only history. */
const TOKEN_PRUNE_EVERY_MS = 3600_000

export interface Maintenance {
  /** Removes what outlived its time in the recycle bin as of `now` (the clock's now by default). */
  purge(now?: number): Promise<{ users: number; records: number }>
  /** Drops replay answers older than each device's latest SYNCHUB_REPLAY_WINDOW ops. */
  pruneReplayAnswers(): Promise<{ devices: number; answers: number }>
  close(): void
}

/**
 * The node's periodic jobs, each on the clock: the position check (every feed against the
 * database), the recycle bin's purge followed by the replay answers' prune, and the refresh
 * tokens' prune. Every node runs them; each is safe to run on several nodes at once.
 */
export function startMaintenance(config: Config, deps: { database: Database; feeds: Feeds; auth: AuthService; metrics: Metrics; log: Logger; clock: Clock }): Maintenance {
  const { feeds, auth, metrics, log, clock } = deps
  const purgeStore = new PurgeStore(deps.database.db)
  const replayStore = new ReplayAnswerStore(deps.database.db)
  const purge = async (now = clock.now()) => {
    const purged = await purgeExpired(purgeStore, now)
    metrics.pruned.inc({ what: 'records' }, purged.records)
    return purged
  }
  const pruneAnswers = async () => {
    const pruned = await pruneReplayAnswers(replayStore, config.replayWindow)
    metrics.pruned.inc({ what: 'replay_answers' }, pruned.answers)
    return pruned
  }
  const timers = [
    clock.every(config.positionCheckMs, () => void feeds.checkAll()),
    clock.every(config.purgeIntervalMs, () =>
      // One after the other, each failing on its own: a failed purge does not keep the prune from running.
      void purge()
        .then((r) => r.records > 0 && log.info(r, 'purged expired records from the recycle bin'), (err) => log.warn({ err }, 'purge failed'))
        .then(pruneAnswers)
        .then((r) => r.answers > 0 && log.info(r, 'dropped replay answers past the replay window'), (err) => log.warn({ err }, 'replay answer prune failed')),
    ),
    clock.every(TOKEN_PRUNE_EVERY_MS, () => void auth.pruneRefreshTokens().catch((err) => log.warn({ err }, 'refresh token prune failed'))),
  ]
  return {
    purge,
    pruneReplayAnswers: pruneAnswers,
    close: () => timers.forEach((t) => t.cancel()),
  }
}
