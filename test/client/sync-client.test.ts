/**
 * The SDK against a real hub, on each store and transport (test/helpers/hub.ts variants): two
 * devices, changes once and in order, push results and refusals, conflicts, the local view,
 * restarts on stored state, a history reset, a widened scope's backfill, in-band token refresh,
 * and a revoked device.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { HubError } from '../../protocol/errors.ts'
import type { Change } from '../../protocol/records.ts'
import { FileStorage, MemoryStorage, SyncClient, type ChangeBatch, type SyncClientOptions } from '../../src/client/node.ts'
import { eachHub, waitUntil, type TestHub, type TestUser } from '../helpers/hub.ts'

interface Dev {
  client: SyncClient
  seqs: number[]
  changes: Change[]
  backfill: Change[]
  resets: number
  problems: string[]
}

/** A device of `u` whose handler checks the order of what it gets. */
function device(h: TestHub, u: TestUser, opts: Partial<SyncClientOptions> = {}): Dev {
  const d: Dev = { client: undefined as never, seqs: [], changes: [], backfill: [], resets: 0, problems: [] }
  d.client = new SyncClient({
    url: h.url,
    auth: { username: u.username, password: u.password },
    ...opts,
    onChanges: (b: ChangeBatch) => {
      if (b.kind === 'backfill') return void d.backfill.push(...b.changes)
      for (const c of b.changes) {
        if (c.seq <= (d.seqs.at(-1) ?? 0)) d.problems.push(`seq ${c.seq} after ${d.seqs.at(-1)}`)
        d.seqs.push(c.seq)
        d.changes.push(c)
      }
    },
    onReset: () => {
      d.resets++
      d.seqs.length = 0
      d.changes.length = 0
    },
  })
  d.client.on('error', (e) => e.fatal && d.problems.push(`fatal ${e.code}: ${e.message}`))
  return d
}

const msg = (id: string, content = `text of ${id}`) => ({ op: 'put' as const, collection: 'messages', id, data: { conversation_id: 'c1', role: 'user' as const, content } })

