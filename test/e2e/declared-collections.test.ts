import t from 'tap'
import { eachHub } from '../helpers/hub.ts'

const COLLECTIONS = JSON.stringify([
  { name: 'mcp_servers', scope: 'tools.mcp', kind: 'mutable' },
  { name: 'run_logs', scope: 'tools.runs', kind: 'append_only', status_fields: ['state'] },
])

t.test('operator-declared collections follow the built-in rules', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const alice = await h.newUser()
      const scope = await alice.rest.call('GET', '/v1/sync/scope')
      t.ok(scope.scope.includes('tools.mcp') && scope.scope.includes('tools.runs'), 'their scope keys are part of the default scope')
      const first = await alice.rest.push([
        { op: 'put', mid: 1, collection: 'mcp_servers', id: 's1', data: { url: 'http://localhost:3000', enabled: true } },
        { op: 'put', mid: 2, collection: 'run_logs', id: 'r1', data: { text: 'started', state: 'running' } },
      ])
      t.match(first.results, [{ ok: true, seq: 1 }, { ok: true, seq: 2 }])
      const stale = await alice.rest.push([{ op: 'put', mid: 3, collection: 'mcp_servers', id: 's1', data: { url: 'other' } }])
      t.type((stale.results[0] as any).copy, 'string', 'a put without base on an existing id becomes a conflict copy')
      const status = await alice.rest.push([{ op: 'put', mid: 4, collection: 'run_logs', id: 'r1', data: { text: 'started', state: 'done' } }])
      t.match(status.results[0], { ok: true }, 'an append-only record may change its status fields')
      const edit = await alice.rest.push([{ op: 'put', mid: 5, collection: 'run_logs', id: 'r1', data: { text: 'rewritten', state: 'done' } }])
      t.match(edit.results[0], { ok: false, code: 'immutable' }, 'and nothing else')
      await alice.rest.call('PUT', '/v1/sync/scope', { scope: ['chat.history'] })
      const out = await alice.rest.push([{ op: 'put', mid: 6, collection: 'mcp_servers', id: 's2', data: {} }])
      t.match(out.results[0], { ok: false, code: 'out_of_scope' }, 'and the user’s scope')
    },
    { env: { SYNCHUB_COLLECTIONS: COLLECTIONS } },
  )
})
