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
  remember(user: UserState, devices: Iterable<DeviceState>): void {
    const known: Known = { user: { ...user }, devices: new Map() }
    for (const d of devices) if (d.userId === user.userId && !d.revoked) known.devices.set(d.deviceId, d.lastMid)
    this.set(user.userId, known)
  }

  /** Takes what a committed write left behind. */
  wrote(user: UserState, seq: number, devices: Array<{ deviceId: string; lastMid: number }>): void {
    const known = this.users.get(user.userId) ?? { user: { ...user }, devices: new Map<string, number>() }
    known.user = { ...user, seq }
    for (const d of devices) known.devices.set(d.deviceId, d.lastMid)
    this.set(user.userId, known)
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
