import t from 'tap'
import { createMemoryBus } from '../../src/bus/memory.ts'
import { SyncStore } from '../../src/store/sync-store.ts'
import { EngineChangeSource } from '../../src/sync/engine-change-source.ts'
import { SyncEngine } from '../../src/sync/engine.ts'
import { Feeds } from '../../src/sync/feed.ts'
import { eachStore } from '../contracts/adapters.ts'
import { CollectionRegistry } from '../../src/sync/collections.ts'
import { RecordCodec } from '../../src/sync/record-codec.ts'
import { changeSourceContract } from './change-source-contract.ts'
import { MemoryChangeSource } from './memory-change-source.ts'

/** Data each built-in collection the contract writes accepts. */
const dataFor: Record<string, (id: string) => Record<string, unknown>> = {
  conversations: (id) => ({ title: id }),
  settings: (id) => ({ value: id }),
  characters: (id) => ({ name: id }),
}

t.test('the in-memory fake', async (t) => {
  let users = 0
  changeSourceContract(t, async () => {
    const source = new MemoryChangeSource()
    return {
      source,
      async newUser() {
        const user = `u${++users}`
        source.addUser(user)
        return user
      },
      async commit(user, puts) {
        source.deliver(source.commit(user, puts))
      },
      async setScope(user, scope) {
        source.setScope(user, scope)
      },
    }
  })
})

// The engine with the node's feeds, on each store.
eachStore(async (t, db) => {
    const store = new SyncStore(db)
    const bus = createMemoryBus()
    const codec = new RecordCodec(new CollectionRegistry())
    const engine = new SyncEngine({ store, bus, codec, maxOpsPerPush: 100, maxRecordBytes: 65536, trashRetentionMs: 1000, lanes: 1 })
    const feeds = new Feeds({ bus, store, codec })
    t.teardown(() => feeds.close())
    const mids = new Map<string, number>()
    /** Each record's latest rev: an update names it as its base (else it would be a conflict copy). */
    const revs = new Map<string, number>()
    let users = 0
    changeSourceContract(t, async () => ({
      source: new EngineChangeSource(engine, feeds),
      async newUser() {
        const user = `u${++users}`
        await db.query(`INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $1, 'x', 1)`, [user])
        await db.query(`INSERT INTO user_state (user_id, epoch) VALUES ($1, 'e1')`, [user])
        return user
      },
      async commit(user, puts) {
        const ops = puts.map((p) => {
          mids.set(user, (mids.get(user) ?? 0) + 1)
          const base = revs.get(`${user}/${p.collection}/${p.id}`)
          return { op: 'put' as const, mid: mids.get(user)!, collection: p.collection, id: p.id, data: dataFor[p.collection]!(p.id), ...(base ? { base } : {}) }
        })
        const outcome = await engine.push(user, 'd1', ops)
        outcome.results.forEach((r, i) => {
          if (!r.ok || r.copy || r.seq === undefined) throw new Error(`push not applied as asked: ${JSON.stringify(r)}`)
          revs.set(`${user}/${puts[i]!.collection}/${puts[i]!.id}`, r.seq)
        })
      },
      setScope: (user, scope) => store.setScope(user, scope),
    }))
})
