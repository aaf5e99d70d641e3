/**
 * The storage port's contract, run against every adapter: memory and file in Node
 * (storage.test.ts), IndexedDB in Chromium (browser.test.ts bundles this file into the page).
 * It needs only an assertion sink, so it runs the same in both places.
 */
import type { Change } from '../../protocol/records.ts'
import type { StorageAdapter } from '../../src/client/storage/port.ts'

export interface Asserts {
  same(actual: unknown, expected: unknown, message: string): void
  ok(value: unknown, message: string): void
}

/** Opens a fresh, empty store (`fresh`) and a second adapter on the same data (`reopen`: a restart). */
export interface StorageFactory {
  fresh(): Promise<{ adapter: StorageAdapter; reopen(): StorageAdapter }>
}

const change = (collection: string, id: string, seq: number, data: Record<string, unknown> = { value: seq }): Change => ({
  seq,
  collection,
  id,
  data,
  rev: seq,
  created_at: 1_700_000_000_000 + seq,
  updated_at: 1_700_000_000_000 + seq,
})

const op = (mid: number) => ({ mid, op: { op: 'put' as const, mid, collection: 'settings', id: `s${mid}`, data: { value: mid } }, at: 1_700_000_000_000 })

export const STORAGE_CASES: Record<string, (f: StorageFactory, a: Asserts) => Promise<void>> = {
  async 'a new store loads empty'(f, a) {
    const { adapter } = await f.fresh()
    const snap = await adapter.load()
    a.same(snap, { meta: { cursor: 0, nextMid: 1 }, outbox: [], records: [] }, 'empty state: cursor 0, next mid 1')
    await adapter.close()
  },

  async 'what is written is there after a reopen'(f, a) {
    const { adapter, reopen } = await f.fresh()
    await adapter.load()
    await adapter.write({ meta: { cursor: 7, epoch: 'E1', nextMid: 4, deviceId: 'd1', refreshToken: 'rt', scope: ['chat.history'], app: { pushed: 3 } }, putOps: [op(1), op(2), op(3)] })
    await adapter.write({ putRecords: [change('settings', 'a', 5), change('messages', 'm', 6, { conversation_id: 'c', role: 'user', content: 'hé ✓' })] })
    await adapter.close()
    const again = reopen()
    const snap = await again.load()
    a.same(snap.meta, { cursor: 7, epoch: 'E1', nextMid: 4, deviceId: 'd1', refreshToken: 'rt', scope: ['chat.history'], app: { pushed: 3 } }, 'meta')
    a.same(snap.outbox.map((e) => e.mid), [1, 2, 3], 'outbox in mid order')
    a.same(snap.outbox[1], op(2), 'an outbox entry whole')
    a.same(snap.records.map((r) => `${r.collection}/${r.id}`).sort(), ['messages/m', 'settings/a'], 'records')
    a.same(snap.records.find((r) => r.id === 'm')?.data, { conversation_id: 'c', role: 'user', content: 'hé ✓' }, 'record data whole')
    await again.close()
  },

  async 'meta fields merge, and null removes one'(f, a) {
    const { adapter, reopen } = await f.fresh()
    await adapter.load()
    await adapter.write({ meta: { cursor: 3, refreshToken: 'rt1', epoch: 'E' } })
    await adapter.write({ meta: { cursor: 9, refreshToken: null } })
    await adapter.close()
    const again = reopen()
    a.same((await again.load()).meta, { cursor: 9, nextMid: 1, epoch: 'E' }, 'cursor replaced, token removed, epoch kept')
    await again.close()
  },

  async 'deletes: ops by mid, records by key, a collection, everything'(f, a) {
    const { adapter, reopen } = await f.fresh()
    await adapter.load()
    await adapter.write({ putOps: [op(1), op(2), op(3)], putRecords: [change('settings', 'a', 1), change('settings', 'b', 2), change('messages', 'm', 3), change('characters', 'c', 4)] })
    await adapter.write({ deleteOps: [1, 3], deleteRecords: [{ collection: 'settings', id: 'a' }] })
    await adapter.write({ clearRecords: ['messages'] })
    await adapter.close()
    let again = reopen()
    let snap = await again.load()
    a.same(snap.outbox.map((e) => e.mid), [2], 'mids 1 and 3 deleted')
    a.same(snap.records.map((r) => r.id).sort(), ['b', 'c'], 'settings/a and the messages gone')
    await again.write({ clearRecords: true, putRecords: [change('settings', 'z', 9)] })
    await again.close()
    again = reopen()
    snap = await again.load()
    a.same(snap.records.map((r) => r.id), ['z'], 'a clear of everything, then a put in the same batch')
    await again.close()
  },

  async 'inside a batch deletions come before puts'(f, a) {
    const { adapter, reopen } = await f.fresh()
    await adapter.load()
    await adapter.write({ putOps: [op(5), op(6)] })
    // A renumbering: 5, 6 become 6, 7 in one batch.
    await adapter.write({ deleteOps: [5, 6], putOps: [op(6), op(7)] })
    await adapter.write({ putRecords: [change('settings', 'a', 1)] })
    await adapter.write({ deleteRecords: [{ collection: 'settings', id: 'a' }], putRecords: [change('settings', 'a', 2)] })
    await adapter.close()
    const again = reopen()
    const snap = await again.load()
    a.same(snap.outbox.map((e) => e.mid), [6, 7], 'the renumbered ops')
    a.same(snap.records.map((r) => r.seq), [2], 'the re-put record')
    await again.close()
  },

  async 'writes issued together are applied in order'(f, a) {
    const { adapter, reopen } = await f.fresh()
    await adapter.load()
    await Promise.all(Array.from({ length: 50 }, (_, i) => adapter.write({ meta: { cursor: i + 1 }, putRecords: [change('settings', 'k', i + 1)] })))
    await adapter.close()
    const again = reopen()
    const snap = await again.load()
    a.same([snap.meta.cursor, snap.records[0]?.seq], [50, 50], 'the last write wins')
    await again.close()
  },

  async 'a large state survives'(f, a) {
    const { adapter, reopen } = await f.fresh()
    await adapter.load()
    const records = Array.from({ length: 2000 }, (_, i) => change('messages', `m${i}`, i + 1, { conversation_id: 'c', role: 'user', content: 'x'.repeat(200) }))
    for (let i = 0; i < records.length; i += 250) await adapter.write({ putRecords: records.slice(i, i + 250), meta: { cursor: i + 250 } })
    await adapter.write({ putOps: Array.from({ length: 600 }, (_, i) => op(i + 1)) })
    await adapter.close()
    const again = reopen()
    const snap = await again.load()
    a.same([snap.records.length, snap.outbox.length, snap.meta.cursor], [2000, 600, 2000], 'every record and op')
    a.ok(snap.outbox.every((e, i) => e.mid === i + 1), 'in mid order')
    await again.close()
  },
}
