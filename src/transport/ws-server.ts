import { createServer, ServerResponse, STATUS_CODES, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { getRequestListener } from '@hono/node-server'
import { WebSocketServer, type WebSocket } from 'ws'
import { CLOSE } from '../../protocol/errors.ts'
import type { Connection, SocketSession, TransportOptions, TransportServer } from './connection.ts'

/**
 * The fallback transport: node:http for REST (through Hono's node adapter) and the `ws`
 * package for sockets, on one port. Used when uWebSockets.js does not load, or when pinned.
 */
export async function startWsServer(opts: TransportOptions): Promise<TransportServer> {
  let accepting = true
  const sockets = new Set<WebSocket>()
  const listener = getRequestListener((req, env) => opts.fetch(req, { remoteAddress: remoteOf(env.incoming as IncomingMessage) }), { overrideGlobalObjects: false })
  const http = createServer(listener)
  http.keepAliveTimeout = 5_000
  // CONNECT never reaches the request listener on its own (node hands it over as a tunnel, and
  // drops it when nobody takes it): the router answers it like any request (405), then the
  // connection closes.
  http.on('connect', (req: IncomingMessage, socket: Duplex) => {
    if (!(req.url ?? '').startsWith('/')) req.url = '/'
    const res = new ServerResponse(req)
    res.shouldKeepAlive = false
    res.assignSocket(socket as Socket)
    res.on('finish', () => socket.end())
    void listener(req, res)
  })
  // A request node's parser refuses (an unknown method, broken framing) gets an answer before
  // the connection closes, rather than node's bare 400.
  http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) return void socket.destroy()
    socket.end(parserRefusal(err.code))
  })
  const wss = new WebSocketServer({ noServer: true, maxPayload: opts.maxPayloadBytes, perMessageDeflate: false, clientTracking: false })

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (req.url ?? '').split('?')[0]
    if (path !== opts.wsPath || !accepting) {
      socket.end(`HTTP/1.1 ${accepting ? '404 Not Found' : '503 Service Unavailable'}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`)
      return
    }
    if (opts.upgradeAllowed && !opts.upgradeAllowed(req.headers.origin, req.headers.host)) {
      socket.end(rawAnswer(403, 'forbidden', 'this origin may not open sockets on this hub'))
      return
    }
    wss.handleUpgrade(req, socket, head, (ws) => attach(ws, socket, remoteOf(req)))
  })

  const attach = (ws: WebSocket, socket: Duplex, remoteAddress: string) => {
    sockets.add(ws)
    let closed = false
    let lastSeen = Date.now()
    const conn: Connection = {
      remoteAddress,
      send: (data) => {
        if (!closed) ws.send(data, { binary: typeof data !== 'string' })
      },
      cork: (fn) => {
        socket.cork()
        try {
          fn()
        } finally {
          socket.uncork()
        }
      },
      get bufferedAmount() {
        return ws.bufferedAmount
      },
      close: (code, reason) => {
        if (closed) return
        closed = true
        ws.close(code, reason)
        // A peer that never answers the close handshake is cut after a grace period, long
        // enough for a slow reader to take the frames queued ahead of the close.
        setTimeout(() => ws.terminate(), 10_000).unref()
      },
      get closed() {
        return closed
      },
    }
    const session: SocketSession = opts.sockets.open(conn)
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      lastSeen = Date.now()
      session.message(data, isBinary)
    })
    ws.on('pong', () => (lastSeen = Date.now()))
    // ws has no drain event of its own; the TCP socket's is the same signal.
    socket.on('drain', () => session.drain())
    ws.on('error', () => ws.terminate())
    ws.on('close', (code: number) => {
      closed = true
      sockets.delete(ws)
      clearInterval(keepAlive)
      session.closed(code)
    })
    // Same contract as uWS idleTimeout: ping at half the timeout, drop a peer silent for the whole.
    const keepAlive = setInterval(() => {
      if (Date.now() - lastSeen > opts.idleTimeoutSec * 1000) return ws.terminate()
      ws.ping()
    }, (opts.idleTimeoutSec * 1000) / 2)
    keepAlive.unref()
  }

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject)
    http.listen(opts.port, opts.host, () => resolve())
  })
  const address = http.address()
  return {
    kind: 'ws',
    port: typeof address === 'object' && address ? address.port : opts.port,
    stopAccepting() {
      accepting = false
    },
    async close() {
      accepting = false
      for (const ws of sockets) ws.close(CLOSE.draining, 'server closing')
      await new Promise((r) => setTimeout(r, 50))
      for (const ws of sockets) ws.terminate()
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}

/** What a request node's HTTP parser refused is answered with (its llhttp error code). */
function parserRefusal(code: string | undefined): string {
  if (code === 'HPE_INVALID_METHOD') return rawAnswer(405, 'method_not_allowed', 'this method is not served here', { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' })
  if (code === 'HPE_HEADER_OVERFLOW') return rawAnswer(431, 'bad_frame', 'request headers too large')
  return rawAnswer(400, 'bad_frame', 'malformed HTTP request')
}

/** A complete HTTP/1.1 answer with a JSON error body, written straight to a socket the router never saw. */
function rawAnswer(status: number, code: string, message: string, extra: Record<string, string> = {}): string {
  const body = JSON.stringify({ error: { code, message } })
  const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'x-content-type-options': 'nosniff', 'cache-control': 'no-store', connection: 'close', ...extra }
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n${body}`
}

function remoteOf(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? ''
}
