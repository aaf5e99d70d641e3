import { applyBatch, emptySnapshot, type Meta, type OutboxEntry, type Snapshot, type StorageAdapter, type StoredRecord, type WriteBatch } from './port.ts'

/**
 * State in memory: lost with the process. One instance handed to a second client (after the
 * first was stopped) carries the state over, which is how tests stand for a restart.
 */
export class MemoryStorage implements StorageAdapter {
  private meta: Meta = emptySnapshot().meta
  private readonly records = new Map<string, StoredRecord>()
  private readonly outbox = new Map<number, OutboxEntry>()
  /** Batches written so far (tests read it). */
  writes = 0

  async load(): Promise<Snapshot> {
    return this.current()
  }

  /** A copy of the state as written so far (tests and devtools read it without waiting). */
  current(): Snapshot {
    return structuredClone({
      meta: this.meta,
      outbox: [...this.outbox.values()].sort((a, b) => a.mid - b.mid),
      records: [...this.records.values()],
    })
  }

  async write(batch: WriteBatch): Promise<void> {
    this.writes++
    applyBatch(this.meta, batch, this.records, this.outbox)
  }

  async close(): Promise<void> {}
}
