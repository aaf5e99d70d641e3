import { request, type IncomingMessage } from 'node:http'
import t from 'tap'
import WebSocket from 'ws'
import type { Connection, SocketSession, TransportOptions } from '../../src/transport/connection.ts'
import { startTransport } from '../../src/transport/start.ts'
import { waitUntil } from '../helpers/wait.ts'
import { TRANSPORTS } from './adapters.ts'

/**
 * The transport port's contract, run against every socket server (adapters.ts): sockets (frames,
 * closes, cork, limits, backpressure, stopAccepting) and HTTP bodies streamed both ways.
 */

/** What the echo handler saw, per socket. */
interface Seen {
  conn: Connection
  frames: Array<{ bytes: Buffer; isBinary: boolean }>
  closedCodes: number[]
  drains: number
}

/** A server whose sockets echo every frame back in the same kind (binary or text). */
async function start(kind: 'uws' | 'ws', maxPayloadBytes = 64 * 1024) {
  const seen: Seen[] = []
  const opts = {
    host: '127.0.0.1',
    port: 0,
    wsPath: '/v1/ws',
    maxPayloadBytes,
    idleTimeoutSec: 60,
    fetch: async (req: Request, info: { remoteAddress: string }) => {
      const url = new URL(req.url)
      const body = req.method === 'GET' ? '' : await req.text()
      return new Response(JSON.stringify({ method: req.method, path: url.pathname, q: url.searchParams.get('q'), body, h: req.headers.get('x-test'), remote: info.remoteAddress }), {
        status: url.pathname === '/teapot' ? 418 : 200,
        headers: { 'content-type': 'application/json', 'x-served-by': kind },
      })
    },
    sockets: {
      open(conn: Connection): SocketSession {
        const s: Seen = { conn, frames: [], closedCodes: [], drains: 0 }
        seen.push(s)
        return {
          message(data, isBinary) {
            const bytes = Buffer.from(data)
            s.frames.push({ bytes, isBinary })
            conn.send(isBinary ? new Uint8Array(bytes) : bytes.toString('utf8'))
          },
          drain: () => void s.drains++,
          closed: (code) => void s.closedCodes.push(code),
        }
      },
    },
  }
  const server = await startTransport(kind, opts, () => {})
  return { server, seen, base: `http://127.0.0.1:${server.port}`, ws: `ws://127.0.0.1:${server.port}/v1/ws` }
}

function connect(url: string): Promise<{ ws: WebSocket; got: Array<{ data: Buffer; isBinary: boolean }>; closed: Promise<number> }> {
  const ws = new WebSocket(url, { perMessageDeflate: false })
  const got: Array<{ data: Buffer; isBinary: boolean }> = []
  ws.on('message', (data: Buffer, isBinary) => got.push({ data, isBinary }))
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, got, closed }))
    ws.once('error', reject)
  })
}

