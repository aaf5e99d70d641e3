import { STATUS_CODES } from 'node:http'
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
      if (opts.upgradeAllowed && !opts.upgradeAllowed(req.getHeader('origin') || undefined, req.getHeader('host') || undefined)) {
        res.writeStatus('403 Forbidden').writeHeader('content-type', 'application/json').end('{"error":{"code":"forbidden","message":"this origin may not open sockets on this hub"}}')
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
        // uWS throws on a closed socket's cork; sends to it are no-ops then anyway.
        cork: (fn) => void (data.closed ? fn() : ws.cork(fn)),
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

/** Request body bytes queued ahead of the router before the upload is paused (backpressure). */
const BODY_BUFFER_BYTES = 256 * 1024

/** What the request and response halves of one exchange share. */
interface Exchange {
  aborted: boolean
  /** The whole request body has arrived (or there is none). */
  bodyDone: boolean
  /** Wakes a response write waiting for the socket to drain. */
  wake?: () => void
  /** Ends the request body stream when the client goes away. */
  fail?: (err: Error) => void
}

/**
 * Turns a uWS request into a web-standard Request, runs the router, writes the Response back.
 * Both bodies stream: the request body is a ReadableStream fed by `onData` that pauses the
 * upload while the router is behind, and the response is written chunk by chunk, waiting on
 * `onWritable` whenever uWS holds unsent bytes, so neither is ever held whole in memory.
 */
function serveHttp(res: Uws.HttpResponse, req: Uws.HttpRequest, opts: TransportOptions): void {
  // HttpRequest lives only until the first await: read everything now.
  const method = req.getCaseSensitiveMethod().toUpperCase()
  const query = req.getQuery()
  const url = requestUrl(req.getHeader('host'), `${req.getUrl()}${query ? `?${query}` : ''}`)
  const headers = new Headers()
  try {
    req.forEach((k, v) => headers.append(k, byteString(v)))
  } catch {
    // Anything thrown here, before the abort handler exists, would end the process: answer instead.
    res.writeStatus('400 Bad Request').writeHeader('content-type', 'application/json').end('{"error":{"code":"bad_frame","message":"malformed request headers"}}', true)
    return
  }
  const remoteAddress = Buffer.from(res.getRemoteAddressAsText()).toString()
  const abort = new AbortController()
  // HTTP/1.1 framing: without Content-Length or Transfer-Encoding a request has no body (a
  // preflight OPTIONS, most DELETEs); GET and HEAD bodies are never read.
  const length = req.getHeader('content-length')
  const framed = (length !== '' && length !== '0') || req.getHeader('transfer-encoding') !== ''
  const x: Exchange = { aborted: false, bodyDone: method === 'GET' || method === 'HEAD' || !framed }
  res.onAborted(() => {
    x.aborted = true
    abort.abort()
    x.fail?.(new Error('request aborted'))
    x.wake?.()
  })
  // onData must be registered before this handler returns.
  const body = x.bodyDone ? undefined : requestBody(res, x)

  void (async () => {
    let response: Response
    try {
      response = await opts.fetch(webRequest(url, method, { headers, body, signal: abort.signal, duplex: 'half' } as RequestInit), { remoteAddress })
    } catch {
      response = new Response('{"error":{"code":"internal","message":"internal error"}}', { status: 500, headers: { 'content-type': 'application/json' } })
    }
    await writeResponse(res, response, x)
  })()
}

/**
 * The request's URL for the router. The Host header is the client's to write: one that makes no
 * URL ("a b", "[::1") falls back to localhost rather than failing the request (the router only
 * reads the path).
 */
function requestUrl(host: string, target: string): string {
  for (const origin of [`http://${host || 'localhost'}`, 'http://localhost']) {
    try {
      return new URL(origin + target).href
    } catch {}
  }
  return 'http://localhost/'
}

/**
 * uWS hands header values over decoded as UTF-8, while a fetch Headers value must be a byte
 * string: a header with a character above U+00FF (or bytes that are not UTF-8, which uWS turns
 * into U+FFFD) would make Headers throw, outside any handler, and take the process down. Such a
 * value is passed as its UTF-8 bytes, one character per byte, as node's own HTTP server does.
 */
function byteString(value: string): string {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0xff) return Buffer.from(value, 'utf8').toString('latin1')
  return value
}

/** Methods fetch's Request refuses to carry; the router still has to see them to answer 405. */
const FORBIDDEN_BY_FETCH: ReadonlySet<string> = new Set(['CONNECT', 'TRACE', 'TRACK'])

