import { Subscription, type SubRequest } from '../../src/sync/subscription.ts'
import { MemoryChangeSource } from './memory-change-source.ts'
import { RecordingSink } from './recording-sink.ts'

export const USER = 'u'

/** Lets every continuation that is ready run (the subscription's awaits resume in microtasks). */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

/**
 * A subscription on the in-memory source (reads answered only when the test says) writing to a
 * recording sink: no socket, no database, nothing timed. A test orders the store's answers,
 * the live batches and the reader's pace itself.
 */
export function subscriptionHarness(opts: { pageSize?: number } = {}) {
  const source = new MemoryChangeSource({ manual: true })
  source.addUser(USER)
  const sink = new RecordingSink()
  const sub = new Subscription(USER, source, sink, { limit: opts.pageSize ?? 1000, maxBytes: 1 << 20 }, null)
  const failures: unknown[] = []
  return {
    source,
    sink,
    sub,
    /** Sends a `sub`; a rejection (the caller's error answer) is kept in `failures`. */
    subscribe(req: Partial<SubRequest> = {}): Promise<void> {
      return sub.subscribe({ ref: 1, since: 0, ...req }).catch((err) => void failures.push(err))
    },
    failures,
    /** Answers reads, oldest first, until none is left. */
    async releaseAll(): Promise<void> {
      await settle()
      while (source.pending.length > 0) {
        source.pending[0]!.release()
        await settle()
      }
    },
    /** A stream that is live: these records committed one per batch, this scope stored, a `sub` from 0 answered in full. */
    async live(records: Array<[string, string]>, scope: string[] | null = null): Promise<void> {
      for (const [collection, id] of records) source.commit(USER, [{ collection, id }])
      source.setScope(USER, scope)
      void this.subscribe()
      await this.releaseAll()
    },
    /** The user's scope changes as `PUT /v1/sync/scope` changes it: stored, then announced. */
    changeScope(scope: string[]): void {
      source.setScope(USER, scope)
      sub.scopeChanged(scope)
    },
    /** Commits one record per id in one batch and hands it to followers. */
    commitLive(...puts: Array<[string, string]>) {
      const batch = source.commit(USER, puts.map(([collection, id]) => ({ collection, id })))
      source.deliver(batch)
      return batch
    },
    commit(...puts: Array<[string, string]>) {
      return source.commit(USER, puts.map(([collection, id]) => ({ collection, id })))
    },
    /** What was sent, one short line per frame. */
    log(): string[] {
      return sink.sent.map((s) => {
        if (s.via === 'retry') return 'retry'
        const f = s.frame
        switch (f.t) {
          case 'changes':
            return `${s.via} changes ${f.from}→${f.to} [${f.items.map((i) => i.seq).join(',')}]`
          case 'backfill':
            return `backfill ${f.collections.join(',')} [${f.items.map((i) => i.seq).join(',')}]${f.more ? ' more' : ''}`
          case 'synced':
            return `synced ${f.ref} @${f.cursor}`
          case 'scope':
            return `scope +${f.added.join(',')} -${f.removed.join(',')}`
          case 'reset':
            return `reset ${f.reason}${f.ref !== undefined ? ` ref ${f.ref}` : ''}`
        }
      })
    },
  }
}
