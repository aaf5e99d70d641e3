import type { Bus } from '../bus/port.ts'
import { KeyBox } from '../crypto/key-box.ts'
import type { Config } from '../ops/config.ts'
import type { Metrics } from '../ops/metrics.ts'
import { SyncStore } from '../store/sync-store.ts'
import { AckRecorder } from '../sync/ack-recorder.ts'
import { registryWith } from '../sync/collections.ts'
import { SyncEngine } from '../sync/engine.ts'
import { Feeds } from '../sync/feed.ts'
import { RecordCodec } from '../sync/record-codec.ts'
import type { Clock } from '../time/clock.ts'
import type { Database } from './database.ts'

export interface SyncCore {
  store: SyncStore
  codec: RecordCodec
  engine: SyncEngine
  feeds: Feeds
  acks: AckRecorder
  close(): Promise<void>
}

/** The sync engine over the store and the bus, the node's feeds, and the ack recorder. */
export function startSync(config: Config, deps: { database: Database; bus: Bus; metrics: Metrics; clock: Clock }): SyncCore {
  const { database, bus, metrics, clock } = deps
  const store = new SyncStore(database.db, database.commitDb)
  const codec = new RecordCodec(registryWith(config.collections), new KeyBox(config.secret, config.previousSecret))
  const engine = new SyncEngine({
    store,
    bus,
    codec,
    maxOpsPerPush: config.maxOpsPerPush,
    maxRecordBytes: config.maxRecordBytes,
    trashRetentionMs: config.trashRetentionMs,
    lanes: database.lanes,
    commitDelayMs: config.commitDelayMs,
    now: clock.now,
    onBatch: ({ pushes, ops, ms }) => {
      metrics.commits.inc()
      metrics.pushes.inc(pushes)
      metrics.ops.inc(ops)
      metrics.commitSeconds.observe(ms / 1000)
    },
  })
  const feeds = new Feeds({ bus, store, codec, onGapFill: (cause) => metrics.gapFills.inc({ cause }) })
  const acks = new AckRecorder(store, { clock })
  return {
    store,
    codec,
    engine,
    feeds,
    acks,
    async close() {
      await acks.stop()
      feeds.close()
    },
  }
}
