import { createReadStream, createWriteStream, type WriteStream } from 'node:fs'
import { finished } from 'node:stream/promises'
import { mkdtemp, rm } from 'node:fs/promises'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { z } from 'zod'
import { decodeInput, encodeMsgpack, textProblem } from '../../protocol/codec.ts'
import { HubError } from '../../protocol/errors.ts'
import { BACKUP_VERSION, BackupHeader, BackupRecord, BackupTrailer } from '../../protocol/backup.ts'
import { describeIssue } from '../../protocol/validate.ts'
import { ndjsonLines } from './backup-lines.ts'
import type { RecordCodec } from './record-codec.ts'

export interface StageOptions {
  /** The collections, and the key box that seals their secret fields before they touch the disk. */
  codec: RecordCodec
  maxRecordBytes: number
  /** Largest body accepted, in bytes: `too_large` past it. */
  maxBytes: number
  /** Collections the import applies; records of others are checked, counted as skipped, not staged. */
  accept: (header: BackupHeader) => Set<string>
  tmpDir?: string
  onProgress?: (p: { records: number; total?: number }) => void
}

export interface StagedBackup {
  header: BackupHeader
  /** Collections the import applies (overwrite replaces exactly these). */
  collections: Set<string>
  /** Records staged, to be applied. */
  staged: number
  /** Records of the file outside the chosen collections. */
  outside: number
  /** The staged records, one BackupRecord per yield, data with secret fields sealed. */
  records(): AsyncGenerator<BackupRecord>
  discard(): Promise<void>
}

/**
 * Reads a backup as it arrives and checks every line; only a file that is whole and valid to
 * its trailer is handed on. Valid records are staged in a private temporary file (secret fields
 * already sealed, so no plaintext key touches the disk), so nothing is written to the database
 * and no lock is held while a slow client uploads. Any problem throws a `backup_*` HubError
 * naming the line, and the staged file is removed.
 */
export async function stageBackup(body: AsyncIterable<Uint8Array>, opts: StageOptions): Promise<StagedBackup> {
  const dir = await mkdtemp(join(opts.tmpDir ?? tmpdir(), 'synchub-import-'))
  const path = join(dir, 'records.ndjson')
  const out = createWriteStream(path, { mode: 0o600 })
  // A disk error surfaces through the writes below (out.errored), not as an uncaught event.
  out.on('error', () => {})
  const discard = () => rm(dir, { recursive: true, force: true })
  try {
    const staged = await readInto(body, out, opts)
    out.end()
    await finished(out)
    return { ...staged, records: () => readStaged(path), discard }
  } catch (err) {
    out.destroy()
    await discard()
    throw err
  }
}

async function readInto(
  body: AsyncIterable<Uint8Array>,
  out: WriteStream,
  opts: StageOptions,
): Promise<Omit<StagedBackup, 'records' | 'discard'>> {
  // A record's data is at most maxRecordBytes as msgpack; JSON escaping can make it several times that.
  const maxLine = opts.maxRecordBytes * 8 + 64 * 1024
  let bytes = 0
  const counted = (n: number) => {
    bytes += n
    if (bytes > opts.maxBytes) throw new HubError('too_large', `the backup is over the import limit of ${opts.maxBytes} bytes`)
  }
  let header: BackupHeader | undefined
  let collections = new Set<string>()
  let declared = new Set<string>()
  let records = 0
  let staged = 0
  let trailer: BackupTrailer | undefined
  for await (const line of ndjsonLines(body, maxLine, counted)) {
    if (trailer) throw new HubError('backup_invalid', `line ${line.n}: nothing may follow the end line`)
    const value = parseLine(line.n, line.text)
    if (!header) {
      header = parseHeader(value)
      declared = new Set(header.collections)
      collections = opts.accept(header)
      continue
    }
    if ('end' in value) {
      trailer = parse(BackupTrailer, value, line.n, 'end line')
      if (trailer.records !== records) {
        throw new HubError('backup_truncated', `the end line counts ${trailer.records} records but the file holds ${records}: it is incomplete or was edited`)
      }
      continue
    }
    const record = parse(BackupRecord, value, line.n, 'record')
    const rule = opts.codec.registry.get(record.collection)
    if (!rule) throw new HubError('backup_unknown_collection', `line ${line.n}: collection ${record.collection} is not known to this hub`)
    if (!declared.has(record.collection)) {
      throw new HubError('backup_invalid', `line ${line.n}: collection ${record.collection} is not among the header's collections`)
    }
    // The same checks as a put, on the plaintext as exported (never echoed: it may hold a key).
    const data = rule.schema.safeParse(record.data)
    if (!data.success) throw new HubError('backup_record_invalid', `line ${line.n}: ${rule.name} data: ${describeIssue(data.error)}`)
    const size = encodeMsgpack(record.data).byteLength
    if (size > opts.maxRecordBytes) {
      throw new HubError('backup_record_invalid', `line ${line.n}: record data is ${size} bytes, over the ${opts.maxRecordBytes} limit`)
    }
    records++
    opts.onProgress?.({ records, total: header.records })
    if (!collections.has(record.collection)) continue
    const text = rule.secretFields?.length ? JSON.stringify({ ...record, data: opts.codec.seal(rule, record.data) }) : line.text
    if (out.errored) throw out.errored
    if (!out.write(text + '\n')) await once(out, 'drain')
    staged++
  }
  if (!header) throw new HubError('backup_invalid', 'the body is empty: expected a synchub backup (NDJSON, header line first)')
  if (!trailer) throw new HubError('backup_truncated', `the file ends after ${records} records without its end line: it is incomplete`)
  return { header, collections, staged, outside: records - staged }
}

function parseLine(n: number, text: string): Record<string, unknown> {
  let value: unknown
  try {
    value = decodeInput(text, true)
  } catch {
    // Not the parser's message: it quotes the line, which may hold a provider key.
    throw new HubError('backup_invalid', `line ${n} is not valid JSON`)
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new HubError('backup_invalid', `line ${n} is not a JSON object`)
  const badText = textProblem(value)
  if (badText !== undefined) throw new HubError('backup_invalid', `line ${n}: ${badText}`)
  return value as Record<string, unknown>
}

function parseHeader(value: Record<string, unknown>): BackupHeader {
  const version = value.synchub_backup
  if (version === undefined) throw new HubError('backup_invalid', 'not a synchub backup: line 1 must be the header {"synchub_backup":1,…}')
  if (version !== BACKUP_VERSION) {
    throw new HubError('backup_version', `backup format version ${JSON.stringify(version).slice(0, 20)} is not supported; this hub reads version ${BACKUP_VERSION}`)
  }
  return parse(BackupHeader, value, 1, 'header')
}

function parse<S extends z.ZodType>(schema: S, value: unknown, n: number, what: string): z.infer<S> {
  const result = schema.safeParse(value)
  if (!result.success) throw new HubError('backup_invalid', `line ${n}: ${what}: ${describeIssue(result.error)}`)
  return result.data
}

async function* readStaged(path: string): AsyncGenerator<BackupRecord> {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity })
  for await (const line of lines) if (line) yield JSON.parse(line) as BackupRecord
}
