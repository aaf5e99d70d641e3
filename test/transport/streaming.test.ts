import { request, type IncomingMessage } from 'node:http'
import t from 'tap'
import type { TransportOptions } from '../../src/transport/connection.ts'
import { startTransport } from '../../src/transport/start.ts'
import { waitUntil } from '../helpers/wait.ts'

const CHUNK = 64 * 1024
const TOTAL_CHUNKS = 1024 // 64 MiB: far more than the socket buffers between server and client hold

/** A server whose routes stream: a large generated download, and an upload read line by line. */
async function start(kind: 'uws' | 'ws') {
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

for (const kind of ['uws', 'ws'] as const) {
  t.test(`streaming bodies: ${kind}`, async (t) => {
    const s = await start(kind)
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
