import type { DeviceState, UserState } from '../store/rows.ts'

interface Known {
  user: UserState
  /** Last applied mid of each of the user's devices this node has written for (not revoked). */
  devices: Map<string, number>
}

/**
 * What this node last read or wrote of a user's counter and devices, so a batch of new records
 * can skip its read: the write checks the same state under its row locks and refuses if any of
 * it moved (another node wrote, a purge, a revoke), and the batch is then planned from a fresh
 * read. A stale entry costs one extra round trip, never a wrong answer. Bounded, oldest first out.
 */
export class KnownState {
  private readonly users = new Map<string, Known>()

  constructor(private readonly capacity = 100_000) {}

  get(userId: string): Known | undefined {
    return this.users.get(userId)
  }

  /** Takes what a fresh read saw. */
  remember(users: Iterable<UserState>, devices: Iterable<DeviceState>): void {
    const read = new Map<string, Known>()
    for (const user of users) read.set(user.userId, { user: { ...user }, devices: new Map() })
    for (const d of devices) if (!d.revoked) read.get(d.userId)?.devices.set(d.deviceId, d.lastMid)
    for (const [userId, known] of read) this.set(userId, known)
  }

  /** Takes what a committed write left behind: each user's new counter and its devices' mids. */
  wrote(users: Array<{ seq: number; read: UserState }>, devices: Array<{ userId: string; deviceId: string; lastMid: number }>): void {
    for (const { seq, read } of users) {
      const known = this.users.get(read.userId) ?? { user: read, devices: new Map<string, number>() }
      known.user = { ...read, seq }
      this.set(read.userId, known)
    }
    for (const d of devices) this.users.get(d.userId)?.devices.set(d.deviceId, d.lastMid)
  }

  forget(userId: string): void {
    this.users.delete(userId)
  }

  private set(userId: string, known: Known): void {
    this.users.delete(userId) // re-inserted last: Map order is the eviction order
    this.users.set(userId, known)
    if (this.users.size > this.capacity) this.users.delete(this.users.keys().next().value!)
  }
}
