import { systemClock, type Clock } from '../time/clock.ts'

/** Where a device is connected right now: which nodes hold its sockets, and since when. */
export interface DevicePresence {
  device: string
  nodes: string[]
  since: number
}

/**
 * Which of a user's devices are online, across every node. Each node reports its own sockets;
 * entries of a node that died without saying so expire (see the Redis adapter).
 */
export interface Presence {
  online(user: string, device: string): void
  offline(user: string, device: string): void
  list(user: string): Promise<DevicePresence[]>
  close(): Promise<void>
}

/** Counts this node's sockets per user and device, so a device's second socket adds nothing. */
export class LocalSockets {
  private readonly counts = new Map<string, Map<string, { n: number; since: number }>>()

  /** Returns true when this is the device's first socket on this node. */
  add(user: string, device: string, now: number): boolean {
    let devices = this.counts.get(user)
    if (!devices) this.counts.set(user, (devices = new Map()))
    const entry = devices.get(device)
    if (entry) return void entry.n++, false
    devices.set(device, { n: 1, since: now })
    return true
  }

  /** Returns true when the device's last socket on this node went. */
  remove(user: string, device: string): boolean {
    const devices = this.counts.get(user)
    const entry = devices?.get(device)
    if (!devices || !entry) return false
    if (--entry.n > 0) return false
    devices.delete(device)
    if (devices.size === 0) this.counts.delete(user)
    return true
  }

  since(user: string, device: string): number | undefined {
    return this.counts.get(user)?.get(device)?.since
  }

  *entries(): Generator<{ user: string; device: string; since: number }> {
    for (const [user, devices] of this.counts) for (const [device, e] of devices) yield { user, device, since: e.since }
  }
}

/** Single node: presence is this node's sockets. */
export function createMemoryPresence(opts: { nodeId: string; clock?: Clock }): Presence {
  const { nodeId, clock = systemClock } = opts
  const local = new LocalSockets()
  return {
    online: (user, device) => void local.add(user, device, clock.now()),
    offline: (user, device) => void local.remove(user, device),
    list: async (user) =>
      [...local.entries()].filter((e) => e.user === user).map((e) => ({ device: e.device, nodes: [nodeId], since: e.since })),
    close: async () => {},
  }
}
