import t from 'tap'
import fc from 'fast-check'
import { encodeMsgpack } from '../../protocol/codec.ts'
import { eachHub } from '../helpers/hub.ts'
import { head, rawHttp, type RawAnswer } from '../helpers/raw-http.ts'
import { badTextFrame } from '../protocol/arbitraries.ts'

/**
 * Random requests over raw TCP against a live node: random methods, targets, headers, declared
 * lengths and bodies. Every one gets an answer (a status line, never a silently closed or hung
 * connection) that is not a 500, and the node is ready afterwards.
 *
 * uWebSockets.js 20.30 closes, in its own HTTP parser, requests with a method it does not know
 * and those declaring a Content-Length of ten digits or more, and holds requests with a control
 * character in a header value until its timeout; no code of the hub runs for them, so those
 * inputs are only generated for the ws transport (PROTOCOL.md, REST, says so too).
 */
import { HUB_VARIANTS } from '../helpers/hub.ts'

const PATHS = [
  '/healthz', '/readyz', '/metrics', '/v1/sync/pull', '/v1/sync/pull?since=1&limit=5&wait=0', '/v1/sync/pull?since=-1&limit=abc',
  '/v1/sync/push', '/v1/sync/status', '/v1/sync/scope', '/v1/devices', '/v1/devices/phone', '/v1/devices/%00', '/v1/devices/%ED%A0%80',
  '/v1/auth/login', '/v1/auth/register', '/v1/auth/refresh', '/v1/auth/logout', '/v1/auth/me', '/v1/admin/users?after=%00',
  '/v1/export', '/v1/import?mode=merge', '/v1/import?mode=nope', '/v1/trash', '/v1/conversations/c1/messages?before=%FF',
  '/v1/ws', '/nowhere', '/admin', '/%2e%2e/%2e%2e/etc/passwd', '/v1/sync/pull/../../..', '//', '/?' + 'q'.repeat(2000),
]
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'CONNECT']
const ODD_METHODS = ['PROPFIND', 'MKCOL', 'PURGE', 'BREW', 'M-SEARCH', 'get']
const CONTENT_TYPES = ['application/json', 'application/msgpack', 'application/x-www-form-urlencoded', 'application/x-ndjson', 'text/plain', 'multipart/form-data; boundary=x', '']

interface Plan {
  method: string
  path: string
  headers: Record<string, string>
  body: Uint8Array
}

function plans(token: string, oddOnes: boolean, seed: number, count: number): Plan[] {
  // uWebSockets.js leaves a request with a control character in a header value unanswered until its timeout.
  // Header values go out as bytes (one per character, as latin1).
  const latin1 = (s: string) => Buffer.from(s, 'latin1').toString('latin1')
  const text = fc.string({ maxLength: 40, unit: 'binary' }).map((s) => latin1(s).replace(oddOnes ? /[\r\n]/g : /[\x00-\x08\x0a-\x1f]/g, ''))
  const header = fc.oneof(fc.constantFrom('x', 'Bearer ' + token, 'Bearer not-a-token', 'https://app.example.com', '<script>', 'a'.repeat(300)), text)
  const body = fc.oneof(
    fc.constant(new Uint8Array(0)),
    fc.uint8Array({ maxLength: 400 }),
    fc.jsonValue({ maxDepth: 3 }).map((v) => new TextEncoder().encode(JSON.stringify(v))),
    fc.anything({ maxDepth: 2 }).map((v) => encodeMsgpack(v)),
    badTextFrame(encodeMsgpack).map((b) => (typeof b.data === 'string' ? new TextEncoder().encode(b.data) : b.data)),
    fc.constantFrom('username=a%00b&password=x', 'grant_type=password&username=%ED%A0%80&password=%FF', '{"ops":[]}', '{"username":"a\\u0000","password":"p"}').map((s) => new TextEncoder().encode(s)),
  )
  const plan = fc.record({
    method: fc.constantFrom(...METHODS, ...(oddOnes ? ODD_METHODS : [])),
    path: fc.constantFrom(...PATHS),
    auth: fc.boolean(),
    contentType: fc.constantFrom(...CONTENT_TYPES),
    extra: fc.dictionary(fc.constantFrom('device-id', 'x-request-id', 'origin', 'accept', 'authorization', 'x-forwarded-for', 'expect', 'range'), header, { maxKeys: 4 }),
    body,
    declared: fc.oneof(fc.constant('exact'), fc.constant('huge'), fc.constant('none')),
  })
  return fc.sample(plan, { seed, numRuns: count }).map((p) => {
    const headers: Record<string, string> = { ...p.extra }
    if (p.auth) headers.authorization = `Bearer ${token}`
    if (p.contentType) headers['content-type'] = p.contentType
    // A length over what is sent would only make the server wait for the rest: exact, none (no body), or past every limit.
    if (p.declared === 'exact') headers['content-length'] = String(p.body.byteLength)
    if (p.declared === 'huge') headers['content-length'] = oddOnes ? '99999999999' : '900000000'
    return { method: p.method, path: p.path, headers, body: p.declared === 'exact' ? p.body : new Uint8Array(0) }
  })
}

t.test('random requests over raw TCP: every one answered, none with a 500, the node ready after', async (t) => {
  eachHub(
    t,
    async (t, h) => {
    const alice = await h.newUser()
    const oddOnes = h.variant.transport === 'ws'
    const all = plans(alice.token, oddOnes, 20260421, 300)
    const answers: Array<{ plan: Plan; answer: RawAnswer }> = []
    // Eight connections at a time: about 300 requests in a few seconds.
    for (let i = 0; i < all.length; i += 8) {
      const batch = all.slice(i, i + 8)
      answers.push(...(await Promise.all(batch.map(async (plan) => ({ plan, answer: await rawHttp(h.hub.port, Buffer.concat([Buffer.from(head(plan.method, plan.path, plan.headers), 'latin1'), plan.body]), { timeoutMs: 5000 }) })))))
    }
    const unanswered = answers.filter((a) => a.answer.status === undefined)
    const failed = answers.filter((a) => a.answer.status !== undefined && a.answer.status >= 500)
    const describe = (a: { plan: Plan; answer: RawAnswer }) => `${a.plan.method} ${a.plan.path} ${JSON.stringify(a.plan.headers).slice(0, 200)} → ${a.answer.status ?? (a.answer.timedOut ? 'timeout' : 'closed')}`
    t.strictSame(unanswered.map(describe).slice(0, 5), [], `every request got a status line (${answers.length} sent)`)
    t.strictSame(failed.map(describe).slice(0, 5), [], 'no 5xx')
    const statuses = new Set(answers.map((a) => a.answer.status))
    t.ok([200, 204, 400, 401, 404, 405, 413].every((s) => statuses.has(s)), `a spread of answers: ${[...statuses].sort().join(', ')}`)
    const ready = await fetch(`${h.url}/readyz`)
    t.equal(ready.status, 200, '/readyz is healthy after')
    t.match(await alice.rest.status(), { cursor: 0 }, 'no random request stored anything')
    },
    // The import limit under the declared lengths, so those are all refused at once; the store does not matter here.
    { env: { SYNCHUB_MAX_IMPORT_BYTES: String(64 * 1024 * 1024) }, variants: HUB_VARIANTS.filter((v) => v.store === 'postgres') },
  )
})
