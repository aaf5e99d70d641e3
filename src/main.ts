import { createInterface } from 'node:readline'
import { ConfigError, loadConfig, type Config } from './ops/config.ts'
import { createLogger } from './ops/logger.ts'
import { openStore } from './store/open.ts'
import { migrate } from './store/migrate.ts'
import type { SqlClient } from './store/sql-client.ts'
import { AuthStore } from './store/auth-store.ts'
import { PurgeStore } from './store/purge-store.ts'
import { RecordDataStore } from './store/record-data-store.ts'
import { purgeExpired } from './sync/purge.ts'
import { startHub } from './hub.ts'
import { authServiceFromConfig } from './auth/service.ts'
import { newPasswordProblem } from './auth/passwords.ts'
import { KeyBox, KeyBoxError } from './crypto/key-box.ts'
import { registryWith } from './sync/collections.ts'
import { RecordCodec } from './sync/record-codec.ts'
import { rotateKeys } from './ops/rotate-keys.ts'
import { BACKUP_USAGE, runBackupCommand } from './ops/backup-cli.ts'
import { CLIENT_COMMANDS, CLIENT_USAGE, runClientCommand } from './cli/index.ts'

const USAGE = `usage: synchub <command>

commands:
  serve                 run a hub node (the default)
  migrate               apply pending database migrations and exit
  create-admin <name>   create or update an admin; the password comes from
                        SYNCHUB_ADMIN_PASSWORD or the first line of standard input
  rotate-keys           re-encrypt stored provider keys under SYNCHUB_SECRET; run it
                        after every node has the new SYNCHUB_SECRET and the old one as
                        SYNCHUB_SECRET_PREVIOUS, then unset SYNCHUB_SECRET_PREVIOUS
  purge                 remove records whose time in the recycle bin is over (the hub
                        also does it every SYNCHUB_PURGE_INTERVAL_MS)
${BACKUP_USAGE}

${CLIENT_USAGE}

Configuration comes from the environment; see .env.example.`

/** Runs one command; resolves with the process exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command = 'serve', ...args] = argv
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE)
    return 0
  }
  // The client commands talk to a running hub: the hub's configuration is not theirs.
  if (Object.hasOwn(CLIENT_COMMANDS, command)) return runClientCommand(command, args)
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message)
      return 2
    }
    throw err
  }
  switch (command) {
    case 'serve':
      return serve(config)
    case 'migrate':
      return runMigrate(config)
    case 'create-admin':
      return createAdmin(config, args[0])
    case 'rotate-keys':
      return runRotateKeys(config)
    case 'purge':
      return runPurge(config)
    case 'export':
    case 'import':
      return runBackupCommand(command, config, args)
    default:
      console.error(`unknown command ${command}\n\n${USAGE}`)
      return 2
  }
}

async function serve(config: Config): Promise<number> {
  const log = createLogger(config.logLevel)
  for (const warning of config.warnings) log.warn(warning)
  const hub = await startHub(config, log)
  return new Promise((resolve) => {
    let signals = 0
    const onSignal = (signal: NodeJS.Signals) => {
      // A second signal means "now": exit without waiting for the drain.
      if (++signals > 1) process.exit(130)
      log.info({ signal, deadlineMs: config.drainDeadlineMs }, 'stopping: draining sockets')
      // Past the deadline the orchestrator would kill us anyway; leave on our own terms.
      setTimeout(() => {
        log.error({ deadlineMs: config.drainDeadlineMs }, 'drain deadline passed: exiting now')
        process.exit(1)
      }, config.drainDeadlineMs).unref()
      hub.stop('draining').then(
        () => resolve(0),
        (err) => {
          log.error({ err }, 'stop failed')
          resolve(1)
        },
      )
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
}

async function runMigrate(config: Config): Promise<number> {
  const db = await openStore(config)
  try {
    const applied = await migrate(db)
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'schema is up to date')
    return 0
  } finally {
    await db.close()
  }
}

/** Opens the configured store, brings its schema up to date, runs `fn` on it, and closes it whatever happens. */
async function onMigratedStore(config: Config, fn: (db: SqlClient) => Promise<number>): Promise<number> {
  const db = await openStore(config)
  try {
    await migrate(db)
    return await fn(db)
  } finally {
    await db.close()
  }
}

function runPurge(config: Config): Promise<number> {
  return onMigratedStore(config, async (db) => {
    const store = new PurgeStore(db)
    let total = 0
    for (;;) {
      const round = await purgeExpired(store, Date.now())
      total += round.records
      if (round.users === 0) break
      console.log(`purged ${round.records} records of ${round.users} users`)
    }
    console.log(`done: ${total} expired records removed`)
    return 0
  })
}

async function createAdmin(config: Config, username: string | undefined): Promise<number> {
  if (!username) {
    console.error('usage: synchub create-admin <name>')
    return 2
  }
  const password = config.adminPassword ?? (await firstLine())
  if (!password || password.length < 8) {
    console.error('the password (SYNCHUB_ADMIN_PASSWORD or standard input) must be at least 8 characters')
    return 2
  }
  const weak = await newPasswordProblem(password, { username })
  if (weak) {
    console.error(`the password is too easy to guess: ${weak}; choose another`)
    return 2
  }
  return onMigratedStore(config, async (db) => {
    await authServiceFromConfig(config, new AuthStore(db)).upsertAdmin(username, password)
    console.log(`admin ${username} is ready`)
    return 0
  })
}

async function runRotateKeys(config: Config): Promise<number> {
  try {
    return await onMigratedStore(config, (db) => rotateAll(config, db))
  } catch (err) {
    if (!(err instanceof KeyBoxError)) throw err
    console.error(`rotate-keys stopped (batches before this one are done; rerun once fixed): ${err.message}`)
    return 1
  }
}

async function rotateAll(config: Config, db: SqlClient): Promise<number> {
  const box = new KeyBox(config.secret, config.previousSecret)
  // The operator's declared collections too: their secret fields are sealed like provider keys.
  const total = await rotateKeys(new RecordDataStore(db), {
    codec: new RecordCodec(registryWith(config.collections), box),
    onProgress: (p) => console.log(`${p.collection}: ${p.checked} checked, ${p.resealed} re-encrypted`),
  })
  console.log(`done: ${total.resealed} of ${total.checked} records re-encrypted under key id ${box.kid}`)
  return 0
}

function firstLine(): Promise<string> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin })
    rl.once('line', (line) => {
      resolve(line.trim()) // before close(): its handler would resolve with '' first
      rl.close()
    })
    rl.once('close', () => resolve(''))
  })
}
