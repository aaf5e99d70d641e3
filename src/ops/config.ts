import { randomBytes, randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { DEFAULT_LIMITS } from '../../protocol/limits.ts'
import { DeclaredCollection, registryWith } from '../sync/collections.ts'

/**
 * How long a commit lane that has pushes queued waits for more before committing them. One node
 * alone: no wait, which only added latency there. With Redis, several nodes (usually) commit to
 * one database and their commits add up: a 2 ms wait makes fewer, larger commits, which is what
 * costs the database least (README, Performance). Lanes default to one per node either way.
 */
const COMMIT_DELAY_DEFAULT_MS = { single: 0, cluster: 2 }

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().pipe(z.int().min(min).max(max))

/** `https://app.example.com,http://localhost:3000`: each entry a browser origin, as browsers send it. */
const OriginList = z.string().transform((text, ctx) => {
  const origins = text.split(',').map((o) => o.trim()).filter(Boolean)
  for (const origin of origins) {
    let parsed: URL | undefined
    try {
      parsed = new URL(origin)
    } catch {}
    if (!parsed || !['http:', 'https:'].includes(parsed.protocol) || parsed.origin !== origin.toLowerCase()) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(origin)} is not an origin: scheme://host[:port], no path, no trailing slash, no wildcard` })
    }
  }
  return origins
})

/**
 * Every setting the hub reads from the environment, declared once. Unset variables take the
 * defaults; `loadConfig` lists every problem at once instead of stopping at the first.
 */
export const ConfigEnv = z.object({
  PORT: int(0, 65535).default(8080),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  DATABASE_POOL_SIZE: int(2, 200).default(10),
  SYNCHUB_COMMIT_LANES: int(1, 64).default(1),
  SYNCHUB_COMMIT_DELAY_MS: int(0, 100).optional(),
  REDIS_URL: z.url({ protocol: /^rediss?$/ }).optional(),
  SYNCHUB_DATA_DIR: z.string().min(1).default('./data'),
  SYNCHUB_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  SYNCHUB_SECRET_PREVIOUS: z.string().min(32, 'must be at least 32 characters').optional(),
  SYNCHUB_TRANSPORT: z.enum(['auto', 'uws', 'ws']).default('auto'),
  SYNCHUB_REGISTRATION: z.enum(['invite', 'open']).default('invite'),
  SYNCHUB_ADMIN_USERNAME: z.string().min(3).max(64).optional(),
  SYNCHUB_ADMIN_PASSWORD: z.string().min(8, 'must be at least 8 characters').optional(),
  SYNCHUB_NODE_ID: z.string().regex(/^[\w.-]{1,100}$/, 'letters, digits and _ . - only').optional(),
  SYNCHUB_REDIS_PREFIX: z.string().regex(/^[\w.-]{1,50}$/, 'letters, digits and _ . - only').default('synchub'),
  SYNCHUB_TRUST_PROXY: z.enum(['true', 'false']).default('false'),
  SYNCHUB_AUTH_RATE_IP: int(1).default(30),
  SYNCHUB_AUTH_RATE_USER: int(1).default(10),
  SYNCHUB_ACCESS_TTL: int(1, 24 * 3600).default(15 * 60),
  SYNCHUB_REFRESH_TTL: int(60, 365 * 24 * 3600).default(30 * 24 * 3600),
  SYNCHUB_MAX_FRAME_BYTES: int(1024, 64 * 1024 * 1024).default(DEFAULT_LIMITS.maxFrameBytes),
  SYNCHUB_MAX_OPS_PER_PUSH: int(1, 100_000).default(DEFAULT_LIMITS.maxOpsPerPush),
  SYNCHUB_MAX_RECORD_BYTES: int(64, 64 * 1024 * 1024).default(DEFAULT_LIMITS.maxRecordBytes),
  SYNCHUB_MAX_IMPORT_BYTES: int(1024).default(1024 * 1024 * 1024),
  SYNCHUB_TRASH_RETENTION_MS: int(1).default(7 * 24 * 3600 * 1000),
  SYNCHUB_PURGE_INTERVAL_MS: int(1000).default(3600_000),
  SYNCHUB_REPLAY_WINDOW: int(1).default(10_000),
  SYNCHUB_AUTH_TIMEOUT_MS: int(50, 600_000).default(10_000),
  SYNCHUB_SEND_BUFFER_BYTES: int(16 * 1024).default(1024 * 1024),
  SYNCHUB_BAD_FRAME_LIMIT: int(1).default(20),
  SYNCHUB_POSITION_CHECK_MS: int(100).default(30_000),
  SYNCHUB_IDLE_TIMEOUT_SEC: int(8, 3600).default(120),
  SYNCHUB_COLLECTIONS: z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be a JSON array of {name, scope, kind, status_fields?, secret_fields?}' })
        return z.NEVER
      }
    })
    .pipe(z.array(DeclaredCollection).max(100))
    .default([]),
  SYNCHUB_DRAIN_DEADLINE_MS: int(100, 600_000).default(25_000),
  SYNCHUB_REDIS_SHARDED: z.enum(['true', 'false']).default('false'),
  SYNCHUB_FAULT_DROP_PUBLISH: z.coerce.number().pipe(z.number().min(0).max(1)).default(0),
  SYNCHUB_CORS_ORIGINS: OriginList.default([]),
  SYNCHUB_METRICS_TOKEN: z.string().regex(/^[\x21-\x7e]{16,256}$/, 'must be 16 to 256 visible ASCII characters (a bearer token)').optional(),
  SYNCHUB_METRICS_PORT: int(0, 65535).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
})

