import type { SyncStore } from '../store/sync-store.ts'
import { deviceKey } from '../store/rows.ts'

/**
 * Device acks are advisory (lag, admin view) and frequent: keep the newest per device and
 * write them in one statement per interval instead of one write per frame.
 */
export class AckRecorder {
  private pending = new Map<string, { userId: string; deviceId: string; cursor: number }>()
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly store: SyncStore,
    intervalMs = 1000,
  ) {
    this.timer = setInterval(() => void this.flush().catch(() => {}), intervalMs)
    this.timer.unref()
  }

  record(userId: string, deviceId: string, cursor: number): void {
    const key = deviceKey(userId, deviceId)
    const prev = this.pending.get(key)
    if (!prev || prev.cursor < cursor) this.pending.set(key, { userId, deviceId, cursor })
  }

  async flush(): Promise<void> {
    if (this.pending.size === 0) return
    const acks = [...this.pending.values()]
    this.pending = new Map()
    await this.store.saveAcks(acks, Date.now())
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.flush().catch(() => {})
  }
}