/** A web Request for the router. One with a method fetch forbids carries it bodiless, on a GET. */
function webRequest(url: string, method: string, init: RequestInit): Request {
  if (!FORBIDDEN_BY_FETCH.has(method)) return new Request(url, { ...init, method })
  const body = init.body as ReadableStream<Uint8Array> | undefined
  body?.cancel().catch(() => {}) // whatever was sent is drained and dropped
  return Object.defineProperty(new Request(url, { headers: init.headers, signal: init.signal, method: 'GET' }), 'method', { value: method })
}

function requestBody(res: Uws.HttpResponse, x: Exchange): ReadableStream<Uint8Array> {
  let paused = false
  let discard = false
  let controller!: ReadableStreamDefaultController<Uint8Array>
  const resume = () => {
    if (!paused || x.aborted) return
    paused = false
    res.resume()
  }
  const stream = new ReadableStream<Uint8Array>(
    {
      start: (c) => void (controller = c),
      pull: resume,
      // The router stopped reading (it answered early): let the rest through and drop it.
      cancel: () => {
        discard = true
        resume()
      },
    },
    { highWaterMark: BODY_BUFFER_BYTES, size: (chunk) => chunk.byteLength },
  )
  x.fail = (err) => {
    if (x.bodyDone || discard) return
    discard = true
    controller.error(err)
  }
  res.onData((chunk, isLast) => {
    // The chunk is neutered after this callback: copy it.
    if (!discard) controller.enqueue(new Uint8Array(chunk.slice(0)))
    if (isLast) {
      x.bodyDone = true
      if (!discard) controller.close()
    } else if (!discard && !paused && (controller.desiredSize ?? 1) <= 0) {
      paused = true
      res.pause()
    }
  })
  return stream
}

/**
 * A body that is complete at once (most answers) goes out in one `end` with its length; a
 * streaming one (an export) as chunked writes. Answered before the request body was read to
 * its end (an early error), the connection is closed after the answer rather than reused.
 */
async function writeResponse(res: Uws.HttpResponse, response: Response, x: Exchange): Promise<void> {
  const head = () => {
    res.writeStatus(`${response.status} ${STATUS_CODES[response.status] ?? 'Unknown'}`)
    response.headers.forEach((value, key) => {
      if (key !== 'content-length') res.writeHeader(key, value)
    })
    return res
  }
  const reader = response.body?.getReader()
  try {
    if (!reader) {
      if (!x.aborted) res.cork(() => head().end(undefined, !x.bodyDone))
      return
    }
    const first = await reader.read()
    if (x.aborted) return void reader.cancel().catch(() => {})
    if (first.done) return void res.cork(() => head().end(undefined, !x.bodyDone))
    // Whatever is ready without waiting belongs to a body produced whole.
    const pending = reader.read()
    pending.catch(() => {}) // awaited below, unless the client left first
    const second = await Promise.race([pending, new Promise<undefined>((resolve) => setImmediate(() => resolve(undefined)))])
    if (x.aborted) return void reader.cancel().catch(() => {})
    if (second?.done) return void res.cork(() => head().end(first.value, !x.bodyDone))
    let drained: Promise<void> | undefined
    res.cork(() => {
      head()
      if (!res.write(first.value)) drained = writable(res, x)
    })
    let next = second ?? (await pending)
    for (;;) {
      if (drained) await drained
      drained = undefined
      if (x.aborted) return void reader.cancel().catch(() => {})
      if (next.done) break
      const chunk = next.value
      res.cork(() => {
        if (!res.write(chunk)) drained = writable(res, x)
      })
      next = await reader.read()
    }
    if (!x.aborted) res.cork(() => res.end(undefined, !x.bodyDone))
  } catch {
    // The body failed midway (e.g. the database went away during an export): cut the
    // connection so the client sees an incomplete answer, never a short one that looks whole.
    if (!x.aborted) res.close()
  }
}

/**
 * Resolves once uWS has sent what it held back (or the client is gone). Registered right after
 * the write that hit backpressure, and resumed on a later turn: writing again from inside
 * uWS's own writable callback leaves it waiting for a writable event that never comes.
 */
function writable(res: Uws.HttpResponse, x: Exchange): Promise<void> {
  if (x.aborted) return Promise.resolve()
  return new Promise((resolve) => {
    x.wake = resolve
    res.onWritable(() => {
      x.wake = undefined
      setImmediate(resolve)
      return true
    })
  })
}
