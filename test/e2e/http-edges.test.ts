import t, { type Test } from 'tap'
import { createLogger } from '../../src/ops/logger.ts'
import { HUB_VARIANTS, startTestHub, waitUntil, type TestHub } from '../helpers/hub.ts'
import { postgresAvailable } from '../helpers/services.ts'
import { abortedUpload, head, rawHttp } from '../helpers/raw-http.ts'

/**
 * What goes on the wire for the odd corners of HTTP, on both transports (the store does not
 * matter here; Postgres backs them): methods no route serves, a declared body over the import
 * limit, reason phrases, an upload the client gives up on.
 */
const VARIANTS = HUB_VARIANTS.filter((v) => v.store === 'postgres')

/** Each transport on a fresh hub whose log lines (debug and up) the test can read. */
function eachTransport(t: Test, env: Record<string, string>, fn: (t: Test, h: TestHub, logs: any[]) => Promise<void>) {
  for (const variant of VARIANTS) {
    t.test(variant.name, async (t) => {
      if (!(await postgresAvailable())) return void t.skip('Postgres is not running', () => {})
      const logs: any[] = []
      const h = await startTestHub(variant, env, { log: createLogger('debug', { write: (line: string) => void logs.push(JSON.parse(line)) }) })
      t.teardown(() => h.stop())
      await fn(t, h, logs)
    })
  }
}

t.test('methods no route serves get 405 with Allow; OPTIONS gets 204 with Allow', async (t) => {
  eachTransport(t, {}, async (t, h) => {
    const port = h.hub.port
    const trace = await rawHttp(port, head('TRACE', '/healthz'))
    t.match(trace, { status: 405, reason: 'Method Not Allowed', headers: { allow: 'GET, HEAD, OPTIONS' } }, 'TRACE (was 500 on uWebSockets.js)')
    t.match(JSON.parse(trace.body), { error: { code: 'method_not_allowed' } })
    t.match(await rawHttp(port, head('CONNECT', '/v1/sync/pull')), { status: 405, headers: { allow: 'GET, HEAD, OPTIONS' } }, 'CONNECT to a path')
    t.match(await rawHttp(port, head('TRACE', '/v1/sync/pull')), { status: 405 }, 'before any auth: TRACE is never served')
    t.match(await rawHttp(port, head('PATCH', '/healthz')), { status: 405, headers: { allow: 'GET, HEAD, OPTIONS' } }, 'a method the hub serves elsewhere')
    t.match(await rawHttp(port, head('OPTIONS', '/v1/sync/push')), { status: 204, reason: 'No Content', headers: { allow: 'POST, OPTIONS' } }, 'OPTIONS lists the path’s methods')
    t.match(await rawHttp(port, head('OPTIONS', '/v1/devices/abc')), { status: 204, headers: { allow: 'DELETE, OPTIONS' } }, 'with path parameters')
    t.match(await rawHttp(port, head('GET', '/nowhere')), { status: 404, reason: 'Not Found' }, 'an unknown path stays 404')
    if (h.variant.transport === 'ws') {
      // uWebSockets.js 20.30 closes these in its own parser, before any code of the hub runs (PROTOCOL.md, REST).
      t.match(await rawHttp(port, head('CONNECT', 'example.com:443')), { status: 405, closed: true }, 'CONNECT to an authority (a proxy request)')
      t.match(await rawHttp(port, head('PROPFIND', '/healthz')), { status: 405, headers: { allow: 'GET, HEAD, OPTIONS' } }, 'PROPFIND (WebDAV)')
      t.match(await rawHttp(port, head('BREW', '/healthz')), { status: 405, headers: { allow: /GET, HEAD, POST/ }, closed: true }, 'a method no parser knows')
    }
  })
})

