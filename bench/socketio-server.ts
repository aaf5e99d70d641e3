/**
 * The peer a team would otherwise pick: one Socket.IO 4 node with @socket.io/redis-adapter,
 * configured as a competent team would (WebSocket transport only, no per-message compression,
 * the default parser: no msgpack parser package is installed here). It stores nothing.
 *
 * A device connects with its token in the handshake (trusted as the user id, as bench/relay.ts
 * does: auth happens once per connection, off the measured path) and joins room `user:<id>`.
 * `push` ({ref, ops}) is emitted as `changes` ({items: ops}) to the whole room, the pusher's
 * socket included as synchub does, then acked ({ok: true}) to the pusher. Other nodes get it
 * through Redis.
 *
 * Run as its own process:
 *   PORT=… HOST=127.0.0.1 REDIS_URL=redis://… SOCKETIO_KEY=… node --import tsx bench/socketio-server.ts
 */
import { createServer } from 'node:http'
import { createAdapter } from '@socket.io/redis-adapter'
import { Redis } from 'ioredis'
import { Server } from 'socket.io'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 0)
const pub = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
const sub = pub.duplicate()
for (const r of [pub, sub]) r.on('error', (err) => console.error(`socketio-server: redis: ${err.message}`))

// Socket.IO takes its own path (/socket.io/); the rest is the bench's readiness probe.
const http = createServer((req, res) => {
  res.writeHead(req.url === '/readyz' || req.url === '/healthz' ? 200 : 404).end()
})
const io = new Server(http, {
  transports: ['websocket'],
  perMessageDeflate: false,
  serveClient: false,
  // The adapter's channels under this run's own prefix on the shared Redis.
  adapter: createAdapter(pub, sub, { key: process.env.SOCKETIO_KEY ?? 'socket.io' }),
})

io.use((socket, next) => {
  const token = (socket.handshake.auth as { token?: unknown }).token
  if (typeof token !== 'string' || !token) return next(new Error('unauthorized'))
  socket.data.user = token
  next()
})

io.on('connection', (socket) => {
  const room = `user:${socket.data.user as string}`
  void socket.join(room)
  socket.on('push', (msg: { ref?: number; ops?: unknown[] }, ack?: (res: { ok: boolean; code?: string }) => void) => {
    if (!Array.isArray(msg?.ops)) return ack?.({ ok: false, code: 'bad_push' })
    io.to(room).emit('changes', { items: msg.ops })
    ack?.({ ok: true })
  })
})

// Ready once both Redis connections are up and the adapter's subscriptions are in place
// (commands on one connection run in order: the PING answers after the PSUBSCRIBE).
await Promise.all([pub.ping(), sub.ping()])
http.listen(port, host, () => {
  console.log(`socketio-server listening on ${host}:${port}`)
})
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0))