for (const { name: kind } of TRANSPORTS) {
  t.test(`transport: ${kind}`, async (t) => {
    const s = await start(kind)
    t.teardown(() => s.server.close())
    t.equal(s.server.kind, kind)
    t.ok(s.server.port > 0, 'binds a real port when asked for 0')

    t.test('HTTP requests reach the router with method, path, query, headers, body', async (t) => {
      const get = await fetch(`${s.base}/v1/thing?q=42`, { headers: { 'x-test': 'yes' } })
      t.equal(get.status, 200)
      t.equal(get.headers.get('x-served-by'), kind, 'response headers pass through')
      t.match(await get.json(), { method: 'GET', path: '/v1/thing', q: '42', h: 'yes', remote: /127\.0\.0\.1/ })
      const post = await fetch(`${s.base}/v1/thing`, { method: 'POST', body: 'x'.repeat(100_000) })
      t.equal((await post.json()).body.length, 100_000, 'a large body arrives whole')
      const status = await fetch(`${s.base}/teapot`, { method: 'PATCH', body: '{}' })
      t.equal(status.status, 418, 'status codes pass through')
    })

    t.test('frames keep their kind and bytes in both directions', async (t) => {
      const c = await connect(s.ws)
      c.ws.send(Buffer.from([1, 2, 3, 0xff]))
      c.ws.send('héllo text')
      await waitUntil(() => c.got.length === 2)
      t.same([...c.got[0]!.data], [1, 2, 3, 0xff])
      t.equal(c.got[0]!.isBinary, true, 'binary stays binary')
      t.equal(c.got[1]!.data.toString(), 'héllo text')
      t.equal(c.got[1]!.isBinary, false, 'text stays text')
      const server = s.seen.at(-1)!
      t.same(server.frames.map((f) => f.isBinary), [true, false])
      t.match(server.conn.remoteAddress, /127\.0\.0\.1/)
      c.ws.close(1000)
      await c.closed
      await waitUntil(() => server.closedCodes.length === 1)
      t.same(server.closedCodes, [1000], 'closed is called once with the client’s code')
    })

    t.test('the server closes with a code and reason of its choosing', async (t) => {
      const c = await connect(s.ws)
      await waitUntil(() => s.seen.length > 0 && s.seen.at(-1)!.closedCodes.length === 0)
      const server = s.seen.at(-1)!
      server.conn.close(4403, 'revoked')
      t.equal(await c.closed, 4403)
      t.equal(server.conn.closed, true)
      server.conn.send(new Uint8Array([1])) // a send after close is a no-op, not a crash
      await waitUntil(() => server.closedCodes.length === 1)
    })

    t.test('cork: frames sent inside arrive whole and in order, other sockets included', async (t) => {
      const a = await connect(s.ws)
      const b = await connect(s.ws)
      await waitUntil(() => s.seen.length >= 2)
      const [sa, sb] = s.seen.slice(-2) as [Seen, Seen]
      let ran = false
      sa.conn.cork(() => {
        sa.conn.send(new Uint8Array([1]))
        sb.conn.send('to b, while a is corked')
        sa.conn.send('two')
        sa.conn.send(new Uint8Array(100_000).fill(3)) // larger than any cork buffer
        ran = true
      })
      t.ok(ran, 'cork runs its function at once')
      await waitUntil(() => a.got.length === 3 && b.got.length === 1)
      t.same([...a.got[0]!.data], [1])
      t.equal(a.got[1]!.data.toString(), 'two')
      t.equal(a.got[2]!.data.length, 100_000)
      t.ok(a.got[2]!.data.every((x) => x === 3), 'the large frame arrives intact')
      t.equal(b.got[0]!.data.toString(), 'to b, while a is corked')

      sa.conn.cork(() => {
        sa.conn.send('last words')
        sa.conn.close(4403, 'revoked')
        sa.conn.send('after close: dropped')
      })
      t.equal(await a.closed, 4403, 'a close inside cork goes out after the frames before it')
      t.equal(a.got.at(-1)!.data.toString(), 'last words')
      let after = false
      sa.conn.cork(() => (after = true))
      t.ok(after, 'cork on a closed socket still runs its function, without throwing')
      b.ws.close(1000)
      await b.closed
    })

    t.test('frames over the hard limit end the socket', async (t) => {
      const c = await connect(s.ws)
      c.ws.send(Buffer.alloc(64 * 1024 + 1))
      // ws answers 1009; uWebSockets.js drops the connection without a close frame (1006).
      t.ok([1009, 1006].includes(await c.closed), 'closed: 1009 or dropped')
    })

    t.test('bufferedAmount grows when the peer does not read, and drain follows', async (t) => {
      const c = await connect(s.ws)
      await waitUntil(() => s.seen.length > 0)
      const server = s.seen.at(-1)!
      ;(c.ws as any)._socket.pause()
      const chunk = new Uint8Array(256 * 1024)
      for (let i = 0; i < 64 && server.conn.bufferedAmount === 0; i++) server.conn.send(chunk)
      for (let i = 0; i < 16; i++) server.conn.send(chunk)
      t.ok(server.conn.bufferedAmount > 0, 'unsent bytes are reported')
      ;(c.ws as any)._socket.resume()
      await waitUntil(() => server.drains > 0, 10_000)
      t.pass('drain was signalled once the peer read')
      c.ws.terminate()
    })

    t.test('other paths are not upgraded; stopAccepting refuses new sockets, keeps open ones', async (t) => {
      await t.rejects(connect(`ws://127.0.0.1:${s.server.port}/elsewhere`), 'no socket outside the ws path')
      const open = await connect(s.ws)
      s.server.stopAccepting()
      await t.rejects(connect(s.ws), /503/, 'new sockets are refused with 503')
      open.ws.send('still here')
      await waitUntil(() => open.got.length === 1)
      t.equal(open.got[0]!.data.toString(), 'still here', 'existing sockets keep working')
      const health = await fetch(`${s.base}/healthz`)
      t.equal(health.status, 200, 'HTTP is still served while draining')
      const closing = s.server.close()
      t.equal(await open.closed, 1012, 'close tells open sockets the service is restarting')
      await closing
    })
  })
}

// ---- HTTP bodies streamed both ways ---------------------------------------------------------

const CHUNK = 64 * 1024
const TOTAL_CHUNKS = 1024 // 64 MiB: far more than the socket buffers between server and client hold

