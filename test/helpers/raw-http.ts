import net from 'node:net'

/** What came back on the wire for one raw HTTP/1.1 request. */
export interface RawAnswer {
  /** undefined: no status line arrived (closed or timed out without an answer). */
  status?: number
  reason?: string
  headers: Record<string, string>
  body: string
  /** The connection was closed by the server, rather than left open after a complete answer. */
  closed: boolean
  timedOut: boolean
}

/**
 * Writes `request` (exactly these bytes) to a fresh TCP connection and reads the first answer:
 * resolves once it is complete (Content-Length), the server closes, or `timeoutMs` passes.
 * `abortAfter` writes the request and destroys the socket that many ms later without reading.
 */
export function rawHttp(port: number, request: string | Uint8Array, opts: { timeoutMs?: number; host?: string } = {}): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = net.connect(port, opts.host ?? '127.0.0.1')
    let data = Buffer.alloc(0)
    let done = false
    const finish = (closed: boolean, timedOut = false) => {
      if (done) return
      done = true
      clearTimeout(timer)
      socket.destroy()
      resolve({ ...parse(data), closed, timedOut })
    }
    const timer = setTimeout(() => finish(false, true), opts.timeoutMs ?? 3000)
    socket.on('data', (chunk) => {
      data = Buffer.concat([data, chunk])
      const parsed = parse(data)
      const length = Number(parsed.headers['content-length'] ?? NaN)
      if (parsed.status !== undefined && (parsed.status === 204 || parsed.status === 304 || Buffer.byteLength(parsed.body) >= length)) {
        // Give a close that follows at once the chance to be seen.
        setTimeout(() => finish(socket.destroyed || socket.readableEnded), 20)
      }
    })
    socket.on('end', () => finish(true))
    socket.on('close', () => finish(true))
    socket.on('error', () => finish(true))
    socket.write(request)
  })
}

/** Sends the head and part of a body, then drops the connection (an upload the client gave up). */
export async function abortedUpload(port: number, head: string, partial: Uint8Array | string, afterMs = 50): Promise<void> {
  const socket = net.connect(port, '127.0.0.1')
  socket.on('error', () => {})
  await new Promise((r) => socket.once('connect', r))
  socket.write(head)
  socket.write(partial)
  await new Promise((r) => setTimeout(r, afterMs))
  socket.destroy()
}

function parse(data: Buffer): Omit<RawAnswer, 'closed' | 'timedOut'> {
  const text = data.toString('latin1')
  const end = text.indexOf('\r\n\r\n')
  if (end < 0) return { headers: {}, body: '' }
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n')
  const m = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine ?? '')
  const headers: Record<string, string> = {}
  for (const line of lines) {
    const i = line.indexOf(':')
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim()
  }
  return { status: m ? Number(m[1]) : undefined, reason: m?.[2], headers, body: data.subarray(Buffer.byteLength(text.slice(0, end + 4), 'latin1')).toString('utf8') }
}

/** A request head: method, target, headers (Host and Connection: close added). */
export function head(method: string, target: string, headers: Record<string, string | number> = {}): string {
  const all = { host: 'localhost', connection: 'close', ...headers }
  return `${method} ${target} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`
}
