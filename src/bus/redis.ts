import { Redis } from 'ioredis'
import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.ts'
import type { Change } from '../../protocol/records.ts'
import type { Bus, ChangeBatch, ControlMessage } from './port.ts'

export interface RedisBusOptions {
  url: string
  /** This node's id: its own publishes are delivered locally at once and skipped when they echo back. */
  nodeId: string
  /** Channel prefix, so several hubs can share one Redis. */
  prefix?: string
  /** Redis Cluster: SPUBLISH/SSUBSCRIBE, channels hashed by user (`{user}` hash tag). */
  sharded?: boolean
  /** Batches whose encoding exceeds this travel as a poke (range only); receivers read the store. */
  maxPayloadBytes?: number
  /** Testing aid: the share of publishes silently dropped (0..1). The gap fill must cover them. */
  dropRate?: number
  onReconnect?: () => void
  /** Milliseconds from another node's publish to its arrival here (clocks of one cluster). */
  onRemoteBatch?: (latencyMs: number) => void
}

/** Users whose failed publishes a node keeps, to poke for once Redis is back. */
const MAX_UNSENT_USERS = 10_000

/** n: publishing node, u: user, f/t: cursor range, a: publish time (ms), c: the changes (absent in a poke). */
type Wire = { n: string; u: string; f: number; t: number; a?: number; c?: Change[] }

/**
 * Fan-out through Redis pub/sub, which is at-most-once: a node keeps no promise that it saw
 * every publish. Feeds fill gaps from the store; after a reconnect `onResync` asks them all to
 * check, since whatever was published meanwhile is gone.
 */