/** A server whose routes stream: a large generated download, and an upload read line by line. */
async function startStreaming(kind: 'uws' | 'ws') {
  const state = { pulled: 0, uploaded: 0, uploadDone: false }
  const opts: TransportOptions = {
    host: '127.0.0.1',
    port: 0,
    wsPath: '/v1/ws',
    maxPayloadBytes: 64 * 1024,
    idleTimeoutSec: 60,
    fetch: async (req: Request) => {
      const path = new URL(req.url).pathname
      if (path === '/download') {
        const chunk = new Uint8Array(CHUNK).fill(0x61)
        // highWaterMark 0: a chunk is made only when the transport asks for one.
        const body = new ReadableStream<Uint8Array>(
          {
            pull(c) {
              if (state.pulled === TOTAL_CHUNKS) return c.close()
              state.pulled++
              c.enqueue(chunk)
            },
          },
          { highWaterMark: 0 },
        )
        return new Response(body, { headers: { 'content-type': 'application/octet-stream' } })
      }
      if (path === '/until-stop') {
        // Answers as soon as a line "stop" arrives, whatever follows.
        const reader = req.body!.getReader()
        let seen = ''
        for (;;) {
          const { done, value } = await reader.read()
          if (done) break
          seen += Buffer.from(value).toString()
          if (seen.includes('stop\n')) break
        }
        void reader.cancel().catch(() => {})
        return new Response(JSON.stringify({ seen: seen.split('\n').filter(Boolean) }), { status: 422, headers: { 'content-type': 'application/json' } })
      }
      if (path === '/slow-upload') {
        // Reads nothing for a while, then everything.
        await new Promise((r) => setTimeout(r, 400))
        for await (const chunk of req.body as unknown as AsyncIterable<Uint8Array>) state.uploaded += chunk.byteLength
        state.uploadDone = true
        return new Response(JSON.stringify({ bytes: state.uploaded }), { headers: { 'content-type': 'application/json' } })
      }
      return new Response('{}', { status: 404 })
    },
    sockets: { open: () => ({ message() {}, drain() {}, closed() {} }) },
  }
  const server = await startTransport(kind, opts, () => {})
  return { server, state, port: server.port }
}

for (const { name: kind } of TRANSPORTS) {
  t.test(`streaming bodies: ${kind}`, async (t) => {
    const s = await startStreaming(kind)
    t.teardown(() => s.server.close())

    t.test('a streamed response is produced only as fast as the client reads', async (t) => {
      const res = await new Promise<IncomingMessage>((resolve, reject) => request({ port: s.port, path: '/download' }, resolve).on('error', reject).end())
      t.equal(res.statusCode, 200)
      t.equal(res.headers['transfer-encoding'], 'chunked', 'no length known up front: chunked')
      res.pause()
      await new Promise((r) => setTimeout(r, 500))
      const whileStalled = s.state.pulled
      t.ok(whileStalled < TOTAL_CHUNKS / 2, `a stalled client held the server back (${whileStalled} of ${TOTAL_CHUNKS} chunks made)`)
      let bytes = 0
      res.on('data', (d: Buffer) => (bytes += d.byteLength))
      res.resume()
      await new Promise((r) => res.on('end', r))
      t.equal(bytes, CHUNK * TOTAL_CHUNKS, 'then every byte arrives')
    })

    t.test('the router reads an upload as it arrives and may answer before it ends', async (t) => {
      const req = request({ port: s.port, path: '/until-stop', method: 'POST', headers: { 'content-type': 'text/plain' } })
      req.on('error', () => {}) // the server may close the connection while we still "send"
      const answered = new Promise<IncomingMessage>((resolve) => req.on('response', resolve))
      req.write('one\n')
      req.write('stop\n')
      // The request is left open: a buffering bridge would wait for its end forever.
      const res = await answered
      let text = ''
      res.on('data', (d) => (text += d))
      await new Promise((r) => res.on('end', r))
      t.equal(res.statusCode, 422)
      t.same(JSON.parse(text).seen, ['one', 'stop'])
      req.destroy()
    })

    t.test('an upload the router does not read yet is held back, then arrives whole', async (t) => {
      const total = 48 * 1024 * 1024
      const req = request({ port: s.port, path: '/slow-upload', method: 'POST', headers: { 'content-type': 'application/octet-stream' } })
      const answered = new Promise<IncomingMessage>((resolve, reject) => req.on('response', resolve).on('error', reject))
      const chunk = Buffer.alloc(CHUNK, 0x62)
      let written = 0
      let accepted = 0
      const pump = async () => {
        while (written < total) {
          written += chunk.byteLength
          if (!req.write(chunk)) await new Promise((r) => req.once('drain', r))
          accepted = written
        }
        req.end()
      }
      const pumping = pump()
      await new Promise((r) => setTimeout(r, 250))
      t.ok(accepted < total / 2, `the client could not push the body ahead of the router (${accepted >> 20} MiB of ${total >> 20})`)
      const res = await answered
      await pumping
      let text = ''
      res.on('data', (d) => (text += d))
      await new Promise((r) => res.on('end', r))
      t.equal(JSON.parse(text).bytes, total, 'every byte reached the router')
      await waitUntil(() => s.state.uploadDone)
    })
  })
}
