import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig } from '../../src/ops/config.ts'

const SECRET = 'a-secret-of-at-least-thirty-two-characters'

t.test('defaults need no setup: embedded store, in-process bus, generated secret kept in the data dir', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'synchub-config-'))
  const first = loadConfig({ SYNCHUB_DATA_DIR: dir })
  t.match(first, { port: 8080, host: '0.0.0.0', databaseUrl: undefined, redisUrl: undefined, transport: 'auto', registration: 'invite', accessTtlSec: 900 })
  t.equal(first.maxFrameBytes, 1024 * 1024)
  t.equal(first.maxOpsPerPush, 500)
  t.equal(first.maxRecordBytes, 256 * 1024)
  t.equal(first.sendBufferBytes, 1024 * 1024)
  t.ok(first.secret.length >= 32, 'a strong secret was generated')
  t.match(first.warnings, [/SYNCHUB_SECRET is not set/], 'and the operator is told')
  t.equal(statSync(join(dir, 'secret')).mode & 0o777, 0o600, 'readable by the owner only')
  const second = loadConfig({ SYNCHUB_DATA_DIR: dir })
  t.equal(second.secret, first.secret, 'the same secret on the next start, so tokens survive restarts')
  t.same(second.warnings, [])
  t.equal(readFileSync(join(dir, 'secret'), 'utf8').trim(), first.secret)
})

t.test('every problem is listed at once', async (t) => {
  const err = t.throws(() =>
    loadConfig({ PORT: 'eighty', SYNCHUB_TRANSPORT: 'carrier-pigeon', SYNCHUB_SECRET: 'short', DATABASE_URL: 'mysql://x', SYNCHUB_ACCESS_TTL: '0' }),
  ) as ConfigError
  t.type(err, ConfigError)
  const text = err.problems.join('\n')
  for (const name of ['PORT', 'SYNCHUB_TRANSPORT', 'SYNCHUB_SECRET', 'DATABASE_URL', 'SYNCHUB_ACCESS_TTL']) t.match(text, name, `names ${name}`)
  t.equal(err.problems.length, 5)
})

/** The problems a configuration is refused with (none when it loads). */
function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env)
    return []
  } catch (err) {
    return (err as ConfigError).problems
  }
}

t.test('cross-field rules', async (t) => {
  t.match(problemsOf({ DATABASE_URL: 'postgres://db/x' }), [/SYNCHUB_SECRET: required with DATABASE_URL/], 'Postgres needs a shared secret')
  t.match(problemsOf({ SYNCHUB_SECRET: SECRET, SYNCHUB_ADMIN_USERNAME: 'root' }), [/set both or neither/])
  t.match(problemsOf({ SYNCHUB_SECRET: SECRET, SYNCHUB_MAX_RECORD_BYTES: '2000000' }), [/must not exceed SYNCHUB_MAX_FRAME_BYTES/])
  t.match(problemsOf({ SYNCHUB_SECRET: SECRET, SYNCHUB_REPLAY_WINDOW: '499' }), [/SYNCHUB_REPLAY_WINDOW: must be at least SYNCHUB_MAX_OPS_PER_PUSH/], 'a replay window smaller than one push')
  t.match(loadConfig({ SYNCHUB_SECRET: SECRET, SYNCHUB_REPLAY_WINDOW: '40', SYNCHUB_MAX_OPS_PER_PUSH: '40' }), { replayWindow: 40, maxOpsPerPush: 40 })
  const ok = loadConfig({ DATABASE_URL: 'postgres://db/x', SYNCHUB_SECRET: SECRET, REDIS_URL: 'redis://r:6379', PORT: '9000', SYNCHUB_TRANSPORT: 'ws' })
  t.match(ok, { databaseUrl: 'postgres://db/x', redisUrl: 'redis://r:6379', port: 9000, transport: 'ws', secret: SECRET, warnings: [] })
})

