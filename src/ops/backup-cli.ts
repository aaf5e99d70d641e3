import { randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { parseArgs } from 'node:util'
import { HubError } from '../../protocol/errors.ts'
import { ImportMode } from '../../protocol/backup.ts'
import { createRedisBus } from '../bus/redis.ts'
import { KeyBox } from '../crypto/key-box.ts'
import { BackupStore } from '../store/backup-store.ts'
import { migrate } from '../store/migrate.ts'
import { openStore } from '../store/open.ts'
import type { SqlClient } from '../store/sql-client.ts'
import { UserStore } from '../store/user-store.ts'
import { prepareExport } from '../sync/backup-export.ts'
import { announceImport, importBackup, type ImportOutcome } from '../sync/backup-import.ts'
import { registryWith } from '../sync/collections.ts'
import { RecordCodec } from '../sync/record-codec.ts'
import type { Config } from './config.ts'
import { ProgressBar } from './progress.ts'

export const BACKUP_USAGE = `  export --user <name> [--scopes a,b] [--out <file>]
                        write the user's backup (NDJSON, recycle bin included) to <file>
                        or standard output; progress on standard error
  import --user <name> [--mode merge|overwrite] [--scopes a,b] [<file>]
                        read a backup from <file> or standard input into the user's
                        account; merge (default) adds what is missing and turns clashes
                        into conflict copies, overwrite replaces the chosen scopes and
                        resets the user's devices`

class UsageError extends Error {}

/** `synchub export` and `synchub import`: against the database directly, like purge and rotate-keys. */
export async function runBackupCommand(command: 'export' | 'import', config: Config, args: string[]): Promise<number> {
  let db: SqlClient | undefined
  try {
    const opts = parseArgs({
      args,
      allowPositionals: command === 'import',
      options: { user: { type: 'string' }, scopes: { type: 'string' }, out: { type: 'string' }, mode: { type: 'string' } },
    })
    const username = opts.values.user
    if (!username) throw new UsageError('--user <name> is required')
    const scopes = opts.values.scopes?.split(',').filter(Boolean)
    db = await openStore(config)
    await migrate(db)
    // Exports open provider keys and imports seal them: the hub's own secret.
    const codec = new RecordCodec(registryWith(config.collections), new KeyBox(config.secret, config.previousSecret))
    const store = new BackupStore(db)
    const user = await new UserStore(db).findByName(username)
    if (!user) throw new UsageError(`no user named ${username}`)
    if (command === 'export') {
      if (opts.values.mode) throw new UsageError('--mode is for import')
      return await exportTo({ store, codec }, { id: user.id, username: user.username }, { scopes, out: opts.values.out })
    }
    if (opts.values.out) throw new UsageError('--out is for export')
    const mode = ImportMode.safeParse(opts.values.mode ?? 'merge')
    if (!mode.success) throw new UsageError('--mode must be merge or overwrite')
    if (opts.positionals.length > 1) throw new UsageError('one file at most')
    return await importFrom({ store, codec }, config, { userId: user.id, mode: mode.data, scopes, file: opts.positionals[0] })
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      console.error(`synchub ${command}: ${(err as Error).message}\n\nusage:\n${BACKUP_USAGE}`)
      return 2
    }
    if (err instanceof HubError) {
      console.error(`synchub ${command} refused (${err.code}): ${err.message}; nothing was changed`)
      return 1
    }
    throw err
  } finally {
    await db?.close()
  }
}

/** What an export or import reads and writes through. */
interface BackupParts {
  store: BackupStore
  codec: RecordCodec
}

async function exportTo(parts: BackupParts, user: { id: string; username: string }, q: { scopes?: string[]; out?: string }): Promise<number> {
  const { out } = q
  const bar = new ProgressBar('exported')
  let written = 0
  const prepared = await prepareExport({ ...parts, user, scopes: q.scopes, onProgress: (p) => bar.update((written = p.records), p.total) })
  // The file holds provider keys in plaintext: readable by its owner only.
  const sink = out && out !== '-' ? createWriteStream(out, { mode: 0o600 }) : process.stdout
  for await (const chunk of prepared.lines) {
    if (!sink.write(chunk)) await once(sink, 'drain')
  }
  if (sink !== process.stdout) {
    sink.end()
    await once(sink, 'finish')
  }
  bar.done(written, written)
  return 0
}

async function importFrom(parts: BackupParts, config: Config, q: { userId: string; mode: ImportMode; scopes?: string[]; file?: string }): Promise<number> {
  const { userId, mode, scopes, file } = q
  const bar = new ProgressBar('checked')
  let phase: 'read' | 'apply' = 'read'
  let last: { records: number; total?: number } = { records: 0 }
  const outcome = await importBackup(file && file !== '-' ? createReadStream(file) : process.stdin, {
    ...parts,
    userId,
    mode,
    scopes,
    maxRecordBytes: config.maxRecordBytes,
    // The operator's own file: no upload limit.
    maxBytes: Number.MAX_SAFE_INTEGER,
    trashRetentionMs: config.trashRetentionMs,
    onProgress: (p) => {
      if (p.phase !== phase) {
        bar.done(last.records, last.total)
        bar.phase('written')
        phase = p.phase
      }
      last = p
      bar.update(p.records, p.total)
    },
  })
  bar.done(last.records, last.total)
  await announce(config, userId, outcome)
  const { from: _from, replaced: _replaced, ...result } = outcome
  console.log(JSON.stringify(result))
  return 0
}

/** Running hubs hear of the import through Redis; without it they find it at their next position check. */
async function announce(config: Config, userId: string, outcome: ImportOutcome): Promise<void> {
  if (!config.redisUrl) {
    if (config.databaseUrl) {
      console.error('no REDIS_URL: running hubs deliver the import at their next position check; after an overwrite, devices reset when they next subscribe')
    }
    return
  }
  const bus = createRedisBus({ url: config.redisUrl, nodeId: `cli-${randomUUID().slice(0, 8)}`, prefix: config.redisPrefix, sharded: config.redisSharded })
  try {
    await Promise.race([bus.ready(), new Promise((_, reject) => setTimeout(() => reject(new Error('Redis did not answer')), 5000).unref())])
    announceImport(bus, userId, outcome)
  } catch (err) {
    console.error(`the import is stored, but running hubs could not be told (${(err as Error).message}); they find it at their next position check`)
  } finally {
    await bus.close()
  }
}
