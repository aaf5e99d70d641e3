import type { BuiltInData } from '../../protocol/collections.ts'
import type { Change } from '../../protocol/records.ts'
import { Emitter } from './events.ts'

/** A record as the device holds it: the latest Change of (collection, id), `data` typed per collection. */
export type ViewRecord<D = Record<string, unknown>> = Omit<Change, 'data'> & { data: D }

/** The data type of a collection: the protocol's schema for the built-in ones, a plain map otherwise. */
export type DataOf<C extends string> = C extends keyof BuiltInData ? BuiltInData[C] : Record<string, unknown>

export interface ListFilter<D> {
  /** Records in the recycle bin: left out (default), included, or only those. */
  trash?: 'exclude' | 'include' | 'only'
  /** Only the conflict copies of this record. */
  conflictOf?: string
  /** Any further test. */
  where?: (record: ViewRecord<D>) => boolean
}

export interface RecordEvent<D> {
  record: ViewRecord<D> | undefined
  previous: ViewRecord<D> | undefined
  id: string
}

/** One collection of the local view. */
export class CollectionView<D = Record<string, unknown>> {
  private readonly events = new Emitter<{ change: RecordEvent<D> }>()

  constructor(
    readonly name: string,
    private readonly records: Map<string, ViewRecord<D>>,
  ) {}

  get(id: string): ViewRecord<D> | undefined {
    return this.records.get(id)
  }

  /** Records in creation order; live ones only unless `trash` says otherwise. Conflict copies are records too. */
  list(filter: ListFilter<D> = {}): ViewRecord<D>[] {
    const trash = filter.trash ?? 'exclude'
    const out: ViewRecord<D>[] = []
    for (const r of this.records.values()) {
      const binned = r.deleted_at !== undefined
      if ((trash === 'exclude' && binned) || (trash === 'only' && !binned)) continue
      if (filter.conflictOf !== undefined && r.conflict_of !== filter.conflictOf) continue
      if (filter.where && !filter.where(r)) continue
      out.push(r)
    }
    return out.sort((a, b) => a.created_at - b.created_at || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  }

  /** The conflict copies the hub made of record `id` (a stale edit saved beside it). */
  conflicts(id: string): ViewRecord<D>[] {
    return this.list({ trash: 'include', conflictOf: id })
  }

  get size(): number {
    return this.records.size
  }

  /** Called for every record that changes (`record` undefined: it left the view). */
  on(event: 'change', fn: (e: RecordEvent<D>) => void): () => void {
    return this.events.on(event, fn)
  }

  /** @internal */
  emit(e: RecordEvent<D>): void {
    this.events.emit('change', e)
  }
}

/**
 * The records the device has synced, in memory, kept in the client's storage with the cursor
 * (one write), so it is whole after a restart. Changes are full records: the latest one wins.
 */
export class LocalView {
  private readonly collections = new Map<string, CollectionView<never>>()
  private readonly maps = new Map<string, Map<string, ViewRecord>>()

  collection<C extends string>(name: C): CollectionView<DataOf<C>> {
    let view = this.collections.get(name)
    if (!view) {
      const map = new Map<string, ViewRecord>()
      this.maps.set(name, map)
      view = new CollectionView(name, map as never)
      this.collections.set(name, view)
    }
    return view as unknown as CollectionView<DataOf<C>>
  }

  /** Every collection that holds a record. */
  names(): string[] {
    return [...this.maps].filter(([, m]) => m.size > 0).map(([n]) => n)
  }

  /** Puts records without events (loading the stored view). */
  load(records: readonly Change[]): void {
    for (const r of records) {
      this.collection(r.collection)
      this.maps.get(r.collection)!.set(r.id, r)
    }
  }

  /** Applies changes in order; returns the records to persist. */
  apply(changes: readonly Change[]): Change[] {
    const out = new Map<string, Change>()
    for (const c of changes) {
      const view = this.collection(c.collection)
      const map = this.maps.get(c.collection)!
      const previous = map.get(c.id)
      // A backfilled or replayed older version never replaces a newer one.
      if (previous && previous.seq > c.seq) continue
      map.set(c.id, c)
      out.set(`${c.collection}\u0000${c.id}`, c)
      ;(view as CollectionView).emit({ id: c.id, record: c, previous })
    }
    return [...out.values()]
  }

  /** Drops the records of these collections (all when omitted): a reset, or a narrowed scope. */
  clear(collections?: readonly string[]): void {
    for (const name of collections ?? [...this.maps.keys()]) {
      const map = this.maps.get(name)
      if (!map) continue
      const view = this.collections.get(name) as unknown as CollectionView
      const gone = [...map.values()]
      map.clear()
      for (const r of gone) view.emit({ id: r.id, record: undefined, previous: r })
    }
  }
}