export interface Config {
  port: number
  host: string
  databaseUrl: string | undefined
  databasePoolSize: number
  redisUrl: string | undefined
  /** Group commits in flight at once per node. */
  commitLanes: number
  /** A lane's wait for more pushes before its next commit (COMMIT_DELAY_DEFAULT_MS). */
  commitDelayMs: number
  dataDir: string
  secret: string
  /** The secret before a rotation: provider keys sealed under it still open until `rotate-keys`. */
  previousSecret: string | undefined
  transport: 'auto' | 'uws' | 'ws'
  registration: 'invite' | 'open'
  adminUsername: string | undefined
  adminPassword: string | undefined
  nodeId: string
  accessTtlSec: number
  refreshTtlSec: number
  maxFrameBytes: number
  maxOpsPerPush: number
  maxRecordBytes: number
  /** Largest backup one import may upload (it is staged on disk while it is checked). */
  maxImportBytes: number
  trashRetentionMs: number
  /** How often the recycle bin is emptied of expired records (and old replay answers dropped). */
  purgeIntervalMs: number
  /** How many of each device's latest ops keep their first answer for a replay. */
  replayWindow: number
  authTimeoutMs: number
  sendBufferBytes: number
  badFrameLimit: number
  positionCheckMs: number
  idleTimeoutSec: number
  /** Prefix of every Redis key and channel, so several hubs can share one Redis. */
  redisPrefix: string
  /** Take the client's address from X-Forwarded-For (behind a trusted load balancer). */
  trustProxy: boolean
  /** Logins and registrations allowed per minute from one address, and per username. */
  authRatePerIp: number
  authRatePerUser: number
  /** Extra collections the operator declared, beside the built-in ones. */
  collections: DeclaredCollection[]
  /** SIGTERM: every socket must have been told `bye` and the process gone within this. */
  drainDeadlineMs: number
  /** Redis Cluster: SPUBLISH/SSUBSCRIBE with channels hashed by user. */
  redisSharded: boolean
  /** Fault injection for tests: the share of Redis publishes silently dropped (0..1). */
  faultDropPublish: number
  /** Browser origins allowed to call the API (CORS) and to open sockets; none by default. */
  corsOrigins: string[]
  /** When set, /metrics needs `Authorization: Bearer <this>`. */
  metricsToken: string | undefined
  /** When set, /metrics is served on this port (on HOST) and not on PORT. */
  metricsPort: number | undefined
  logLevel: z.infer<typeof ConfigEnv>['LOG_LEVEL']
  /** Things an operator should know that do not stop the hub (logged at start). */
  warnings: string[]
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
  }
}

