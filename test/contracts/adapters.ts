/**
 * Every adapter of every port, in one place. Each port has one contract suite in this directory
 * (store, bus, presence, rate-limit, denylist, transport, clock) that runs against each adapter
 * of its list here, the way socket.io-redis-adapter runs one suite against each of its clients.
 * Adding an adapter is adding one line to its port's list; suites elsewhere that must run on
 * every store or transport (the hub's variants, the auth suites) take their lists from here too.
 */
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { createMemoryBus } from '../../src/bus/memory.ts'
import type { Bus } from '../../src/bus/port.ts'
import { createRedisBus } from '../../src/bus/redis.ts'
import { createMemoryDenylist, type TokenDenylist } from '../../src/cluster/denylist.ts'
import { createRedisDenylist } from '../../src/cluster/denylist-redis.ts'
import { createMemoryPresence, type Presence } from '../../src/cluster/presence.ts'
import { createRedisPresence } from '../../src/cluster/presence-redis.ts'
import { createMemoryRateLimiter, type RateLimiter } from '../../src/cluster/rate-limit.ts'
import { createRedisRateLimiter } from '../../src/cluster/rate-limit-redis.ts'
import { connectClusterRedis } from '../../src/cluster/state.ts'
import { migrate } from '../../src/store/migrate.ts'
import { createPgliteClient } from '../../src/store/pglite.ts'
import { createPostgresClient } from '../../src/store/postgres.ts'
import type { SqlClient } from '../../src/store/sql-client.ts'
import { systemClock, type Clock } from '../../src/time/clock.ts'
import { ManualClock } from '../helpers/manual-clock.ts'
import { migratedPglite } from '../helpers/pglite-template.ts'
import { TEST_REDIS_URL, freshPostgresSchema, postgresAvailable, redisAvailable } from '../helpers/services.ts'
import { waitUntil } from '../helpers/wait.ts'

/** An adapter of a port: how to tell it cannot run here (only outside CI), and how to open it. */
export interface Adapter<Opened> {
  name: string
  /** Why it cannot run on this machine, or false. Under CI a missing service fails instead. */
  unavailable(): Promise<string | false>
  open(): Promise<Opened & { close(): Promise<void> }>
}

const needsPostgres = async () => ((await postgresAvailable()) ? false : 'Postgres is not running (start it, or set CI=true to make this a failure)')
const needsRedis = async () => ((await redisAvailable()) ? false : 'Redis is not running (start it, or set CI=true to make this a failure)')
const always = async () => false as const
/** A key prefix of its own in the shared Redis, so suites never see each other's keys or channels. */
const freshPrefix = (what: string) => `t-${what}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`

// ---- store ------------------------------------------------------------------------------------

/** A fresh, empty database (not migrated) and further clients of it, as other nodes would hold. */
export interface OpenedStore {
  db: SqlClient
  /** Another client of the same database (PGlite has one: itself). */
  again(): Promise<SqlClient>
}

/** A store adapter can also open a database with every migration applied (suites that are not about migrating). */
export interface StoreAdapter extends Adapter<OpenedStore> {
  openMigrated(): Promise<{ db: SqlClient; close(): Promise<void> }>
}

function postgresStore(): StoreAdapter {
  return {
    name: 'postgres',
    unavailable: needsPostgres,
    async openMigrated() {
      const opened = await this.open()
      await migrate(opened.db)
      return opened
    },
    async open() {
      const schema = await freshPostgresSchema()
      const opened: SqlClient[] = []
      const again = async () => {
        const c = createPostgresClient({ url: schema.url, max: 3 })
        opened.push(c)
        return c
      }
      const db = await again()
      return { db, again, close: async () => (await Promise.all(opened.map((c) => c.close())), await schema.drop()) }
    },
  }
}

function pgliteStore(): StoreAdapter {
  return {
    name: 'pglite',
    unavailable: always,
    async openMigrated() {
      const db = await migratedPglite()
      return { db, close: () => db.close() }
    },
    async open() {
      const db = await createPgliteClient()
      return { db, again: async () => db, close: () => db.close() }
    },
  }
}

export const STORES: StoreAdapter[] = [postgresStore(), pgliteStore()]

// ---- bus --------------------------------------------------------------------------------------

/** Two nodes on one bus; the in-process bus is one node seen twice. */
export interface OpenedBus {
  nodes: [Bus, Bus]
}

function memoryBus(): Adapter<OpenedBus> {
  return {
    name: 'memory',
    unavailable: always,
    async open() {
      const bus = createMemoryBus()
      return { nodes: [bus, bus], close: () => bus.close() }
    },
  }
}

function redisBus(opts: { url: string; sharded?: boolean }): Adapter<OpenedBus> {
  return {
    name: opts.sharded ? 'redis-sharded' : 'redis',
    unavailable: needsRedis,
    async open() {
      const prefix = freshPrefix('bus')
      const a = createRedisBus({ url: opts.url, nodeId: 'a', prefix, sharded: opts.sharded })
      const b = createRedisBus({ url: opts.url, nodeId: 'b', prefix, sharded: opts.sharded })
      return { nodes: [a, b], close: async () => (await a.close(), await b.close()) }
    },
  }
}

/** `sharded`: SPUBLISH/SSUBSCRIBE (SYNCHUB_REDIS_SHARDED), which Redis 7 serves on a single node too. */
export const BUSES: Array<Adapter<OpenedBus>> = [memoryBus(), redisBus({ url: TEST_REDIS_URL }), redisBus({ url: TEST_REDIS_URL, sharded: true })]

