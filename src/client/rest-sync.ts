import type { Result } from '../../protocol/ops.ts'
import { Backoff, type BackoffOptions } from './backoff.ts'
import type { Clock } from './clock.ts'
import { RestError, type HubApi } from './hub-api.ts'
import type { Inbox } from './inbox.ts'
import type { Outbox } from './outbox.ts'
import type { TokenReason } from './tokens.ts'

export interface RestSyncDeps {
  api: HubApi
  token(reason: TokenReason): Promise<string>
  deviceId: string
  inbox: Inbox
  outbox: Outbox
  clock: Clock
  random: () => number
  collections?: readonly string[]
  /** Long-poll time of each pull (seconds, the hub allows up to 30). */
  waitSec: number
  backoff: BackoffOptions
  /** True once the outbox's mids are known to follow the hub's (see SyncClient). */
  midsReady(): Promise<boolean>
  results(results: Result[], via: 'rest'): void
  sent(mids: number[]): void
  /** A pull or push answered (true) or failed to reach the hub (false). */
  reachable(ok: boolean, err?: unknown): void
  /** A pull found nothing more to read: the device is up to date. */
  caughtUp(): void
  /** The hub refused the device or account (403): stop. */
  refused(err: RestError): void
}

/** Pages held back before the next pull while the app's handler catches up. */
const MAX_QUEUED_PAGES = 4
const PAGE_LIMIT = 1000

/**
 * The REST fallback: long-poll pulls from the inbox's position (`GET /v1/sync/pull?wait=`) and
 * the outbox pushed over `POST /v1/sync/push` with the same device id and mids, while the socket
 * cannot be used. Runs until stop(); the client probes the socket meanwhile.
 */
export class RestSync {
  private gen = 0
  private active = false
  private abort: AbortController | undefined
  private pushing = false
  private kickedMeanwhile = false
  private readonly pullBackoff: Backoff
  private readonly pushBackoff: Backoff

  constructor(private readonly deps: RestSyncDeps) {
    this.pullBackoff = new Backoff(deps.backoff, deps.random)
    this.pushBackoff = new Backoff(deps.backoff, deps.random)
  }

  get running(): boolean {
    return this.active
  }

  start(): void {
    if (this.active) return
    this.active = true
    const gen = ++this.gen
    void this.pullLoop(gen)
    this.kick()
  }

  /** Stops both loops; an answer still on its way is ignored (the socket resumes by cursor). */
  stop(): void {
    this.active = false
    this.gen++
    this.abort?.abort()
    this.abort = undefined
  }

  /** Something may be sendable: push it. */
  kick(): void {
    if (!this.active) return
    if (this.pushing) return void (this.kickedMeanwhile = true)
    this.pushing = true
    this.kickedMeanwhile = false
    void this.pushLoop(this.gen).finally(() => {
      this.pushing = false
      // Ops given back or enqueued while the loop was ending: one more round for them.
      if (this.kickedMeanwhile) this.kick()
    })
  }

  private async pullLoop(gen: number): Promise<void> {
    const { api, inbox } = this.deps
    let refused = false
    let more = false
    while (this.gen === gen) {
      try {
        const token = await this.deps.token(refused ? 'refused' : 'initial')
        const since = inbox.streamTo
        const wait = more ? 0 : this.deps.waitSec
        this.abort = new AbortController()
        const signal = this.abort.signal
        // A long poll whose connection died silently must not hang: give up a while after `wait`.
        const guard = this.deps.clock.setTimeout(() => this.abort?.abort(), (wait + 15) * 1000)
        let answer
        try {
          answer = await api.pull(token, { since, limit: PAGE_LIMIT, wait, ...(inbox.epoch ? { epoch: inbox.epoch } : {}), ...(this.deps.collections ? { collections: this.deps.collections } : {}) }, signal)
        } finally {
          this.deps.clock.clearTimeout(guard)
        }
        if (this.gen !== gen) return
        refused = false
        this.pullBackoff.reset()
        this.deps.reachable(true)
        if ('reset' in answer) {
          await inbox.acceptReset({ reason: answer.reset, epoch: answer.epoch })
          more = true
          continue
        }
        inbox.adoptEpoch(answer.epoch)
        inbox.acceptChanges({ from: since, to: answer.cursor, items: answer.items }, 'rest')
        more = answer.more
        if (!more) this.deps.caughtUp()
        if (inbox.pending > MAX_QUEUED_PAGES) await inbox.idle()
      } catch (err) {
        if (this.gen !== gen) return
        if (err instanceof RestError && err.code === 'unauthorized' && !refused) {
          refused = true
          continue
        }
        if (err instanceof RestError && err.code === 'forbidden') return this.deps.refused(err)
        this.deps.reachable(false, err)
        const wait = err instanceof RestError && err.retryAfter ? err.retryAfter * 1000 : this.pullBackoff.next()
        await sleep(this.deps.clock, wait)
      }
    }
  }

  private async pushLoop(gen: number): Promise<void> {
    const { api, outbox } = this.deps
    let refused = false
    while (this.gen === gen) {
      if (!(await this.deps.midsReady())) return
      if (this.gen !== gen) return
      const batch = outbox.take()
      if (!batch) return
      try {
        const token = await this.deps.token(refused ? 'refused' : 'initial')
        this.deps.sent(batch.map((e) => e.mid))
        const answer = await api.push(token, this.deps.deviceId, batch.map((e) => e.op))
        refused = false
        this.pushBackoff.reset()
        this.deps.results(answer.results, 'rest')
      } catch (err) {
        if (!(err instanceof RestError)) {
          // No answer: the ops may or may not be committed; their mids make the resend safe.
          outbox.giveBack()
          if (this.gen !== gen) return
          this.deps.reachable(false, err)
          await sleep(this.deps.clock, this.pushBackoff.next())
          continue
        }
        if (err.code === 'too_large') {
          outbox.shrink()
          continue
        }
        outbox.giveBack()
        if (err.code === 'unauthorized' && !refused) {
          refused = true
          continue
        }
        if (err.code === 'forbidden') return this.deps.refused(err)
        if (this.gen !== gen) return
        await sleep(this.deps.clock, err.retryAfter ? err.retryAfter * 1000 : this.pushBackoff.next())
      }
    }
  }
}

export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(() => resolve(), ms))
}
