import type { UserStatus } from '../store/user-store.ts'

export type { UserStatus }

/** Bound on entries; past it the cache starts over rather than growing with the user base. */
const MAX_ENTRIES = 50_000

/**
 * A short-lived per-user status cache, so authenticated REST calls do not pay a query each. The
 * lookup of a missing entry is shared by concurrent callers. `forget` makes the next read go to
 * the database (local changes); other nodes see a change within `ttlMs`.
 */
export class UserStatusCache {
  private readonly entries = new Map<string, { at: number; value: Promise<UserStatus | undefined> }>()

  constructor(
    private readonly load: (userId: string) => Promise<UserStatus | undefined>,
    private readonly ttlMs = 1000,
    private readonly now: () => number = Date.now,
  ) {}

  get(userId: string): Promise<UserStatus | undefined> {
    const t = this.now()
    const hit = this.entries.get(userId)
    if (hit && t - hit.at < this.ttlMs) return hit.value
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear()
    const value = this.load(userId)
    const entry = { at: t, value }
    this.entries.set(userId, entry)
    // A failed read (database down) must not be served from the cache.
    value.catch(() => this.entries.get(userId) === entry && this.entries.delete(userId))
    return value
  }

  forget(userId: string): void {
    this.entries.delete(userId)
  }
}
