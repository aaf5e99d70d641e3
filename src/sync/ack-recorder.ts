import type { SyncStore } from '../store/sync-store.ts'
import { deviceKey } from '../store/rows.ts'
import { systemClock, type Clock, type Timer } from '../time/clock.ts'

/** Flushes that may find a device's row busy before its ack is dropped (acks are advisory; the device sends newer ones). */
const MAX_TRIES = 3

interface PendingAck {
  userId: string
  deviceId: string
  cursor: number
  tries: number
}

/**
 * Device acks are advisory (lag, admin view) and frequent: keep the newest per device and
 * write them in one statement per interval instead of one write per frame.
 */
export class AckRecorder {
  private pending = new Map<string, PendingAck>()
  private readonly timer: Timer
  private readonly clock: Clock

  constructor(
    private readonly store: SyncStore,
    opts: { intervalMs?: number; clock?: Clock } = {},
  ) {
    this.clock = opts.clock ?? systemClock
    this.timer = this.clock.every(opts.intervalMs ?? 1000, () => void this.flush().catch(() => {}))
  }

  record(userId: string, deviceId: string, cursor: number): void {
    const key = deviceKey(userId, deviceId)
    const prev = this.pending.get(key)
    if (!prev || prev.cursor < cursor) this.pending.set(key, { userId, deviceId, cursor, tries: 0 })
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return
    const acks = [...this.pending.values()]
    this.pending = new Map()
    const unwritten = await this.store.saveAcks(acks, this.clock.now())
    // A row a commit held just then is tried at the next flush, unless a newer ack came meanwhile.
    for (const a of unwritten) {
      const key = deviceKey(a.userId, a.deviceId)
      if (a.tries + 1 < MAX_TRIES && !this.pending.has(key)) this.pending.set(key, { ...a, tries: a.tries + 1 })
    }
  }

  async stop(): Promise<void> {
    this.timer.cancel()
    await this.flush().catch(() => {})
  }
}