// ---- cluster state: presence, rate limiter, denylist ------------------------------------------

/**
 * Two nodes' views of one shared state (one view twice for an in-memory adapter), on a clock the
 * suite moves. `elapse` lets time pass for the adapter: the clock is moved, and a Redis adapter
 * also waits that long for real, since Redis expires keys on its own clock.
 */
export interface OpenedShared<T> {
  nodes: [T, T]
  /** The node ids, for presence. */
  nodeIds: [string, string]
  clock: ManualClock
  elapse(ms: number): Promise<void>
}

function memoryShared<T>(make: (clock: ManualClock, nodeId: string) => T, close: (x: T) => Promise<void>): Adapter<OpenedShared<T>> {
  return {
    name: 'memory',
    unavailable: always,
    async open() {
      const clock = new ManualClock()
      const one = make(clock, 'node-a')
      return { nodes: [one, one], nodeIds: ['node-a', 'node-a'], clock, elapse: (ms) => clock.advance(ms), close: () => close(one) }
    },
  }
}

function redisShared<T>(make: (redis: Redis, prefix: string, clock: ManualClock, nodeId: string) => T, close: (x: T) => Promise<void>): Adapter<OpenedShared<T>> {
  return {
    name: 'redis',
    unavailable: needsRedis,
    async open() {
      const clock = new ManualClock(Date.now())
      const prefix = freshPrefix('state')
      const connections = [connectClusterRedis(TEST_REDIS_URL), connectClusterRedis(TEST_REDIS_URL)] as const
      await Promise.all(connections.map((r) => (r.status === 'ready' ? undefined : new Promise((resolve) => r.once('ready', resolve)))))
      const nodes: [T, T] = [make(connections[0], prefix, clock, 'node-a'), make(connections[1], prefix, clock, 'node-b')]
      return {
        nodes,
        nodeIds: ['node-a', 'node-b'],
        clock,
        elapse: async (ms) => (await clock.advance(ms), await new Promise((r) => setTimeout(r, ms))),
        close: async () => {
          for (const n of nodes) await close(n)
          for (const r of connections) await r.quit().catch(() => r.disconnect())
        },
      }
    },
  }
}

export const PRESENCES: Array<Adapter<OpenedShared<Presence>>> = [
  memoryShared((clock, nodeId) => createMemoryPresence({ nodeId, clock }), (p) => p.close()),
  redisShared((redis, prefix, clock, nodeId) => createRedisPresence(redis, { nodeId, prefix, clock }), (p) => p.close()),
]

export const RATE_LIMITERS: Array<Adapter<OpenedShared<RateLimiter>>> = [
  memoryShared((clock) => createMemoryRateLimiter(clock), (l) => l.close()),
  redisShared((redis, prefix) => createRedisRateLimiter(redis, { prefix }), (l) => l.close()),
]

export const DENYLISTS: Array<Adapter<OpenedShared<TokenDenylist>>> = [
  memoryShared((clock) => createMemoryDenylist(clock), async () => {}),
  redisShared((redis, prefix, clock) => createRedisDenylist(redis, { prefix, clock }), async () => {}),
]

// ---- transport --------------------------------------------------------------------------------

export const TRANSPORTS: ReadonlyArray<{ name: 'uws' | 'ws' }> = [{ name: 'uws' }, { name: 'ws' }]

// ---- clock ------------------------------------------------------------------------------------

/** A clock and how to let its time pass until something holds (a real wait, or moving it by hand). */
export interface OpenedClock {
  clock: Clock
  /** Lets time pass, a millisecond at a time on a manual clock, until `pred` holds. */
  until(pred: () => boolean): Promise<void>
  /** Lets at least `ms` pass. */
  elapse(ms: number): Promise<void>
}

export const CLOCKS: Array<Adapter<OpenedClock>> = [
  {
    name: 'system',
    unavailable: always,
    open: async () => ({
      clock: systemClock,
      until: (pred) => waitUntil(pred),
      elapse: (ms) => new Promise((r) => setTimeout(r, ms)),
      close: async () => {},
    }),
  },
  {
    name: 'manual',
    unavailable: always,
    async open() {
      const clock = new ManualClock()
      return {
        clock,
        async until(pred) {
          for (let i = 0; i < 60_000 && !pred(); i++) await clock.advance(1)
          if (!pred()) throw new Error('condition not met within a minute of manual time')
        },
        elapse: (ms) => clock.advance(ms),
        close: async () => {},
      }
    },
  },
]

// ---- runners ----------------------------------------------------------------------------------

/** Runs `suite` as one subtest per adapter of `adapters`, each freshly opened and closed after. */
export function eachAdapter<O>(adapters: ReadonlyArray<Adapter<O>>, suite: (t: Test, opened: O & { close(): Promise<void> }, name: string) => Promise<void>): void {
  for (const adapter of adapters) {
    t.test(adapter.name, async (t) => {
      const skip = await adapter.unavailable()
      if (skip) return void t.skip(skip, () => {})
      const opened = await adapter.open()
      t.teardown(() => opened.close())
      await suite(t, opened, adapter.name)
    })
  }
}

/**
 * Runs `suite` as one subtest per store, each on a fresh, migrated database: for suites that
 * are not the store's contract but must hold on every store.
 */
export function eachStore(suite: (t: Test, db: SqlClient) => Promise<void>): void {
  for (const store of STORES) {
    t.test(store.name, async (t) => {
      const skip = await store.unavailable()
      if (skip) return void t.skip(skip, () => {})
      const { db, close } = await store.openMigrated()
      t.teardown(close)
      await suite(t, db)
    })
  }
}
