import { readFileSync } from 'node:fs'
import { Redis } from 'ioredis'
import { onCleanup } from './cleanup.ts'

export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * A key/channel prefix of this run's own on the shared Redis (other users' tests run against it
 * too). `drop()`, or the cleanup hooks if the run is interrupted, deletes whatever keys the
 * servers left under it (synchub's presence and rate-limit keys; pub/sub leaves none).
 */
export function redisPrefix(kind: string): { prefix: string; drop(): Promise<void> } {
  const prefix = `bench_${kind}_${Date.now().toString(36)}_${Math.random().toString(36).slice(2, 8)}`
  let dropped: Promise<void> | undefined
  const drop = () => (dropped ??= withRedis((r) => deleteKeys(r, `${prefix}*`)).finally(unregister))
  const unregister = onCleanup({ async: drop })
  return { prefix, drop }
}

/** The Redis server's pid (INFO server), so its CPU can be sampled; none if it is not on this machine. */
export async function redisServerPids(): Promise<number[]> {
  try {
    const info = await withRedis((r) => r.info('server'))
    const pid = Number(/^process_id:(\d+)/m.exec(info)?.[1])
    // A Redis in a container reports a pid of its own namespace: only trust it if it is Redis here.
    return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('redis') ? [pid] : []
  } catch {
    return []
  }
}

async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000)
    if (keys.length) await redis.unlink(...keys)
    cursor = next
  } while (cursor !== '0')
}

async function withRedis<T>(fn: (r: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(BENCH_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1, connectTimeout: 5000, retryStrategy: () => null })
  redis.on('error', () => {}) // the command's rejection is what counts
  try {
    await redis.connect()
    return await fn(redis)
  } finally {
    redis.disconnect()
  }
}