t.test('commits default to one lane, with a 2 ms linger where nodes share a database (Redis set); the settings override', async (t) => {
  const base = { DATABASE_URL: 'postgres://db/x', SYNCHUB_SECRET: SECRET }
  t.match(loadConfig(base), { commitLanes: 1, commitDelayMs: 0 }, 'one node: one lane, no linger')
  t.match(loadConfig({ ...base, REDIS_URL: 'redis://r:6379' }), { commitLanes: 1, commitDelayMs: 2 }, 'a cluster: one lane, 2 ms')
  t.equal(loadConfig({ ...base, REDIS_URL: 'redis://r:6379', SYNCHUB_COMMIT_LANES: '3' }).commitLanes, 3)
  t.equal(loadConfig({ ...base, REDIS_URL: 'redis://r:6379', SYNCHUB_COMMIT_DELAY_MS: '0' }).commitDelayMs, 0)
  t.equal(loadConfig({ ...base, SYNCHUB_COMMIT_DELAY_MS: '5' }).commitDelayMs, 5)
  t.equal(loadConfig({ ...base, SYNCHUB_COMMIT_LANES: '2' }).commitLanes, 2)
  t.match(problemsOf({ ...base, SYNCHUB_COMMIT_DELAY_MS: '500' }), [/SYNCHUB_COMMIT_DELAY_MS/], 'over 100 ms is refused')
})

t.test('empty variables count as unset', async (t) => {
  const config = loadConfig({ SYNCHUB_DATA_DIR: 'memory://', PORT: '', DATABASE_URL: '' })
  t.equal(config.port, 8080)
  t.equal(config.databaseUrl, undefined)
})

t.test('declared collections are validated with the rest', async (t) => {
  const ok = loadConfig({ SYNCHUB_DATA_DIR: 'memory://', SYNCHUB_COLLECTIONS: '[{"name":"mcp_servers","scope":"tools.mcp"}]' })
  t.match(ok.collections, [{ name: 'mcp_servers', scope: 'tools.mcp', kind: 'mutable' }])
  t.match(problemsOf({ SYNCHUB_COLLECTIONS: 'not json' }), [/SYNCHUB_COLLECTIONS: must be a JSON array/])
  t.match(problemsOf({ SYNCHUB_COLLECTIONS: '[{"name":"Bad Name","scope":"x"}]' }), [/SYNCHUB_COLLECTIONS/])
  t.match(problemsOf({ SYNCHUB_SECRET: SECRET, SYNCHUB_COLLECTIONS: '[{"name":"messages","scope":"x"}]' }), [/messages is declared twice or is built in/], 'a built-in name cannot be taken')
})

t.test('browser origins, the metrics token and the metrics port', async (t) => {
  const base = { SYNCHUB_DATA_DIR: 'memory://' }
  const none = loadConfig(base)
  t.strictSame([none.corsOrigins, none.metricsToken, none.metricsPort], [[], undefined, undefined], 'none by default')
  const set = loadConfig({ ...base, SYNCHUB_CORS_ORIGINS: ' https://app.example.com, http://localhost:3000 ', SYNCHUB_METRICS_TOKEN: 'metrics-token-0123456789', SYNCHUB_METRICS_PORT: '9090' })
  t.strictSame(set.corsOrigins, ['https://app.example.com', 'http://localhost:3000'])
  t.equal(set.metricsToken, 'metrics-token-0123456789')
  t.equal(set.metricsPort, 9090)
  for (const origin of ['*', 'https://app.example.com/', 'https://app.example.com/path', 'ftp://files.example.com', 'app.example.com', 'https://app.example.com:443']) {
    const err = t.throws(() => loadConfig({ ...base, SYNCHUB_CORS_ORIGINS: origin }), `${origin} is not an origin`) as ConfigError
    t.match(err.problems, [/SYNCHUB_CORS_ORIGINS: .*not an origin/])
  }
  const both = t.throws(() => loadConfig({ ...base, SYNCHUB_METRICS_TOKEN: 'short', PORT: '9090', SYNCHUB_METRICS_PORT: '9090' })) as ConfigError
  t.match(both.problems, [/SYNCHUB_METRICS_TOKEN: must be 16 to 256/])
  const samePort = t.throws(() => loadConfig({ ...base, PORT: '9090', SYNCHUB_METRICS_PORT: '9090' })) as ConfigError
  t.match(samePort.problems, [/SYNCHUB_METRICS_PORT: must differ from PORT/])
})
