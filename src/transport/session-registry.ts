/** Hears of every socket that comes and goes (cluster presence, for the device list). */
export interface PresenceSink {
  online(user: string, device: string): void
  offline(user: string, device: string): void
}

/** The sockets this node holds, by user: control events and the node's drain reach them through here. */
export interface RegisteredSession {
  readonly userId: string
  readonly deviceId: string
  bye(reason: 'draining' | 'token_expired' | 'revoked' | 'slow_consumer', retryMs?: number): void
  /** The user's sync scope changed (on any node): re-filter, and backfill what it now covers. */
  scopeChanged(scope: string[]): void
  /** The user's history was replaced: the socket is told `reset` and its subscription ends. */
  reset?(reason: 'epoch_changed' | 'cursor_purged', epoch?: string): void
}

export class SessionRegistry {
  private readonly byUser = new Map<string, Set<RegisteredSession>>()
  private total = 0

  /** `presence` hears of every socket that comes and goes, for the cluster-wide device list. */
  constructor(private readonly presence?: PresenceSink) {}

  add(session: RegisteredSession): void {
    let set = this.byUser.get(session.userId)
    if (!set) this.byUser.set(session.userId, (set = new Set()))
    if (!set.has(session)) {
      set.add(session)
      this.total++
      this.presence?.online(session.userId, session.deviceId)
    }
  }

  remove(session: RegisteredSession): void {
    const set = this.byUser.get(session.userId)
    if (set?.delete(session)) {
      this.total--
      this.presence?.offline(session.userId, session.deviceId)
      if (set.size === 0) this.byUser.delete(session.userId)
    }
  }

  forUser(userId: string): RegisteredSession[] {
    return [...(this.byUser.get(userId) ?? [])]
  }

  all(): RegisteredSession[] {
    return [...this.byUser.values()].flatMap((s) => [...s])
  }

  get size(): number {
    return this.total
  }

  get users(): number {
    return this.byUser.size
  }
}
