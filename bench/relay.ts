/**
 * The ceiling: a bare uWebSockets.js pub/sub relay that speaks the same frames as the hub and
 * stores nothing. auth → auth_ok and a subscription to the user's topic; sub → synced; push →
 * ack, and its ops published as one `changes` frame to every socket of the user (the pusher's
 * included, as the hub does). The token is the user id. A per-user seq counter keeps the frames
 * shaped like the hub's; it is the only state.
 *
 * Run as its own process: PORT=… HOST=127.0.0.1 node --import tsx bench/relay.ts
 */
import uWS from 'uWebSockets.js'
import { decodeFrame, encodeMsgpack } from '../protocol/codec.ts'

interface SocketData {
  user?: string
  device?: string
}
type Op = { op: string; mid: number; collection: string; id: string; data: Record<string, unknown> }

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 0)
const seqs = new Map<string, number>()
const app = uWS.App()

app.ws<SocketData>('/v1/ws', {
  compression: uWS.DISABLED,
  maxPayloadLength: 4 * 1024 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 120,
  upgrade: (res, req, context) => {
    res.upgrade<SocketData>(
      {},
      req.getHeader('sec-websocket-key'),
      req.getHeader('sec-websocket-protocol'),
      req.getHeader('sec-websocket-extensions'),
      context,
    )
  },
  message: (ws, message, isBinary) => {
    let frame: Record<string, unknown>
    try {
      frame = decodeFrame(new Uint8Array(message), isBinary, false) // the bare baseline: no text checks
    } catch {
      ws.send(encodeMsgpack({ t: 'error', code: 'bad_frame', message: 'not a msgpack map' }), true)
      return
    }
    const data = ws.getUserData()
    const ref = frame.ref as number
    if (frame.t === 'auth') {
      data.user = String(frame.token)
      data.device = String((frame.device as { id: string }).id)
      ws.subscribe(topicOf(data.user))
      const now = Date.now()
      ws.send(
        encodeMsgpack({ t: 'auth_ok', ref, user_id: data.user, device_id: data.device, cursor: seqs.get(data.user) ?? 0, epoch: '1', expires_at: now + 3_600_000, server_time: now, node: 'relay' }),
        true,
      )
    } else if (!data.user) {
      ws.send(encodeMsgpack({ t: 'error', ref, code: 'unauthorized', message: 'auth first' }), true)
      ws.end(4401)
    } else if (frame.t === 'sub') {
      ws.send(encodeMsgpack({ t: 'synced', ref, cursor: seqs.get(data.user) ?? 0 }), true)
    } else if (frame.t === 'push') {
      push(data.user, data.device!, ref, frame.ops as Op[], (bytes) => ws.send(bytes, true))
    } else if (frame.t === 'ping') {
      ws.send(encodeMsgpack({ t: 'pong', ref, server_time: Date.now(), cursor: seqs.get(data.user) ?? 0 }), true)
    }
  },
})

app.get('/readyz', (res) => void res.end('ok'))
app.get('/healthz', (res) => void res.end('ok'))

function push(user: string, device: string, ref: number, ops: Op[], reply: (bytes: Uint8Array) => void): void {
  const from = seqs.get(user) ?? 0
  const now = Date.now()
  let seq = from
  const items = ops.map((op) => {
    seq++
    return { seq, collection: op.collection, id: op.id, data: op.data, rev: seq, created_at: now, updated_at: now, device_id: device }
  })
  seqs.set(user, seq)
  reply(encodeMsgpack({ t: 'ack', ref, cursor: seq, results: items.map((c) => ({ ok: true, seq: c.seq, id: c.id })) }))
  app.publish(topicOf(user), encodeMsgpack({ t: 'changes', from, to: seq, items }), true)
}

function topicOf(user: string): string {
  return `u/${user}`
}

app.listen(host, port, (token) => {
  if (!token) {
    console.error(`relay: cannot listen on ${host}:${port}`)
    process.exit(1)
  }
  console.log(`relay listening on ${host}:${port}`)
})
for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0))
