import { closeSync, fsyncSync, openSync, readFileSync, readdirSync, unlinkSync, writeFileSync } from 'node:fs'
import { mkdir, open, rename, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32 } from 'node:zlib'
import { applyBatch, emptySnapshot, type Meta, type OutboxEntry, type Snapshot, type StorageAdapter, type StoredRecord, type WriteBatch } from './port.ts'

export interface FileStorageOptions {
  /** Rewrite the snapshot once the journal holds this many bytes (default 4 MiB). */
  compactBytes?: number
}

/**
 * State in a directory, for Node (the CLI, bots, desktop apps). Every batch is appended to a
 * journal as one checksummed line and fsynced before write() resolves; a line cut short by a
 * crash fails its checksum and is dropped on load, so a batch is there whole or not at all.
 * From time to time the state is written to a new snapshot (temp file, fsync, rename: atomic)
 * that starts a new journal. A lock file holding the pid keeps a second process out; the lock of
 * a process that died is taken over.
 *
 *   snapshot.json   {"gen":N, "meta", "outbox", "records"}
 *   journal-N.log   <crc32 hex> <batch JSON>\n, one line per batch since snapshot N
 */
export class FileStorage implements StorageAdapter {
  private meta: Meta = emptySnapshot().meta
  private readonly records = new Map<string, StoredRecord>()
  private readonly outbox = new Map<number, OutboxEntry>()
  private gen = 0
  private journal: FileHandle | undefined
  private journalBytes = 0
  private locked = false
  private tail: Promise<void> = Promise.resolve()
  private readonly compactBytes: number

  constructor(
    readonly dir: string,
    opts: FileStorageOptions = {},
  ) {
    this.compactBytes = opts.compactBytes ?? 4 * 1024 * 1024
  }

  async load(): Promise<Snapshot> {
    await mkdir(this.dir, { recursive: true })
    this.lock()
    const snap = readJson(join(this.dir, 'snapshot.json')) as (Snapshot & { gen: number }) | undefined
    if (snap) {
      this.gen = snap.gen
      this.meta = snap.meta
      for (const e of snap.outbox) this.outbox.set(e.mid, e)
      for (const r of snap.records) this.records.set(`${r.collection}\u0000${r.id}`, r)
    }
    const path = this.journalPath(this.gen)
    let valid = 0
    let text = ''
    try {
      text = readFileSync(path, 'utf8')
    } catch {}
    for (const line of text.split('\n')) {
      const batch = parseLine(line)
      if (!batch) break // a torn or corrupt tail: nothing after it was acknowledged
      applyBatch(this.meta, batch, this.records, this.outbox)
      valid += Buffer.byteLength(line) + 1
    }
    // Drop a torn tail, so new lines do not follow garbage; remove leftovers of old generations.
    this.journal = await open(path, 'a+')
    await this.journal.truncate(valid)
    this.journalBytes = valid
    for (const name of readdirSync(this.dir)) {
      if ((name.startsWith('journal-') && name !== `journal-${this.gen}.log`) || name.endsWith('.tmp')) unlinkSync(join(this.dir, name))
    }
    return structuredClone({
      meta: this.meta,
      outbox: [...this.outbox.values()].sort((a, b) => a.mid - b.mid),
      records: [...this.records.values()],
    })
  }

  write(batch: WriteBatch): Promise<void> {
    // One append at a time, in call order (a journal line is one batch).
    const done = this.tail.then(() => this.append(batch))
    this.tail = done.catch(() => {})
    return done
  }

  private async append(batch: WriteBatch): Promise<void> {
    if (!this.journal) throw new Error('FileStorage: load() first (or it was closed)')
    const json = JSON.stringify(batch)
    const line = `${crc32(json).toString(16).padStart(8, '0')} ${json}\n`
    // Applied in memory only once durable: a failed write leaves the state as it was.
    await this.journal.write(line, null, 'utf8')
    await this.journal.datasync()
    applyBatch(this.meta, batch, this.records, this.outbox)
    this.journalBytes += Buffer.byteLength(line)
    if (this.journalBytes >= this.compactBytes) await this.compact()
  }

  async close(): Promise<void> {
    await this.tail
    await this.journal?.close()
    this.journal = undefined
    if (this.locked) {
      try {
        unlinkSync(join(this.dir, 'lock'))
      } catch {}
      this.locked = false
    }
  }

  /** Writes the whole state as snapshot gen+1 and starts its empty journal. */
  private async compact(): Promise<void> {
    const next = this.gen + 1
    const tmp = join(this.dir, 'snapshot.json.tmp')
    const body = JSON.stringify({ gen: next, meta: this.meta, outbox: [...this.outbox.values()], records: [...this.records.values()] })
    const fh = await open(tmp, 'w')
    try {
      await fh.writeFile(body, 'utf8')
      await fh.sync()
    } finally {
      await fh.close()
    }
    const fresh = await open(this.journalPath(next), 'w+')
    await fresh.sync()
    await rename(tmp, join(this.dir, 'snapshot.json'))
    syncDir(this.dir)
    // From here the new snapshot is the truth; the old journal is only garbage.
    await this.journal!.close()
    try {
      unlinkSync(this.journalPath(this.gen))
    } catch {}
    this.journal = fresh
    this.gen = next
    this.journalBytes = 0
  }

  private journalPath(gen: number): string {
    return join(this.dir, `journal-${gen}.log`)
  }

  private lock(): void {
    const path = join(this.dir, 'lock')
    for (let tries = 0; tries < 2; tries++) {
      try {
        writeFileSync(path, String(process.pid), { flag: 'wx' })
        this.locked = true
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
      const holder = Number(readFileSync(path, 'utf8').trim())
      if (holder && holder !== process.pid && alive(holder)) {
        throw new Error(`the state directory ${this.dir} is in use by process ${holder}`)
      }
      unlinkSync(path) // its process is gone: take the lock over
    }
    throw new Error(`could not lock the state directory ${this.dir}`)
  }
}

function parseLine(line: string): WriteBatch | undefined {
  if (line.length < 10 || line[8] !== ' ') return undefined
  const json = line.slice(9)
  if (crc32(json).toString(16).padStart(8, '0') !== line.slice(0, 8)) return undefined
  try {
    return JSON.parse(json) as WriteBatch
  } catch {
    return undefined
  }
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new Error(`${path} is unreadable: ${(err as Error).message}`)
  }
}

/** Makes a rename durable: the directory entry itself is fsynced. */
function syncDir(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