export function createRedisBus(opts: RedisBusOptions): Bus {
  const prefix = opts.prefix ?? 'synchub'
  const maxPayload = opts.maxPayloadBytes ?? 64 * 1024
  const common = { maxRetriesPerRequest: null, enableAutoPipelining: true, retryStrategy: (n: number) => Math.min(50 * 2 ** n, 2000) }
  const pub = new Redis(opts.url, { ...common, enableOfflineQueue: false })
  const sub = new Redis(opts.url, { ...common, autoResubscribe: true })
  pub.on('error', () => {})
  sub.on('error', () => {})

  const userChannel = (user: string) => (opts.sharded ? `${prefix}:u:{${user}}` : `${prefix}:u:${user}`)
  const controlChannel = `${prefix}:control`
  const listeners = new Map<string, Set<(batch: ChangeBatch) => void>>()
  const control = new Set<(m: ControlMessage) => void>()
  const resync = new Set<() => void>()

  // Subscribes and unsubscribes are gathered and sent once per tick.
  const toSubscribe = new Set<string>()
  const toUnsubscribe = new Set<string>()
  let flushScheduled = false
  let lastFlush: Promise<unknown> = Promise.resolve()
  const flush = () => {
    flushScheduled = false
    const add = [...toSubscribe].map(userChannel)
    const remove = [...toUnsubscribe].map(userChannel)
    toSubscribe.clear()
    toUnsubscribe.clear()
    lastFlush = Promise.allSettled([
      add.length ? (opts.sharded ? sub.ssubscribe(...add) : sub.subscribe(...add)) : undefined,
      remove.length ? (opts.sharded ? sub.sunsubscribe(...remove) : sub.unsubscribe(...remove)) : undefined,
    ])
  }
  const schedule = () => {
    if (!flushScheduled) {
      flushScheduled = true
      setImmediate(flush)
    }
  }

  const deliver = (batch: ChangeBatch) => {
    const set = listeners.get(batch.user)
    if (set) for (const l of set) l(batch)
  }
  const onMessage = (channel: Buffer, message: Buffer) => {
    let wire: Wire
    try {
      wire = decodeMsgpack(message) as Wire
    } catch {
      return
    }
    if (wire.n === opts.nodeId) return
    if (channel.toString() === controlChannel) {
      const { n: _node, ...message } = wire as unknown as ControlMessage & { n: string }
      for (const h of control) h(message as ControlMessage)
      return
    }
    if (wire.a !== undefined) opts.onRemoteBatch?.(Date.now() - wire.a)
    deliver({ user: wire.u, from: wire.f, to: wire.t, ...(wire.c ? { changes: wire.c } : {}) })
  }
  sub.on('messageBuffer', onMessage)
  sub.on('smessageBuffer', onMessage)
  const controlSubscribed = sub.subscribe(controlChannel).catch(() => {})
  const connected = (r: Redis) => (r.status === 'ready' ? Promise.resolve() : new Promise<void>((resolve) => r.once('ready', () => resolve())))

  let connectedOnce = false
  sub.on('ready', () => {
    if (connectedOnce) {
      opts.onReconnect?.()
      for (const h of resync) h()
    }
    connectedOnce = true
  })

  // Publishes not yet answered: close() lets them go out first (a command like `synchub import` publishes, then exits).
  const inflight = new Set<Promise<unknown>>()
  const publishRaw = (channel: string, payload: Uint8Array, onFailure?: () => void) => {
    const p = (opts.sharded && channel !== controlChannel ? pub.spublish(channel, Buffer.from(payload)) : pub.publish(channel, Buffer.from(payload))).catch(
      () => onFailure?.(),
    )
    inflight.add(p)
    void p.finally(() => inflight.delete(p))
  }

  // Commits whose publish failed while this node's connection to Redis was down. Once it is back,
  // each user's missed range goes out as one poke: the other nodes' feeds read it from the store
  // then, instead of at their next position check (their own reconnect check may have run
  // before these commits). Bounded; past the bound the position check still covers the rest.
  const unsent = new Map<string, { from: number; to: number }>()
  const remember = (user: string, from: number, to: number) => {
    const known = unsent.get(user)
    unsent.delete(user) // re-inserted last: Map order is the eviction order
    unsent.set(user, { from: Math.min(from, known?.from ?? from), to: Math.max(to, known?.to ?? to) })
    if (unsent.size > MAX_UNSENT_USERS) unsent.delete(unsent.keys().next().value!)
  }
  const pokeUnsent = () => {
    const missed = [...unsent]
    unsent.clear()
    for (const [user, r] of missed) {
      publishRaw(userChannel(user), encodeMsgpack({ n: opts.nodeId, u: user, f: r.from, t: r.to, a: Date.now() } satisfies Wire), () => remember(user, r.from, r.to))
    }
  }
  let pubConnectedOnce = false
  pub.on('ready', () => {
    if (pubConnectedOnce) pokeUnsent()
    pubConnectedOnce = true
  })

  return {
    kind: 'redis',
    publish(batch) {
      deliver(batch)
      if (opts.dropRate && Math.random() < opts.dropRate) return
      const head = { n: opts.nodeId, u: batch.user, f: batch.from, t: batch.to, a: Date.now() }
      // Secrets never travel through Redis: other nodes read them from the store, sealed at rest.
      const full = batch.sensitive ? undefined : encodeMsgpack({ ...head, c: batch.changes } satisfies Wire)
      publishRaw(userChannel(batch.user), full && full.byteLength <= maxPayload ? full : encodeMsgpack(head satisfies Wire), () =>
        remember(batch.user, batch.from, batch.to),
      )
    },
    subscribe(user, onBatch) {
      let set = listeners.get(user)
      if (!set) {
        listeners.set(user, (set = new Set()))
        if (!toUnsubscribe.delete(user)) toSubscribe.add(user)
        schedule()
      }
      set.add(onBatch)
      return () => {
        set.delete(onBatch)
        if (set.size === 0 && listeners.get(user) === set) {
          listeners.delete(user)
          if (!toSubscribe.delete(user)) toUnsubscribe.add(user)
          schedule()
        }
      }
    },
    publishControl(message) {
      for (const h of control) h(message)
      publishRaw(controlChannel, encodeMsgpack({ ...message, n: opts.nodeId }))
    },
    onControl(handler) {
      control.add(handler)
      return () => control.delete(handler)
    },
    async ready() {
      await Promise.all([connected(pub), connected(sub), controlSubscribed])
      // Subscribes are gathered per tick: let this tick's go out, then wait for their replies.
      await new Promise((resolve) => setImmediate(resolve))
      await lastFlush
    },
    onResync(handler) {
      resync.add(handler)
      return () => resync.delete(handler)
    },
    async close() {
      listeners.clear()
      // Bounded: with Redis unreachable a publish may never be answered.
      await Promise.race([Promise.allSettled([...inflight]), new Promise((resolve) => setTimeout(resolve, 1000).unref())])
      await Promise.allSettled([pub.quit(), sub.quit()])
      pub.disconnect()
      sub.disconnect()
    },
  }
}
