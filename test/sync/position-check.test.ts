import { createMemoryBus } from '../../src/bus/memory.ts'
import type { ChangeBatch } from '../../src/bus/port.ts'
import { SyncStore } from '../../src/store/sync-store.ts'
import { CollectionRegistry } from '../../src/sync/collections.ts'
import { SyncEngine } from '../../src/sync/engine.ts'
import { RecordCodec } from '../../src/sync/record-codec.ts'
import { Feeds, type LiveBatch } from '../../src/sync/feed.ts'
import { eachStore } from '../contracts/adapters.ts'

/**
 * The periodic position check against a real store: a feed that missed commits (here: they were
 * published on another bus) gets them from the store; a feed that is current reads nothing and
 * counts no fill.
 */

const conversation = (mid: number, id: string) => ({ op: 'put' as const, mid, collection: 'conversations', id, data: { title: id } })

eachStore(async (t, db) => {
  const users = ['u1', 'u2', 'u3']
  await db.query(`INSERT INTO users (id, username, password_hash, created_at) SELECT u, u, 'x', 1 FROM unnest($1::text[]) AS u`, [users])
  await db.query(`INSERT INTO user_state (user_id, epoch) SELECT u, 'e1' FROM unnest($1::text[]) AS u`, [users])
  const store = new SyncStore(db)
  const committing = createMemoryBus()
  const listening = createMemoryBus()
  const codec = new RecordCodec(new CollectionRegistry())
  const engine = new SyncEngine({ store, bus: committing, codec, maxOpsPerPush: 100, maxRecordBytes: 65536, trashRetentionMs: 1000, lanes: 1 })
  const fills: string[] = []
  const feeds = new Feeds({ bus: listening, store, codec, onGapFill: (cause) => fills.push(cause) })
  t.teardown(() => feeds.close())
  const seen = new Map<string, LiveBatch[]>(users.map((u) => [u, []]))
  for (const u of users) {
    feeds.attach(u, { onBatch: (b) => seen.get(u)!.push(b) })
    feeds.seed(u, 0)
  }

  await engine.push('u1', 'd1', [conversation(1, 'a'), conversation(2, 'b')])
  await engine.push('u3', 'd3', [conversation(1, 'c')])
  t.same([...seen.values()].flat(), [], 'commits published on the other bus reach no feed live')

  await feeds.checkAll()
  t.same(seen.get('u1')!.map((b) => [b.from, b.to, b.changes.map((c) => c.id)]), [[0, 2, ['a', 'b']]], 'u1’s missed changes are filled from the store')
  t.same(seen.get('u3')!.map((b) => [b.from, b.to]), [[0, 1]], 'and u3’s')
  t.same(seen.get('u2'), [], 'u2, already current, gets nothing')
  t.same(fills, ['check', 'check'], 'a fill is counted only for the feeds that were behind')

  await feeds.checkAll()
  t.equal(fills.length, 2, 'a second check finds every feed current and reads no changes')
  t.equal(seen.get('u1')!.length, 1, 'and delivers nothing twice')

  // Commits whose publish reaches the feed while the check runs: right after the heads are read
  // (the feed is then ahead of what was read), or during the wait (it catches up). Neither is a gap.
  await db.query(`INSERT INTO users (id, username, password_hash, created_at) VALUES ('v1', 'v1', 'x', 1), ('v2', 'v2', 'x', 1)`)
  await db.query(`INSERT INTO user_state (user_id, epoch) VALUES ('v1', 'e1'), ('v2', 'e1')`)
  const held: ChangeBatch[] = []
  for (const u of ['v1', 'v2']) committing.subscribe(u, (b) => void held.push(b))
  let afterHeads = async () => {}
  const racing = Object.assign(Object.create(store) as SyncStore, {
    heads: async (userIds: string[]) => {
      const heads = await store.heads(userIds)
      await afterHeads()
      return heads
    },
  })
  const raceFills: string[] = []
  const raceFeeds = new Feeds({ bus: listening, store: racing, codec, gapWaitMs: 200, onGapFill: (cause) => raceFills.push(cause) })
  t.teardown(() => raceFeeds.close())
  const got = new Map<string, number[]>([['v1', []], ['v2', []]])
  for (const u of ['v1', 'v2']) {
    raceFeeds.attach(u, { onBatch: (b) => got.get(u)!.push(b.to) })
    raceFeeds.seed(u, 0)
  }
  await engine.push('v1', 'd1', [conversation(1, 'x')]) // v1 at seq 1 in the store, its publish held back
  await engine.push('v2', 'd2', [conversation(1, 'y')]) // v2 likewise
  const [v1First, v2First] = held.splice(0)
  afterHeads = async () => {
    afterHeads = async () => {}
    // v1: its held publish and a newer commit reach the feed before the comparison, which then
    // sees the feed at seq 2 against the 1 it read.
    listening.publish(v1First!)
    await engine.push('v1', 'd1', [conversation(2, 'x2')])
    listening.publish(held.splice(0)[0]!)
    // v2: its held publish lands during the wait.
    setTimeout(() => listening.publish(v2First!), 20)
  }
  await raceFeeds.checkAll()
  t.same(raceFills, [], 'no fill is read or counted for a feed that was only waiting for a publish')
  t.same(got.get('v1'), [1, 2], 'v1 got both commits, live, once each')
  t.same(got.get('v2'), [1], 'v2 got its commit, live, once')
})
