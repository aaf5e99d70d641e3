import { BatchBuilder, type StorageAdapter, type WriteBatch } from './port.ts'

/**
 * Serializes writes to the storage and merges those that queue behind one in flight into a
 * single batch (one fsync or one IndexedDB transaction for many enqueues or cursor moves).
 * Each caller's promise settles when the write holding its batch is durable.
 */
export class StateWriter {
  private pending: { batch: BatchBuilder; waiters: Array<{ resolve(): void; reject(e: unknown): void }> } | undefined
  private running: Promise<void> | undefined

  constructor(private readonly storage: StorageAdapter) {}

  write(batch: WriteBatch): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending ??= { batch: new BatchBuilder(), waiters: [] }
      this.pending.batch.add(batch)
      this.pending.waiters.push({ resolve, reject })
      if (!this.running) this.running = this.drain()
    })
  }

  /** Resolves once every write asked for so far is durable. */
  async idle(): Promise<void> {
    while (this.running) await this.running
  }

  private async drain(): Promise<void> {
    // Let the current tick's writes join the first batch too.
    await Promise.resolve()
    while (this.pending) {
      const { batch, waiters } = this.pending
      this.pending = undefined
      try {
        await this.storage.write(batch.build())
        for (const w of waiters) w.resolve()
      } catch (err) {
        for (const w of waiters) w.reject(err)
      }
    }
    this.running = undefined
  }
}
