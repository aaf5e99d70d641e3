import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import t from 'tap'
import { FileStorage } from '../../src/client/storage/file.ts'
import { MemoryStorage } from '../../src/client/storage/memory.ts'
import { mergeBatches, applyBatch, emptySnapshot, type WriteBatch } from '../../src/client/storage/port.ts'
import { STORAGE_CASES, type StorageFactory } from './storage-contract.ts'

const dirs: string[] = []
t.teardown(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })))
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'synchub-state-'))
  dirs.push(d)
  return d
}

const ADAPTERS: Record<string, StorageFactory> = {
  memory: {
    async fresh() {
      // One instance is the "disk": a reopen reads the same memory.
      const m = new MemoryStorage()
      return { adapter: m, reopen: () => m }
    },
  },
  file: {
    async fresh() {
      const dir = tempDir()
      return { adapter: new FileStorage(dir), reopen: () => new FileStorage(dir) }
    },
  },
  'file (compacting every write)': {
    async fresh() {
      const dir = tempDir()
      return { adapter: new FileStorage(dir, { compactBytes: 1 }), reopen: () => new FileStorage(dir, { compactBytes: 1 }) }
    },
  },
}

for (const [name, factory] of Object.entries(ADAPTERS)) {
  t.test(`storage contract: ${name}`, async (t) => {
    for (const [title, run] of Object.entries(STORAGE_CASES)) await t.test(title, (tt) => run(factory, { same: (x, y, m) => tt.same(x, y, m), ok: (v, m) => tt.ok(v, m) }))
  })
}

t.test('merged batches mean what the two did one after the other', async (t) => {
  const batches: WriteBatch[] = [
    { putRecords: [rec('a', 1)], deleteRecords: [{ collection: 'settings', id: 'b' }] },
    { deleteRecords: [{ collection: 'settings', id: 'a' }], putRecords: [rec('b', 2)] },
    { clearRecords: ['settings'], putRecords: [rec('c', 3)] },
    { putOps: [entry(1), entry(2)], meta: { cursor: 1 } },
    { deleteOps: [1, 2], putOps: [entry(2), entry(3)], meta: { cursor: null as never } },
    { putRecords: [rec('a', 4)], deleteOps: [3] },
    { clearRecords: true },
    { putRecords: [rec('d', 5)] },
  ]
  for (let i = 0; i < batches.length; i++) {
    for (let j = i + 1; j <= batches.length; j++) {
      const oneByOne = state()
      for (const b of batches.slice(i, j)) applyBatch(oneByOne.meta, b, oneByOne.records, oneByOne.outbox)
      const merged = state()
      applyBatch(merged.meta, batches.slice(i, j).reduce(mergeBatches), merged.records, merged.outbox)
      t.same(dump(merged), dump(oneByOne), `batches ${i}..${j - 1}`)
    }
  }
})

t.test('file storage: a torn last line is dropped, and nothing before it', async (t) => {
  const dir = tempDir()
  const s = new FileStorage(dir)
  await s.load()
  await s.write({ meta: { cursor: 1 } })
  await s.write({ meta: { cursor: 2 } })
  await s.close()
  const journal = join(dir, readdirSync(dir).find((n) => n.startsWith('journal-'))!)
  const whole = readFileSync(journal, 'utf8')
  // A crash in the middle of the third append: half a line.
  appendFileSync(journal, whole.split('\n')[1]!.slice(0, 20))
  const again = new FileStorage(dir)
  t.equal((await again.load()).meta.cursor, 2, 'the two whole writes are there')
  await again.write({ meta: { cursor: 3 } })
  await again.close()
  t.equal((await reload(dir)).meta.cursor, 3, 'a write after the torn tail is read back (the tail was cut off)')
  // A line whose bytes changed (a bad sector) fails its checksum: it and what follows are not trusted.
  const text = readFileSync(journal, 'utf8')
  writeFileSync(journal, text.replace('"cursor":2', '"cursor":8'))
  t.equal((await reload(dir)).meta.cursor, 1, 'a corrupt line stops the replay')
})

t.test('file storage: a second process is kept out; a dead one\'s lock is taken over', async (t) => {
  const dir = tempDir()
  const s = new FileStorage(dir)
  await s.load()
  // The lock names a live process (ours, held by the first adapter): a second adapter is refused.
  const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60000)'])
  t.teardown(() => child.kill('SIGKILL'))
  writeFileSync(join(dir, 'lock'), String(child.pid))
  await t.rejects(new FileStorage(dir).load(), /in use by process/, 'a live holder keeps the directory')
  child.kill('SIGKILL')
  await new Promise((r) => child.once('exit', r))
  const next = new FileStorage(dir)
  await next.load()
  t.equal(readFileSync(join(dir, 'lock'), 'utf8'), String(process.pid), 'the lock of a dead process is taken over')
  await next.close()
  await s.close()
})

t.test('file storage: compaction keeps the journal short and the state whole', async (t) => {
  const dir = tempDir()
  const s = new FileStorage(dir, { compactBytes: 2000 })
  await s.load()
  for (let i = 1; i <= 200; i++) await s.write({ meta: { cursor: i }, putRecords: [rec(`k${i % 7}`, i)] })
  await s.close()
  const journal = readdirSync(dir).find((n) => n.startsWith('journal-'))!
  t.ok(statSync(join(dir, journal)).size < 2500, 'the journal was restarted')
  t.ok(Number(journal.match(/\d+/)![0]) > 1, 'snapshots were written')
  const snap = await reload(dir)
  t.same([snap.meta.cursor, snap.records.length], [200, 7], 'the whole state')
  // A crash between writing the new snapshot and removing the old journal leaves a stale journal: ignored.
  writeFileSync(join(dir, 'journal-0.log'), 'junk\n')
  t.equal((await reload(dir)).meta.cursor, 200, 'a stale journal of an older generation is ignored')
  t.notOk(readdirSync(dir).includes('journal-0.log'), 'and removed')
})

function rec(id: string, seq: number) {
  return { seq, collection: 'settings', id, data: { value: seq }, rev: seq, created_at: seq, updated_at: seq }
}
function entry(mid: number) {
  return { mid, at: 0, op: { op: 'del' as const, mid, collection: 'settings', id: `x${mid}` } }
}
function state() {
  return { meta: emptySnapshot().meta, records: new Map(), outbox: new Map() }
}
function dump(s: ReturnType<typeof state>) {
  return { meta: s.meta, records: [...s.records.entries()].sort(), outbox: [...s.outbox.entries()].sort() }
}
async function reload(dir: string) {
  const s = new FileStorage(dir)
  const snap = await s.load()
  await s.close()
  return snap
}
