import { emptySnapshot, type Meta, type OutboxEntry, type Snapshot, type StorageAdapter, type StoredRecord, type WriteBatch } from './port.ts'

const META = 'meta'
const OUTBOX = 'outbox'
const RECORDS = 'records'

export interface IndexedDbStorageOptions {
  /** The IndexedDB factory (default: the page's `indexedDB`). */
  indexedDB?: IDBFactory
}

/**
 * State in an IndexedDB database of its own, for browsers. Each batch is one readwrite
 * transaction over the three stores, so it commits whole or not at all; write() resolves on the
 * transaction's `complete`. Meta fields are one row each; the outbox is keyed by mid; records by
 * [collection, id].
 */
export class IndexedDbStorage implements StorageAdapter {
  private db: IDBDatabase | undefined

  constructor(
    readonly name: string,
    private readonly opts: IndexedDbStorageOptions = {},
  ) {}

  async load(): Promise<Snapshot> {
    const factory = this.opts.indexedDB ?? globalThis.indexedDB
    if (!factory) throw new Error('IndexedDbStorage: this platform has no indexedDB')
    this.db = await request(
      (() => {
        const open = factory.open(this.name, 1)
        open.onupgradeneeded = () => {
          const db = open.result
          db.createObjectStore(META)
          db.createObjectStore(OUTBOX, { keyPath: 'mid' })
          db.createObjectStore(RECORDS, { keyPath: ['collection', 'id'] })
        }
        return open
      })(),
    )
    const tx = this.db.transaction([META, OUTBOX, RECORDS], 'readonly')
    const [keys, values, outbox, records] = await Promise.all([
      request(tx.objectStore(META).getAllKeys()),
      request(tx.objectStore(META).getAll()),
      request(tx.objectStore(OUTBOX).getAll() as IDBRequest<OutboxEntry[]>),
      request(tx.objectStore(RECORDS).getAll() as IDBRequest<StoredRecord[]>),
    ])
    const meta: Meta = emptySnapshot().meta
    keys.forEach((k, i) => ((meta as unknown as Record<string, unknown>)[String(k)] = values[i]))
    return { meta, outbox: outbox.sort((a, b) => a.mid - b.mid), records }
  }

  write(batch: WriteBatch): Promise<void> {
    const db = this.db
    if (!db) return Promise.reject(new Error('IndexedDbStorage: load() first (or it was closed)'))
    return new Promise((resolve, reject) => {
      const tx = db.transaction([META, OUTBOX, RECORDS], 'readwrite', { durability: 'strict' })
      tx.oncomplete = () => resolve()
      tx.onerror = () => reject(tx.error)
      tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'))
      const meta = tx.objectStore(META)
      for (const [k, v] of Object.entries(batch.meta ?? {})) {
        if (v === null) meta.delete(k)
        else if (v !== undefined) meta.put(v, k)
      }
      const outbox = tx.objectStore(OUTBOX)
      for (const mid of batch.deleteOps ?? []) outbox.delete(mid)
      for (const e of batch.putOps ?? []) outbox.put(e)
      const records = tx.objectStore(RECORDS)
      if (batch.clearRecords === true) records.clear()
      else if (batch.clearRecords) {
        for (const c of batch.clearRecords) records.delete(IDBKeyRange.bound([c], [c, []]))
      }
      for (const r of batch.deleteRecords ?? []) records.delete([r.collection, r.id])
      for (const r of batch.putRecords ?? []) records.put(r)
    })
  }

  async close(): Promise<void> {
    this.db?.close()
    this.db = undefined
  }
}

function request<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result)
    req.onerror = () => reject(req.error)
  })
}
