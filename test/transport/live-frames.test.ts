import t from 'tap'
import { decodeFrame } from '../../protocol/codec.ts'
import type { Change } from '../../protocol/records.ts'
import { CollectionFilters } from '../../src/sync/collection-filter.ts'
import { CollectionRegistry } from '../../src/sync/collections.ts'
import type { LiveBatch } from '../../src/sync/feed.ts'
import { LiveFrames } from '../../src/transport/live-frames.ts'

const filters = new CollectionFilters(new CollectionRegistry())
const change = (seq: number, collection: string): Change => ({ seq, rev: seq, collection, id: `r${seq}`, data: { v: seq }, created_at: 1, updated_at: 1 })
const batch = (): LiveBatch => ({ user: 'u', from: 0, to: 3, changes: [change(1, 'messages'), change(2, 'settings'), change(3, 'conversations')] })

t.test('a live batch is encoded once per (encoding, filter), whatever number of sockets take it', async (t) => {
  const frames = new LiveFrames(1 << 20)
  const b = batch()
  const chat = () => filters.of(['chat.history'])
  const first = frames.of(b, chat(), 'msgpack')
  t.equal(frames.of(b, chat(), 'msgpack'), first, 'another socket with an equal filter gets the same frames, not a new encode')
  t.equal(frames.of(b, filters.of(null, ['conversations', 'messages']), 'msgpack'), first, 'equal filters reached another way share them too')
  t.not(frames.of(b, chat(), 'json'), first, 'JSON sockets get their own')
  t.equal(frames.of(b, chat(), 'json'), frames.of(b, chat(), 'json'))
  const all = frames.of(b, filters.of(null), 'msgpack')
  t.not(all, first, 'another filter gets its own')
  t.not(frames.of(batch(), chat(), 'msgpack'), first, 'another batch (even an equal one) is encoded anew')
  const again = frames.of(b, chat(), 'msgpack')
  t.same(again, first, 'a batch handed out again later (held by a socket that caught up) gets the same frames')
  t.same(decodeFrame(first[0] as Uint8Array, true), { t: 'changes', from: 0, to: 3, items: [change(1, 'messages'), change(3, 'conversations')] }, 'the filter applied')
  t.same(JSON.parse(frames.of(b, chat(), 'json')[0] as string).items.map((i: Change) => i.seq), [1, 3])
  t.same((decodeFrame(all[0] as Uint8Array, true) as { items: Change[] }).items.map((i) => i.seq), [1, 2, 3])
})