t.test('reason phrases match the status', async (t) => {
  eachTransport(t, {}, async (t, h) => {
    const port = h.hub.port
    t.match(await rawHttp(port, head('GET', '/v1/auth/me')), { status: 401, reason: 'Unauthorized' }, '401 Unauthorized, not 401 OK')
    t.match(await rawHttp(port, head('GET', '/healthz')), { status: 200, reason: 'OK' })
    t.match(await rawHttp(port, head('POST', '/v1/auth/login', { 'content-type': 'application/json', 'content-length': 2 }) + '{}'), { status: 400, reason: 'Bad Request' })
  })
})

t.test('a declared body over the import limit is answered 413 before it is sent', async (t) => {
  eachTransport(t, { SYNCHUB_MAX_IMPORT_BYTES: String(1024 * 1024) }, async (t, h) => {
    const alice = await h.newUser()
    const auth = { authorization: `Bearer ${alice.token}`, 'content-type': 'application/x-ndjson' }
    const answer = await rawHttp(h.hub.port, head('POST', '/v1/import', { ...auth, 'content-length': 5 * 1024 * 1024 }))
    t.match(answer, { status: 413, reason: 'Payload Too Large', timedOut: false }, 'answered at once, no byte of the body sent')
    t.match(JSON.parse(answer.body), { error: { code: 'too_large' } })
    t.match(await rawHttp(h.hub.port, head('POST', '/v1/sync/push', { ...auth, 'device-id': 'd', 'content-length': 100 * 1024 * 1024 })), { status: 413, timedOut: false }, 'and a push body')
    t.match(await alice.rest.status(), { cursor: 0 }, 'nothing stored')
  })
})

t.test('an upload the client gives up on is not a server error', async (t) => {
  eachTransport(t, {}, async (t, h, logs) => {
    const alice = await h.newUser()
    const body = JSON.stringify({ ops: [{ op: 'put', mid: 1, collection: 'settings', id: 's', data: { value: 'x'.repeat(50_000) } }] })
    const requestHead = head('POST', '/v1/sync/push', { authorization: `Bearer ${alice.token}`, 'device-id': 'd', 'content-type': 'application/json', 'content-length': body.length })
    await abortedUpload(h.hub.port, requestHead, body.slice(0, 1000))
    await waitUntil(() => logs.some((l) => l.msg === 'request aborted by the client'), 5000)
    t.match(logs.find((l) => l.msg === 'request aborted by the client'), { level: 20, status: 499, path: '/v1/sync/push' }, 'one debug line, status 499')
    t.notOk(logs.some((l) => l.level >= 50), 'no error line (was "request failed" and a 500)')
    const metrics = await (await fetch(`${h.url}/metrics`)).text()
    t.match(metrics, /synchub_http_requests_total\{method="POST",status="499"\} 1/, 'counted as 499')
    t.match(await alice.rest.status(), { cursor: 0 }, 'nothing stored')
  })
})

t.test('header values and Host headers a client may send do not fail the request or the node', async (t) => {
  eachTransport(t, {}, async (t, h) => {
    const port = h.hub.port
    const request = (headers: string) => Buffer.from(`GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n${headers}\r\n`, 'latin1')
    // uWebSockets.js decodes header values as UTF-8; one that is not (or a character above U+00FF)
    // made fetch's Headers throw outside any handler, which ended the process.
    t.match(await rawHttp(port, request('x-request-id: F\u00cdq\r\n')), { status: 200 }, 'bytes that are not UTF-8')
    t.match(await rawHttp(port, Buffer.concat([request('').subarray(0, -2), Buffer.from('x-note: \u20ac\r\n\r\n', 'utf8')])), { status: 200 }, 'a character above U+00FF')
    const badHost = await rawHttp(port, head('GET', '/healthz', { host: 'a b' }))
    t.ok(badHost.status === 200 || badHost.status === 400, `a Host that makes no URL: ${badHost.status} (was 500 on uWebSockets.js)`)
    t.match(await rawHttp(port, head('GET', '/healthz')), { status: 200 }, 'the node is still up')
  })
})