eachHub(t, async (t, h) => {
  const u = await h.newUser()
  const phone = device(h, u, { device: { name: 'phone' }, view: true })
  const pc = device(h, u, { device: { name: 'pc' }, view: true })
  t.teardown(async () => {
    await phone.client.stop()
    await pc.client.stop()
  })
  await Promise.all([phone.client.start(), pc.client.start()])
  await Promise.all([phone.client.whenSynced(), pc.client.whenSynced()])
  t.equal(phone.client.status, 'live', 'live after synced')

  await t.test('pushes resolve with their Result once committed; the other device gets each change once, in order', async (t) => {
    const conv = await phone.client.push({ op: 'put', collection: 'conversations', id: 'c1', data: { title: 'Geography' } })
    t.match(conv, { ok: true, seq: 1, id: 'c1' }, 'the first answer')
    const results = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? pc : phone).client.push(msg(`m${i}`))))
    t.ok(results.every((r) => r.ok), 'every push acked')
    t.same(new Set(results.map((r) => (r.ok ? r.seq : -1))).size, 30, 'each at its own seq')
    await waitUntil(() => phone.seqs.length === 31 && pc.seqs.length === 31)
    t.same(pc.seqs, Array.from({ length: 31 }, (_, i) => i + 1), 'the pc saw 1..31 once, in order (its own pushes included)')
    t.same(phone.seqs, pc.seqs, 'and so did the phone')
    t.same([phone.problems, pc.problems], [[], []], 'no problems')
    await waitUntil(() => pc.client.cursor === 31)
    t.equal(pc.client.collection('messages').list().length, 30, 'the local view holds the messages')
    t.equal(pc.client.collection('messages').get('m3')?.data.content, 'text of m3', 'typed data, by id')
  })

  await t.test('a malformed op is refused at once without a mid; a refused one uses its mid; the next still goes', async (t) => {
    const before = phone.client.outbox
    await t.rejects(phone.client.push({ op: 'put', collection: 'messages', id: 'bad', data: { role: 'user' } } as never), { code: 'invalid', message: /conversation_id/ }, 'the protocol schema speaks before any mid')
    await t.rejects(phone.client.push({ op: 'put', collection: 'Not Snake', id: 'x', data: {} } as never), { code: 'invalid' }, 'a frame-level problem too')
    t.equal(phone.client.outbox, before, 'nothing was enqueued')
    await t.rejects(phone.client.push(msg('m0', 'an edit')), { code: 'immutable' }, 'the hub refused it: rejects with its code')
    t.match(await phone.client.push(msg('m100')), { ok: true }, 'the op after it is applied (no mid was skipped)')
  })

  await t.test('a stale put becomes a conflict copy: a conflict event, and the copy in the view', async (t) => {
    const conflicts: unknown[] = []
    const off = pc.client.on('conflict', (c) => conflicts.push(c))
    const r = await pc.client.push({ op: 'put', collection: 'conversations', id: 'c1', data: { title: 'from the pc' }, base: 0 })
    off()
    t.ok(r.ok && r.copy, 'the answer names the copy')
    t.equal(conflicts.length, 1, 'one conflict event')
    await waitUntil(() => pc.client.collection('conversations').conflicts('c1').length === 1)
    t.equal(pc.client.collection('conversations').get('c1')?.data.title, 'Geography', 'the stored version stays')
  })

  await t.test('the recycle bin shows in the view', async (t) => {
    await phone.client.push({ op: 'del', collection: 'messages', id: 'm5' })
    await waitUntil(() => pc.client.collection('messages').get('m5')?.deleted_at !== undefined)
    const view = pc.client.collection('messages')
    t.notOk(view.list().some((r) => r.id === 'm5'), 'left out of the live list')
    t.ok(view.list({ trash: 'only' }).some((r) => r.id === 'm5' && r.purge_at), 'in the trash, with purge_at')
  })

  await t.test('a restart on the stored state goes on after the last applied change; ops pushed while stopped wait in the outbox', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'synchub-sdk-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const first = device(h, u, { storage: new FileStorage(dir), device: { id: 'tablet' } })
    await first.client.start()
    await first.client.whenSynced()
    await waitUntil(() => first.client.cursor === pc.client.cursor)
    const stoppedAt = first.client.cursor
    await first.client.stop()
    await phone.client.push(msg('while-stopped'))
    const second = device(h, u, { storage: new FileStorage(dir), device: { id: 'tablet' } })
    t.teardown(() => second.client.stop())
    await second.client.start()
    await waitUntil(() => second.seqs.length === 1)
    t.equal(second.seqs[0], stoppedAt + 1, 'the first change after the restart is the next one')
    t.equal(second.changes[0]?.id, 'while-stopped', 'the one pushed meanwhile')
  })

  await t.test('a history reset: the handler is told, the stream restarts from 0 under the new epoch', async (t) => {
    const before = pc.client.epoch
    const exported = await (await fetch(`${h.url}/v1/export`, { headers: { authorization: `Bearer ${u.token}` } })).text()
    const res = await fetch(`${h.url}/v1/import?mode=overwrite`, { method: 'POST', headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/x-ndjson' }, body: exported })
    t.equal(res.status, 200, 'overwriting import')
    await waitUntil(() => pc.resets === 1 && phone.resets === 1, 10_000)
    t.not(pc.client.epoch, before, 'a new epoch')
    const head = (await (await fetch(`${h.url}/v1/sync/status`, { headers: { authorization: `Bearer ${u.token}` } })).json()).cursor
    await waitUntil(() => pc.client.cursor === head, 10_000)
    t.same(pc.problems, [], 'in order after the reset')
    t.ok(pc.seqs.length > 0 && pc.seqs.every((s, i) => i === 0 || s > pc.seqs[i - 1]!), 'the new history, in order')
    t.ok(pc.client.collection('messages').get('m3'), 'the view holds the new history')
    t.match(await phone.client.push(msg('after-reset')), { ok: true }, 'pushing goes on')
  })

  await t.test('a narrowed scope drops its records from the view; widening brings them back as backfill', async (t) => {
    const put = (scope: string[]) =>
      fetch(`${h.url}/v1/sync/scope`, { method: 'PUT', headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ scope }) })
    await phone.client.push({ op: 'put', collection: 'settings', id: 'theme', data: { value: 'dark' } })
    await waitUntil(() => pc.client.collection('settings').get('theme') !== undefined)
    t.equal((await put(['chat.history'])).status, 200, 'narrowed to chat')
    await waitUntil(() => pc.client.collection('settings').size === 0)
    t.pass('the settings left the view')
    t.equal((await put(['chat.history', 'user.settings'])).status, 200, 'widened again')
    await waitUntil(() => pc.backfill.some((c) => c.id === 'theme'), 10_000)
    t.equal(pc.client.collection('settings').get('theme')?.data.value, 'dark', 'the backfilled record is in the view again')
    t.match(await phone.client.push(msg('after-widening')), { ok: true }, 'the stream goes on')
    await waitUntil(() => pc.changes.some((c) => c.id === 'after-widening'))
    t.same(pc.problems, [], 'in order')
  })

  await t.test('a revoked device stops and says why', async (t) => {
    const lost = device(h, u, { device: { id: 'lost-phone' } })
    await lost.client.start()
    await lost.client.whenSynced()
    const errors: string[] = []
    lost.client.on('error', (e) => errors.push(`${e.code}${e.fatal ? ' fatal' : ''}`))
    const res = await fetch(`${h.url}/v1/devices/lost-phone`, { method: 'DELETE', headers: { authorization: `Bearer ${u.token}` } })
    t.equal(res.status, 204)
    await waitUntil(() => lost.client.status === 'stopped', 10_000)
    t.same(errors, ['forbidden fatal'], 'one fatal forbidden error, no reconnect')
  })
})

eachHub(
  t,
  async (t, h) => {
    const u = await h.newUser()
    const a = device(h, u)
    const b = device(h, u)
    const closes: number[] = []
    b.client.on('connection', (e) => e.event === 'close' && closes.push(e.code))
    t.teardown(async () => {
      await a.client.stop()
      await b.client.stop()
    })
    await Promise.all([a.client.start(), b.client.start()])
    await b.client.whenSynced()
    await a.client.push({ op: 'put', collection: 'conversations', id: 'c1', data: { title: 't' } })
    // The hub's tokens live 2 s: pushes for 5 s cross two refreshes of each device's token.
    for (let i = 0; i < 25; i++) {
      await a.client.push(msg(`t${i}`))
      await new Promise((r) => setTimeout(r, 200))
    }
    await waitUntil(() => b.seqs.length === 26)
    t.same(b.seqs, Array.from({ length: 26 }, (_, i) => i + 1), 'every change once, in order, across token refreshes')
    t.same(closes, [], 'the socket never closed: tokens were refreshed in band')
    t.same([a.problems, b.problems], [[], []])
  },
  { env: { SYNCHUB_ACCESS_TTL: '2' }, variants: undefined },
)

t.test('bad options are refused clearly', async (t) => {
  t.throws(() => new SyncClient({ url: 'localhost:8080', auth: { getToken: async () => 'x' } }), HubError, 'a URL without its scheme')
  const c = new SyncClient({ url: 'http://127.0.0.1:9', auth: { getToken: async () => 'x' }, storage: new MemoryStorage() })
  t.throws(() => c.collection('messages'), /view: true/, 'the view needs view: true')
})