/** Reads the configuration from an environment (default: process.env); throws ConfigError listing every problem. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // Empty variables count as unset, as in most deployment tools.
  const present = Object.fromEntries(Object.entries(env).filter(([k, v]) => k in ConfigEnv.shape && v !== undefined && v !== ''))
  const parsed = ConfigEnv.safeParse(present)
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || 'environment'}: ${i.message}`))
  }
  const e = parsed.data
  const problems: string[] = []
  const warnings: string[] = []
  if (Boolean(e.SYNCHUB_ADMIN_USERNAME) !== Boolean(e.SYNCHUB_ADMIN_PASSWORD)) {
    problems.push('SYNCHUB_ADMIN_USERNAME and SYNCHUB_ADMIN_PASSWORD: set both or neither')
  }
  if (e.SYNCHUB_MAX_RECORD_BYTES > e.SYNCHUB_MAX_FRAME_BYTES) {
    problems.push('SYNCHUB_MAX_RECORD_BYTES: must not exceed SYNCHUB_MAX_FRAME_BYTES')
  }
  if (e.SYNCHUB_METRICS_PORT !== undefined && e.SYNCHUB_METRICS_PORT !== 0 && e.SYNCHUB_METRICS_PORT === e.PORT) {
    problems.push('SYNCHUB_METRICS_PORT: must differ from PORT (unset it to serve /metrics on PORT)')
  }
  if (e.SYNCHUB_REPLAY_WINDOW < e.SYNCHUB_MAX_OPS_PER_PUSH) {
    problems.push('SYNCHUB_REPLAY_WINDOW: must be at least SYNCHUB_MAX_OPS_PER_PUSH, so a whole push replayed gets its first answers')
  }
  let secret = e.SYNCHUB_SECRET
  if (!secret && e.DATABASE_URL) {
    problems.push('SYNCHUB_SECRET: required with DATABASE_URL (every hub node must share it); at least 32 characters')
  } else if (!secret) {
    secret = embeddedSecret(e.SYNCHUB_DATA_DIR, warnings)
  }
  try {
    registryWith(e.SYNCHUB_COLLECTIONS)
  } catch (err) {
    problems.push(`SYNCHUB_COLLECTIONS: ${(err as Error).message}`)
  }
  if (problems.length > 0) throw new ConfigError(problems)
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    databasePoolSize: e.DATABASE_POOL_SIZE,
    redisUrl: e.REDIS_URL,
    dataDir: e.SYNCHUB_DATA_DIR,
    secret: secret!,
    commitLanes: e.SYNCHUB_COMMIT_LANES,
    commitDelayMs: e.SYNCHUB_COMMIT_DELAY_MS ?? COMMIT_DELAY_DEFAULT_MS[e.REDIS_URL ? 'cluster' : 'single'],
    previousSecret: e.SYNCHUB_SECRET_PREVIOUS,
    transport: e.SYNCHUB_TRANSPORT,
    registration: e.SYNCHUB_REGISTRATION,
    adminUsername: e.SYNCHUB_ADMIN_USERNAME,
    adminPassword: e.SYNCHUB_ADMIN_PASSWORD,
    nodeId: e.SYNCHUB_NODE_ID ?? `${hostname()}-${randomUUID().slice(0, 8)}`,
    accessTtlSec: e.SYNCHUB_ACCESS_TTL,
    refreshTtlSec: e.SYNCHUB_REFRESH_TTL,
    maxFrameBytes: e.SYNCHUB_MAX_FRAME_BYTES,
    maxOpsPerPush: e.SYNCHUB_MAX_OPS_PER_PUSH,
    maxRecordBytes: e.SYNCHUB_MAX_RECORD_BYTES,
    maxImportBytes: e.SYNCHUB_MAX_IMPORT_BYTES,
    trashRetentionMs: e.SYNCHUB_TRASH_RETENTION_MS,
    purgeIntervalMs: e.SYNCHUB_PURGE_INTERVAL_MS,
    replayWindow: e.SYNCHUB_REPLAY_WINDOW,
    authTimeoutMs: e.SYNCHUB_AUTH_TIMEOUT_MS,
    sendBufferBytes: e.SYNCHUB_SEND_BUFFER_BYTES,
    badFrameLimit: e.SYNCHUB_BAD_FRAME_LIMIT,
    positionCheckMs: e.SYNCHUB_POSITION_CHECK_MS,
    idleTimeoutSec: e.SYNCHUB_IDLE_TIMEOUT_SEC,
    redisPrefix: e.SYNCHUB_REDIS_PREFIX,
    trustProxy: e.SYNCHUB_TRUST_PROXY === 'true',
    authRatePerIp: e.SYNCHUB_AUTH_RATE_IP,
    authRatePerUser: e.SYNCHUB_AUTH_RATE_USER,
    collections: e.SYNCHUB_COLLECTIONS,
    drainDeadlineMs: e.SYNCHUB_DRAIN_DEADLINE_MS,
    redisSharded: e.SYNCHUB_REDIS_SHARDED === 'true',
    faultDropPublish: e.SYNCHUB_FAULT_DROP_PUBLISH,
    corsOrigins: e.SYNCHUB_CORS_ORIGINS,
    metricsToken: e.SYNCHUB_METRICS_TOKEN,
    metricsPort: e.SYNCHUB_METRICS_PORT,
    logLevel: e.LOG_LEVEL,
    warnings,
  }
}

/**
 * The embedded default needs no setup: a secret is generated once and kept beside the data,
 * so tokens and encrypted keys survive restarts. In-memory stores get a throwaway one.
 */
function embeddedSecret(dataDir: string, warnings: string[]): string {
  if (dataDir.startsWith('memory://')) return randomBytes(32).toString('base64url')
  const file = join(dataDir, 'secret')
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  mkdirSync(dataDir, { recursive: true })
  const secret = randomBytes(32).toString('base64url')
  writeFileSync(file, secret + '\n', { mode: 0o600 })
  warnings.push(`SYNCHUB_SECRET is not set: generated one in ${file}; set SYNCHUB_SECRET to choose your own`)
  return secret
}
