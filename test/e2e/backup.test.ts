import { randomBytes } from 'node:crypto'
import { request, type IncomingMessage } from 'node:http'
import t, { type Test } from 'tap'
import { decodeMsgpack } from '../../protocol/codec.ts'
import { copyIdOf } from '../../src/sync/backup-import.ts'
import { collect, eachHub, waitUntil, type TestHub, type TestUser } from '../helpers/hub.ts'

const canary = () => `sk-canary-${randomBytes(12).toString('hex')}`

/** The user's backup as lines (parsed), through GET /v1/export. */
async function exportOf(h: TestHub, u: TestUser, scopes?: string[]): Promise<any[]> {
  const res = await fetch(`${h.url}/v1/export${scopes ? `?scopes=${scopes.join(',')}` : ''}`, { headers: { authorization: `Bearer ${u.token}` } })
  if (res.status !== 200) throw new Error(`export: ${res.status} ${await res.text()}`)
  const text = await res.text()
  if (!text.endsWith('\n')) throw new Error('export: the last line has no newline')
  return text.trimEnd().split('\n').map((l) => JSON.parse(l))
}

async function importInto(h: TestHub, u: TestUser, body: string | ReadableStream<Uint8Array>, query = 'mode=merge', headers: Record<string, string> = {}) {
  const res = await fetch(`${h.url}/v1/import?${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/x-ndjson', ...headers },
    body,
    duplex: 'half',
  } as RequestInit)
  return { status: res.status, body: (await res.json()) as any }
}

const ndjson = (lines: unknown[]) => lines.map((l) => JSON.stringify(l) + '\n').join('')

/**
 * The records of an export, comparable across users and hubs: keyed by collection/id, without
 * the hub-assigned rev, and with `order` as a rank (only the order of creation is kept).
 */
function comparable(lines: any[]): Record<string, any> {
  const records = lines.slice(1, -1)
  const ranks = [...records].sort((a, b) => a.order - b.order).map((r) => `${r.collection}/${r.id}`)
  return Object.fromEntries(records.map(({ rev: _rev, order: _order, ...r }) => [`${r.collection}/${r.id}`, { ...r, rank: ranks.indexOf(`${r.collection}/${r.id}`) }]))
}

/** A user with a bit of everything: history, a regenerated reply, a status update, the bin, a key, a conflict copy. */
async function seed(t: Test, u: TestUser, key: string) {
  const phone = await u.connect('phone')
  const ops: any[] = [
    { op: 'put', collection: 'conversations', id: 'c1', data: { title: 'Geography' } },
    { op: 'put', collection: 'messages', id: 'm1', data: { conversation_id: 'c1', role: 'user', content: 'Capital of Australia?', status: 'sending' } },
    { op: 'put', collection: 'messages', id: 'm2', data: { conversation_id: 'c1', role: 'assistant', content: 'Sydney' } },
    { op: 'regen', conversation: 'c1', old: 'm2', message: { id: 'm3', data: { conversation_id: 'c1', role: 'assistant', content: 'Canberra' } } },
    { op: 'put', collection: 'messages', id: 'm1', data: { conversation_id: 'c1', role: 'user', content: 'Capital of Australia?', status: 'delivered' } },
    { op: 'put', collection: 'conversations', id: 'c2', data: { title: 'to the bin' } },
    { op: 'put', collection: 'messages', id: 'm4', data: { conversation_id: 'c2', role: 'user', content: 'bye' } },
    { op: 'del', collection: 'conversations', id: 'c2' },
    { op: 'put', collection: 'provider_keys', id: 'k1', data: { provider: 'openai', key } },
    { op: 'put', collection: 'providers', id: 'p1', data: { name: 'OpenAI', models: ['gpt'], enabled: true } },
    { op: 'put', collection: 'settings', id: 'theme', data: { value: 'dark' } },
    { op: 'put', collection: 'settings', id: 'theme', data: { value: 'light' } }, // no base: a conflict copy
    { op: 'put', collection: 'characters', id: 'ch1', data: { name: 'Ada', nested: { a: [1, 2.5, { b: null }], 'ünï': 'ü' } } },
  ]
  const ack = await phone.push(ops.map((op, i) => ({ ...op, mid: i + 1 })))
  t.ok(ack.results.every((r) => r.ok), 'seeded')
  await phone.close()
  return ack
}

t.test('export, import into an empty account, export again: the same records', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    const key = canary()
    await seed(t, alice, key)
    const file = await exportOf(h, alice)
    const header = file[0]
    t.match(header, { synchub_backup: 1, exported_at: Number, user: { id: alice.id, username: alice.username }, records: 11 }, 'the header')
    t.same(header.scopes, ['chat.history', 'characters.cards', 'characters.per_settings', 'providers.config', 'providers.keys', 'user.text_inputs', 'user.settings'])
    t.same(file.at(-1), { end: true, records: 11 }, 'the trailer counts the records')
    const records = comparable(file)
    t.match(records['messages/m2'], { replaced_by: 'm3', deleted_at: Number, purge_at: Number }, 'the regenerated reply, in the bin')
    t.match(records['messages/m4'], { deleted_at: Number, trashed_with: 'c2' }, 'a message binned with its conversation')
    t.match(records['provider_keys/k1'], { data: { provider: 'openai', key } }, 'the key in plaintext, for its owner')
    const copy = Object.values(records).find((r: any) => r.conflict_of === 'theme')
    t.match(copy, { collection: 'settings', data: { value: 'light' } }, 'the conflict copy')

    const bob = await h.newUser()
    const tablet = await bob.connect('tablet')
    const seen = collect(tablet)
    await tablet.subscribe(0)
    const result = await importInto(h, bob, ndjson(file))
    t.equal(result.status, 200)
    t.same(result.body, { imported: 11, copies: 0, skipped: 0, trashed: 0, cursor: 11, epoch: tablet.auth.epoch }, 'everything imported, under the same epoch')
    await seen.waitFor(() => tablet.cursor === 11)
    t.equal(new Set(seen.frames.flatMap((f) => f.items.map((i: any) => i.id))).size, 11, 'a live device received every imported record through its stream')
    t.same(seen.gaps, [])

    const again = await exportOf(h, bob)
    t.same(comparable(again), records, 'the second export holds the same records')
    t.match(again[0], { user: { id: bob.id }, records: 11 })

    const stored = await h.hub.store.db.query<{ data: Uint8Array }>("SELECT data FROM records WHERE user_id = $1 AND collection = 'provider_keys'", [bob.id])
    t.match(decodeMsgpack(stored.rows[0]!.data), { key: /^enc:v1:/ }, 'the imported key is sealed at rest')
    t.notOk(Buffer.from(stored.rows[0]!.data).includes(key))
    const page = await bob.rest.call('GET', '/v1/conversations/c1/messages')
    t.same(page.items.map((i: any) => i.id), ['m1', 'm3'], 'the history keeps its order')
    const restored = await bob.rest.push([{ op: 'restore', mid: 1, collection: 'conversations', id: 'c2' }])
    t.equal(restored.results[0].ok, true)
    const after = comparable(await exportOf(h, bob))
    t.notOk(after['messages/m4'].deleted_at, 'restoring the conversation brings back the message binned with it')
    const later = await bob.rest.push([{ op: 'put', mid: 2, collection: 'messages', id: 'm5', data: { conversation_id: 'c1', role: 'user', content: 'thanks' } }])
    t.equal(later.results[0].ok, true)
    t.same((await bob.rest.call('GET', '/v1/conversations/c1/messages')).items.map((i: any) => i.id), ['m1', 'm3', 'm5'], 'new messages come after the imported ones')

    const partial = await exportOf(h, alice, ['chat.history'])
    t.same(partial[0].collections, ['conversations', 'messages'])
    t.same([...new Set(partial.slice(1, -1).map((r) => r.collection))].sort(), ['conversations', 'messages'], 'scopes= narrows the export')
    const bad = await fetch(`${h.url}/v1/export?scopes=nope`, { headers: { authorization: `Bearer ${alice.token}` } })
    t.equal(bad.status, 400)
    t.match(await bad.json(), { error: { code: 'invalid' } }, 'an unknown scope key is refused')
    t.equal((await fetch(`${h.url}/v1/export`)).status, 401, 'export needs a token')
  })
})

t.test('merge: missing records are added, differing ones become conflict copies, replays add nothing', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    await seed(t, alice, canary())
    const file = await exportOf(h, alice)
    const carol = await h.newUser()
    await carol.rest.push([
      { op: 'put', mid: 1, collection: 'settings', id: 'theme', data: { value: 'blue' } },
      { op: 'put', mid: 2, collection: 'characters', id: 'ch1', data: { name: 'Ada', nested: { 'ünï': 'ü', a: [1, 2.5, { b: null }] } } },
      { op: 'put', mid: 3, collection: 'conversations', id: 'mine', data: { title: 'only here' } },
    ])
    const first = await importInto(h, carol, ndjson(file), 'mode=merge', { 'device-id': 'importer' })
    t.match(first, { status: 200, body: { imported: 9, copies: 1, skipped: 1, trashed: 0, cursor: 3 + 10 } }, 'one identical record skipped, one clash copied')
    const records = comparable(await exportOf(h, carol))
    t.same(records['settings/theme'].data, { value: 'blue' }, 'the stored version stays')
    const copyId = copyIdOf('settings', 'theme', { value: 'dark' })
    t.match(records[`settings/${copyId}`], { conflict_of: 'theme', data: { value: 'dark' }, device_id: 'importer' }, 'the file’s version is a conflict copy')
    t.ok(records['conversations/mine'], 'records the file does not hold are untouched')
    t.equal(Object.keys(records).length, 3 + 9 + 1)

    const replay = await importInto(h, carol, ndjson(file))
    t.same(replay.body, { imported: 0, copies: 0, skipped: 11, trashed: 0, cursor: 13, epoch: first.body.epoch }, 'the same import again changes nothing')
    t.equal(Object.keys(comparable(await exportOf(h, carol))).length, 13, 'no second copy')
    const pulled = await carol.rest.pull({ since: 3 })
    t.equal(pulled.items.length, 10, 'merged records are in the user’s stream after the cursor the devices had')
  })
})

t.test('overwrite replaces the chosen scopes, bins the rest of them and resets every device', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    await seed(t, alice, canary())
    const file = await exportOf(h, alice)
    const dave = await h.newUser()
    await dave.rest.push([
      { op: 'put', mid: 1, collection: 'conversations', id: 'old', data: { title: 'old history' } },
      { op: 'put', mid: 2, collection: 'messages', id: 'old-m', data: { conversation_id: 'old', role: 'user', content: 'old' } },
      { op: 'put', mid: 3, collection: 'settings', id: 'theme', data: { value: 'x' } },
      { op: 'put', mid: 4, collection: 'providers', id: 'mine', data: { name: 'kept' } },
    ])
    const phone = await dave.connect('phone')
    const oldEpoch = phone.auth.epoch
    await phone.subscribe(0)
    const idle = await dave.connect('pc')
    const resets: any[] = []
    phone.on('reset', (f) => resets.push(f))
    idle.on('reset', (f) => resets.push(f))

    const result = await importInto(h, dave, ndjson(file), 'mode=overwrite&scopes=chat.history,user.settings')
    t.equal(result.status, 200)
    // chat.history and user.settings hold 8 of the file's 11 records.
    t.match(result.body, { imported: 8, copies: 0, skipped: 3, trashed: 2, cursor: 4 + 8 + 2 })
    t.not(result.body.epoch, oldEpoch, 'a new epoch')
    await waitUntil(() => resets.length === 2)
    t.same(resets, [{ t: 'reset', reason: 'epoch_changed', epoch: result.body.epoch }, { t: 'reset', reason: 'epoch_changed', epoch: result.body.epoch }], 'every socket of the user is told')

    t.same(await dave.rest.pull({ since: 4, epoch: oldEpoch }), { reset: 'epoch_changed', epoch: result.body.epoch }, 'a REST pull with the old epoch is reset')
    t.same(await dave.rest.pull({ since: 4 }), { reset: 'cursor_purged', epoch: result.body.epoch }, 'and one with an old cursor and no epoch too')
    const synced = await phone.subscribe(0, { epoch: result.body.epoch })
    t.equal(synced, result.body.cursor, 'the device starts again from 0 under the new epoch')

    const records = comparable(await exportOf(h, dave))
    t.match(records['conversations/old'], { deleted_at: Number, purge_at: Number }, 'records the file did not hold went to the bin')
    t.match(records['messages/old-m'], { deleted_at: Number, trashed_with: 'old' }, 'with their conversation')
    t.same(records['settings/theme'].data, { value: 'dark' }, 'the file’s version replaced the stored one')
    t.notOk(records['settings/theme'].deleted_at)
    t.notOk(records['providers/mine'].deleted_at, 'scopes not chosen are untouched')
    t.notOk(records['provider_keys/k1'], 'and not imported')
    t.same(records['messages/m1'].data.status, 'delivered')

    const bad = await importInto(h, dave, ndjson(file), 'mode=sideways')
    t.match(bad, { status: 400, body: { error: { code: 'invalid' } } }, 'an unknown mode is refused')
  })
})

t.test('a corrupt, wrong-version, truncated or invalid file is refused whole with its own code', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    await seed(t, alice, canary())
    const file = await exportOf(h, alice)
    const [header, ...rest] = file
    const records = rest.slice(0, -1)
    const erin = await h.newUser()
    await erin.rest.push([{ op: 'put', mid: 1, collection: 'settings', id: 'theme', data: { value: 'mine' } }])
    const before = comparable(await exportOf(h, erin))
    const cases: Array<[string, string, number, string, RegExp]> = [
      ['a line that is not JSON', ndjson([header, ...records.slice(0, 5)]) + '{"collection":"settings",\n' + ndjson([{ end: true, records: 6 }]), 400, 'backup_invalid', /line 7 is not valid JSON/],
      ['another format version', ndjson([{ ...header, synchub_backup: 2 }, ...records, { end: true, records: records.length }]), 422, 'backup_version', /version 2/],
      ['no end line', ndjson([header, ...records]), 400, 'backup_truncated', /without its end line/],
      ['a wrong count', ndjson([header, ...records, { end: true, records: records.length + 1 }]), 400, 'backup_truncated', /counts 12 records but the file holds 11/],
      [
        'an unknown collection',
        ndjson([{ ...header, collections: [...header.collections, 'spells'] }, ...records, { ...records[0], collection: 'spells' }, { end: true, records: 12 }]),
        422,
        'backup_unknown_collection',
        /line 13: collection spells/,
      ],
      [
        'a record whose data breaks its collection’s rules',
        ndjson([header, ...records, { ...records.find((r: any) => r.collection === 'messages'), id: 'bad', data: { conversation_id: 'c1', content: 'no role' } }, { end: true, records: 12 }]),
        422,
        'backup_record_invalid',
        /line 13: messages data: role/,
      ],
      ['a record line of the wrong shape', ndjson([header, { ...records[0], id: 42 }, { end: true, records: 1 }]), 400, 'backup_invalid', /line 2: record: id/],
      ['something else entirely', '{"hello":"world"}\n', 400, 'backup_invalid', /not a synchub backup/],
      ['an empty body', '', 400, 'backup_invalid', /empty/],
      ['lines after the end', ndjson([header, { end: true, records: 0 }, records[0]]), 400, 'backup_invalid', /nothing may follow/],
    ]
    for (const [what, body, status, code, message] of cases) {
      const res = await importInto(h, erin, body, 'mode=overwrite')
      t.match(res, { status, body: { error: { code, message } } }, what)
    }
    const key = file.find((l: any) => l.collection === 'provider_keys').data.key
    const leaky = await importInto(h, erin, ndjson([header]) + `{"collection":"provider_keys","data":{"key":"${key}"\n`, 'mode=merge')
    t.notMatch(JSON.stringify(leaky.body), key, 'a refusal never quotes the line (it may hold a key)')
    t.same(comparable(await exportOf(h, erin)), before, 'nothing stored changed')
    t.match(await erin.rest.status(), { cursor: 1 }, 'not even the cursor')
  })
})

t.test('imports and exports stream: a large file, a stalled reader, an early refusal', async (t) => {
  eachHub(t, async (t, h) => {
    const frank = await h.newUser()
    const total = 20_000
    const filler = 'x'.repeat(1000)
    let made = 0
    const encoder = new TextEncoder()
    // Made as it is sent: the test holds no more of the file than the server should.
    const body = new ReadableStream<Uint8Array>({
      pull(c) {
        if (made === 0) c.enqueue(encoder.encode(JSON.stringify({ synchub_backup: 1, exported_at: 1, scopes: ['user.text_inputs'], collections: ['text_inputs'] }) + '\n'))
        let chunk = ''
        for (let i = 0; i < 500 && made < total; i++, made++) {
          chunk += JSON.stringify({ collection: 'text_inputs', id: `t${made}`, rev: made + 1, order: made + 1, created_at: 1, updated_at: 2, data: { value: `${made} ${filler}` } }) + '\n'
        }
        if (chunk) c.enqueue(encoder.encode(chunk))
        else {
          c.enqueue(encoder.encode(JSON.stringify({ end: true, records: total }) + '\n'))
          c.close()
        }
      },
    })
    const imported = await importInto(h, frank, body)
    t.match(imported, { status: 200, body: { imported: total, cursor: total } }, `${total} records (${total >> 10}+ MiB) imported`)

    // A reader that stops: the hub reads pages only as the client takes them.
    const counted = async () => ((await h.hub.metrics.backupRecords.get()).values.find((v) => v.labels.direction === 'export')?.value ?? 0)
    const start = await counted()
    const res = await new Promise<IncomingMessage>((resolve, reject) =>
      request(`${h.url}/v1/export`, { headers: { authorization: `Bearer ${frank.token}` } }, resolve).on('error', reject).end(),
    )
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /application\/x-ndjson/)
    res.pause()
    await new Promise((r) => setTimeout(r, 700))
    const stalled = (await counted()) - start
    t.ok(stalled < total / 2, `a stalled reader held the export back (${stalled} of ${total} records read)`)
    let text = ''
    res.setEncoding('utf8')
    res.on('data', (d: string) => (text += d))
    res.resume()
    await new Promise((r) => res.on('end', r))
    const lines = text.trimEnd().split('\n')
    t.equal(lines.length, total + 2, 'then the whole file arrives')
    t.same(JSON.parse(lines.at(-1)!), { end: true, records: total })

    // A bad line is refused as it arrives, while the upload is still open.
    const req = request(`${h.url}/v1/import?mode=merge`, { method: 'POST', headers: { authorization: `Bearer ${frank.token}`, 'content-type': 'application/x-ndjson' } })
    req.on('error', () => {})
    const answered = new Promise<IncomingMessage>((resolve) => req.on('response', resolve))
    req.write(JSON.stringify({ synchub_backup: 1, exported_at: 1, scopes: [], collections: [] }) + '\nnot json\n')
    const early = await answered
    let error = ''
    early.on('data', (d) => (error += d))
    await new Promise((r) => early.on('end', r))
    t.equal(early.statusCode, 400)
    t.match(JSON.parse(error), { error: { code: 'backup_invalid', message: /line 2/ } }, 'refused before the body ended')
    req.destroy()
  })
})

t.test('an import that asks for NDJSON streams its progress, then its result or its error', async (t) => {
  eachHub(t, async (t, h) => {
    const alice = await h.newUser()
    await seed(t, alice, canary())
    const file = await exportOf(h, alice)
    const progressOf = async (u: TestUser, body: string) => {
      const res = await fetch(`${h.url}/v1/import?mode=merge`, {
        method: 'POST',
        headers: { authorization: `Bearer ${u.token}`, 'content-type': 'application/x-ndjson', accept: 'application/x-ndjson' },
        body,
      })
      t.equal(res.status, 200, 'the stream starts at once')
      t.match(res.headers.get('content-type'), /application\/x-ndjson/)
      return (await res.text()).trimEnd().split('\n').map((l) => JSON.parse(l))
    }

    const bob = await h.newUser()
    const lines = await progressOf(bob, ndjson(file))
    const last = lines.pop()
    t.match(last, { result: { imported: 11, copies: 0, skipped: 0, cursor: Number } }, 'the last line is the result, as the JSON answer has it')
    t.ok(lines.length >= 1, 'progress came before it')
    t.ok(lines.every((l) => ['read', 'apply'].includes(l.progress?.phase) && Number.isInteger(l.progress.records)), 'every other line is progress')
    t.same(comparable(await exportOf(h, bob)), comparable(file), 'and the records arrived')

    const erin = await h.newUser()
    const broken = ndjson(file).replace(/\n[^\n]*\n/, '\n{"collection":\n')
    const refused = await progressOf(erin, broken)
    t.match(refused.at(-1), { error: { code: 'backup_invalid', message: /line 2 is not valid JSON/ } }, 'a bad file ends the stream with its error')
    t.same(comparable(await exportOf(h, erin)), {}, 'and nothing was imported')
  })
})
