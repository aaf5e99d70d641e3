import t from 'tap'
import WebSocket from 'ws'
import { eachHub, HUB_VARIANTS } from '../helpers/hub.ts'
import { head, rawHttp } from '../helpers/raw-http.ts'

/** Headers are the transport's and the router's business, not the store's: Postgres backs both transports. */
const variants = HUB_VARIANTS.filter((v) => v.store === 'postgres')
const APP = 'https://app.example.com'

const SECURITY = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; frame-ancestors 'none'",
}

t.test('answers with user data are never cached and carry the API security headers', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const alice = await h.newUser()
      await alice.rest.push([{ op: 'put', mid: 1, collection: 'provider_keys', id: 'k', data: { provider: 'openai', key: 'sk-secret' } }])
      const auth = { authorization: `Bearer ${alice.token}` }
      for (const path of ['/v1/sync/pull', '/v1/sync/status', '/v1/devices', '/v1/auth/me', '/v1/export', '/v1/trash', '/healthz']) {
        const res = await fetch(h.url + path, { headers: auth })
        await res.arrayBuffer()
        t.equal(res.headers.get('cache-control'), 'no-store', `${path}: Cache-Control: no-store`)
        for (const [name, value] of Object.entries(SECURITY)) t.equal(res.headers.get(name), value, `${path}: ${name}`)
      }
      const refused = await fetch(h.url + '/v1/sync/pull')
      t.equal(refused.headers.get('x-content-type-options'), 'nosniff', 'errors carry them too')
      const page = await fetch(h.url + '/admin')
      t.equal(page.headers.get('x-content-type-options'), 'nosniff', '/admin (a future console): nosniff')
      t.equal(page.headers.get('x-frame-options'), null, '/admin sets its own framing policy')
      t.equal(page.headers.get('content-security-policy'), null, 'and its own content policy')
    },
    { variants },
  )
})

t.test('X-Request-Id is echoed only when it is a plain token', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const idOf = async (sent?: string) => (await rawHttp(h.hub.port, head('GET', '/healthz', sent === undefined ? {} : { 'x-request-id': sent }))).headers['x-request-id']
      t.equal(await idOf('req-42:a.b_c'), 'req-42:a.b_c', 'a sane id is kept')
      const uuid = /^[0-9a-f-]{36}$/
      t.match(await idOf('<script>alert(1)</script>'), uuid, 'markup is replaced by a generated id')
      t.match(await idOf('x'.repeat(8192)), uuid, 'so is 8 KB')
      t.match(await idOf('a'.repeat(129)), uuid, 'and 129 characters')
      t.equal(await idOf('a'.repeat(128)), 'a'.repeat(128), '128 is fine')
      t.match(await idOf(), uuid, 'none sent: one is generated')
    },
    { variants },
  )
})

t.test('/metrics: behind a bearer token', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const without = await fetch(`${h.url}/metrics`)
      t.equal(without.status, 401, 'no token: 401 (was public)')
      t.match(without.headers.get('www-authenticate') ?? '', /^Bearer/)
      t.equal((await fetch(`${h.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-wrong-token' } })).status, 401, 'a wrong token: 401')
      const ok = await fetch(`${h.url}/metrics`, { headers: { authorization: 'Bearer metrics-token-0123456789' } })
      t.equal(ok.status, 200, 'the operator’s token: 200')
      t.match(await ok.text(), /synchub_sockets/)
    },
    { variants, env: { SYNCHUB_METRICS_TOKEN: 'metrics-token-0123456789' } },
  )
})

t.test('/metrics: on a port of its own', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      t.equal((await fetch(`${h.url}/metrics`)).status, 404, 'not on the public port')
      const port = h.hub.metricsPort
      t.ok(port && port !== h.hub.port, 'a port of its own')
      const res = await fetch(`http://127.0.0.1:${port}/metrics`)
      t.equal(res.status, 200)
      t.match(await res.text(), /synchub_http_requests_total/)
      t.equal((await fetch(`http://127.0.0.1:${port}/v1/sync/pull`)).status, 404, 'nothing else is served there')
    },
    { variants, env: { SYNCHUB_METRICS_PORT: '0' } },
  )
})

t.test('CORS: the allowlist gets preflights and CORS headers, other origins nothing', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const alice = await h.newUser()
      const preflight = (origin: string) =>
        rawHttp(h.hub.port, head('OPTIONS', '/v1/sync/push', { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, device-id' }))
      t.match(
        await preflight(APP),
        {
          status: 204,
          headers: {
            'access-control-allow-origin': APP,
            'access-control-allow-methods': 'POST, OPTIONS',
            'access-control-allow-headers': /authorization.*content-type.*device-id/,
            'access-control-max-age': '600',
            vary: /Origin/,
          },
        },
        'a listed origin’s preflight (was 401 from the auth middleware)',
      )
      const stranger = await preflight('https://evil.example')
      t.equal(stranger.status, 204)
      t.equal(stranger.headers['access-control-allow-origin'], undefined, 'an unlisted origin gets no CORS headers')
      const pull = await fetch(`${h.url}/v1/sync/pull`, { headers: { authorization: `Bearer ${alice.token}`, origin: APP } })
      t.equal(pull.headers.get('access-control-allow-origin'), APP, 'a listed origin’s request names it')
      t.match(pull.headers.get('access-control-expose-headers') ?? '', /x-request-id/)
      t.match(pull.headers.get('vary') ?? '', /Origin/)
      const other = await fetch(`${h.url}/v1/sync/pull`, { headers: { authorization: `Bearer ${alice.token}`, origin: 'https://evil.example' } })
      t.equal(other.headers.get('access-control-allow-origin'), null)
    },
    { variants, env: { SYNCHUB_CORS_ORIGINS: `${APP}, http://localhost:3000` } },
  )
})

t.test('sockets: an upgrade from an unlisted origin is refused with 403 before it becomes a socket', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const open = (origin?: string) =>
        new Promise<number | 'open'>((resolve) => {
          const ws = new WebSocket(h.wsUrl, origin === undefined ? {} : { origin })
          ws.on('open', () => {
            ws.close()
            resolve('open')
          })
          ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
          ws.on('error', () => {})
        })
      t.equal(await open('https://evil.example'), 403, 'an unlisted origin: 403')
      t.equal(await open(APP), 'open', 'a listed origin opens')
      t.equal(await open(), 'open', 'no Origin (a native app) opens')
      t.equal(await open(h.url), 'open', 'the hub’s own origin (a page it serves) opens')
    },
    { variants, env: { SYNCHUB_CORS_ORIGINS: APP } },
  )
})

t.test('sockets: with no allowlist only browsers are refused', async (t) => {
  eachHub(
    t,
    async (t, h) => {
      const status = await new Promise<number | 'open'>((resolve) => {
        const ws = new WebSocket(h.wsUrl, { origin: APP })
        ws.on('open', () => resolve('open'))
        ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
        ws.on('error', () => {})
      })
      t.equal(status, 403, 'a page of another origin cannot open a socket by default')
      const alice = await h.newUser()
      const client = await alice.connect('phone')
      t.match(await client.ping(), { t: 'pong' }, 'native clients (no Origin) are unaffected')
    },
    { variants },
  )
})
