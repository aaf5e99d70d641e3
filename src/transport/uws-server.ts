import type * as Uws from 'uWebSockets.js'
import { CLOSE } from '../../protocol/errors.ts'
import type { Connection, SocketSession, TransportOptions, TransportServer } from './connection.ts'

type UwsModule = typeof Uws
interface SocketData {
  remoteAddress: string
  session?: SocketSession
  closed: boolean
}

/** Loads uWebSockets.js, or returns the reason it cannot be used on this machine. */
export async function loadUws(): Promise<UwsModule | Error> {
  try {
    const mod = (await import('uWebSockets.js')) as Partial<UwsModule> & { default?: UwsModule }
    const uws = (typeof mod.App === 'function' ? mod : mod.default!) as UwsModule
    uws.App() // the native binding is loaded lazily; make it prove it works here
    return uws
  } catch (err) {
    return err instanceof Error ? err : new Error(String(err))
  }
}

/**
 * The fast transport: uWebSockets.js serves REST and sockets on one port. Its send buffer is
 * unbounded from uWS's side (so it never silently drops a frame); the session enforces the
 * slow-consumer bound itself and closes the socket past it.
 */
export async function startUwsServer(uws: UwsModule, opts: TransportOptions): Promise<TransportServer> {
  const app = uws.App()
  const sockets = new Set<Uws.WebSocket<SocketData>>()
  let accepting = true
  let listenSocket: Uws.us_listen_socket | undefined

  app.ws<SocketData>(opts.wsPath, {
    compression: uws.DISABLED,
    maxPayloadLength: opts.maxPayloadBytes,
    idleTimeout: opts.idleTimeoutSec,
    sendPingsAutomatically: true,
    maxBackpressure: 1024 * 1024 * 1024,
    upgrade: (res, req, context) => {
      if (!accepting) {
        res.writeStatus('503 Service Unavailable').end()
        return
      }
      const data: SocketData = { remoteAddress: Buffer.from(res.getRemoteAddressAsText()).toString(), closed: false }
      res.upgrade(data, req.getHeader('sec-websocket-key'), req.getHeader('sec-websocket-protocol'), req.getHeader('sec-websocket-extensions'), context)
    },
    open: (ws) => {
      sockets.add(ws)
      const data = ws.getUserData()
      const conn: Connection = {
        remoteAddress: data.remoteAddress,
        send: (frame) => {
          if (data.closed) return
          // 2 = dropped: never happens under the huge limit above, but a dropped frame would
          // break the stream, so the socket goes and the client resumes by cursor.
          if (ws.send(frame, typeof frame !== 'string') === 2) conn.close(CLOSE.tryAgain, 'send buffer full')
        },
        get bufferedAmount() {
          return data.closed ? 0 : ws.getBufferedAmount()
        },
        close: (code, reason) => {
          if (data.closed) return
          data.closed = true
          ws.end(code, reason)
        },
        get closed() {
          return data.closed
        },
      }
      data.session = opts.sockets.open(conn)
    },
    message: (ws, message, isBinary) => {
      // The ArrayBuffer is only valid during this call; the session copies what it keeps.
      ws.getUserData().session?.message(new Uint8Array(message), isBinary)
    },
    drain: (ws) => ws.getUserData().session?.drain(),
    close: (ws, code) => {
      sockets.delete(ws)
      const data = ws.getUserData()
      data.closed = true
      data.session?.closed(code)
    },
  })

  app.any('/*', (res, req) => serveHttp(res, req, opts))

  await new Promise<void>((resolve, reject) => {
    app.listen(opts.host, opts.port, (token) => {
      if (!token) return reject(new Error(`uWebSockets.js could not listen on ${opts.host}:${opts.port}`))
      listenSocket = token
      resolve()
    })
  })
  return {
    kind: 'uws',
    port: uws.us_socket_local_port(listenSocket as unknown as Uws.us_socket),
    stopAccepting() {
      accepting = false
    },
    async close() {
      accepting = false
      if (listenSocket) uws.us_listen_socket_close(listenSocket)
      listenSocket = undefined
      for (const ws of [...sockets]) {
        const data = ws.getUserData()
        if (!data.closed) {
          data.closed = true
          ws.end(CLOSE.draining, 'server closing')
        }
      }
    },
  }
}

/** Turns a uWS request into a web-standard Request, runs the router, writes the Response back. */
function serveHttp(res: Uws.HttpResponse, req: Uws.HttpRequest, opts: TransportOptions): void {
  // HttpRequest lives only until the first await: read everything now.
  const method = req.getCaseSensitiveMethod().toUpperCase()
  const query = req.getQuery()
  const url = `http://${req.getHeader('host') || 'localhost'}${req.getUrl()}${query ? `?${query}` : ''}`
  const headers = new Headers()
  req.forEach((k, v) => headers.append(k, v))
  const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString()
  const abort = new AbortController()
  let aborted = false
  res.onAborted(() => {
    aborted = true
    abort.abort()
  })

  const respond = async (body: Uint8Array | undefined) => {
    let response: Response
    try {
      const request = new Request(url, { method, headers, body: body as BodyInit | undefined, signal: abort.signal })
      response = await opts.fetch(request, { remoteAddress })
    } catch {
      response = new Response('{"error":{"code":"internal","message":"internal error"}}', { status: 500, headers: { 'content-type': 'application/json' } })
    }
    const payload = new Uint8Array(await response.arrayBuffer())
    if (aborted) return
    res.cork(() => {
      res.writeStatus(`${response.status} ${response.statusText || 'OK'}`)
      response.headers.forEach((value, key) => {
        if (key !== 'content-length') res.writeHeader(key, value)
      })
      res.end(payload)
    })
  }

  if (method === 'GET' || method === 'HEAD') return void respond(undefined)
  const chunks: Buffer[] = []
  let size = 0
  res.onData((chunk, isLast) => {
    // The chunk is neutered after this callback: copy it.
    const copy = Buffer.from(chunk.slice(0))
    size += copy.byteLength
    // Far past any route's limit: stop reading; the route answers too_large for merely big bodies.
    if (size > opts.maxPayloadBytes * 2) {
      if (!aborted) {
        aborted = true
        res.cork(() => res.writeStatus('413 Payload Too Large').writeHeader('content-type', 'application/json').end('{"error":{"code":"too_large","message":"request body too large"}}', true))
      }
      return
    }
    chunks.push(copy)
    if (isLast) void respond(Buffer.concat(chunks))
  })
}
