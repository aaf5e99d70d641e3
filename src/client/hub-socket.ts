import { EventEmitter } from 'node:events'
import WebSocket from 'ws'
import { decodeFrame, encodeFrame, type Encoding } from '../../protocol/codec.ts'
import { HubError, isErrorCode } from '../../protocol/errors.ts'
import type { AuthOkFrame, ChangesFrame, HubFrame, PushAckFrame } from '../../protocol/frames.ts'
import type { Op } from '../../protocol/ops.ts'

export interface ConnectOptions {
  token: string
  device: { id: string; name?: string; platform?: string }
  encoding?: Encoding
  /** Milliseconds to wait for each reply. */
  timeoutMs?: number
}

type Pending = { resolve(frame: HubFrame): void; reject(err: Error): void; timer: NodeJS.Timeout }

/**
 * One raw socket, frame by frame, for tests and debugging (Node): auth, sub, push, ack, ping,
 * refresh, each request answered by its reply. Nothing is retried or remembered: apps use
 * SyncClient. It checks the cursor rule (each `changes.from` equals the previous `to`) and
 * reports violations as `gap` events.
 * Events: changes(frame), synced(frame), reset(frame), bye(frame), error(frame), close(code, reason).
 */
export class HubSocket extends EventEmitter {
  auth!: AuthOkFrame
  /** Cursor after the last `changes` frame received. */
  cursor = 0
  closeCode: number | undefined
  private ref = 0
  private readonly pending = new Map<number, Pending>()
  private readonly ws: WebSocket
  private readonly encoding: Encoding
  private readonly timeoutMs: number
  private readonly closedPromise: Promise<number>

  private constructor(url: string, opts: ConnectOptions) {
    super()
    this.encoding = opts.encoding ?? 'msgpack'
    this.timeoutMs = opts.timeoutMs ?? 10_000
    this.ws = new WebSocket(url, { perMessageDeflate: false })
    this.ws.binaryType = 'nodebuffer'
    this.ws.on('message', (data: Buffer, isBinary: boolean) => this.onFrame(decodeFrame(isBinary ? data : data.toString('utf8'), isBinary, false) as HubFrame))
    this.closedPromise = new Promise((resolve) =>
      this.ws.on('close', (code, reason) => {
        this.closeCode = code
        for (const p of this.pending.values()) {
          clearTimeout(p.timer)
          p.reject(new Error(`socket closed (${code})`))
        }
        this.pending.clear()
        this.emit('close', code, reason.toString())
        resolve(code)
      }),
    )
    this.ws.on('error', (err) => this.emit('socket_error', err))
  }

  /** Opens a socket and authenticates; rejects with the hub's error when auth is refused. */
  static async connect(url: string, opts: ConnectOptions): Promise<HubSocket> {
    const client = new HubSocket(url, opts)
    await new Promise<void>((resolve, reject) => {
      client.ws.once('open', () => resolve())
      client.ws.once('error', reject)
    })
    client.auth = (await client.request({ t: 'auth', token: opts.token, device: opts.device })) as AuthOkFrame
    return client
  }

  /** Subscribes from `since`; resolves with the `synced` cursor once the backlog is delivered. */
  async subscribe(since = 0, extra: { epoch?: string; collections?: string[] } = {}): Promise<number> {
    this.cursor = since
    const reply = await this.request({ t: 'sub', since, ...extra })
    if (reply.t === 'reset') throw Object.assign(new Error(`reset: ${reply.reason}`), { reset: reply })
    return (reply as { cursor: number }).cursor
  }

  push(ops: Op[]): Promise<PushAckFrame> {
    return this.request({ t: 'push', ops }) as Promise<PushAckFrame>
  }

  ping(): Promise<HubFrame> {
    return this.request({ t: 'ping' })
  }

  refresh(token: string): Promise<HubFrame> {
    return this.request({ t: 'refresh', token })
  }

  ack(cursor: number): void {
    this.sendRaw(encodeFrame({ t: 'ack', cursor }, this.encoding))
  }

  /** Sends raw bytes or text (tests of bad input). */
  sendRaw(data: Uint8Array | string): void {
    this.ws.send(data)
  }

  /** Sends a frame with a fresh ref and resolves with the hub's reply to it. */
  request(frame: Record<string, unknown>): Promise<HubFrame> {
    const ref = ++this.ref
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(ref)
        reject(new Error(`no reply to ${String(frame.t)} within ${this.timeoutMs} ms`))
      }, this.timeoutMs)
      this.pending.set(ref, { resolve, reject, timer })
      this.ws.send(encodeFrame({ ...frame, ref }, this.encoding))
    })
  }

  /** Resolves once the socket is closed, with the close code. */
  closed(): Promise<number> {
    return this.closedPromise
  }

  close(code = 1000): Promise<number> {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(code)
    return this.closedPromise
  }

  /** Drops the TCP connection without a close handshake (a phone losing signal). */
  kill(): void {
    this.ws.terminate()
  }

  private onFrame(frame: HubFrame): void {
    if (frame.t === 'changes') this.onChanges(frame)
    const ref = 'ref' in frame ? frame.ref : undefined
    const pending = ref !== undefined ? this.pending.get(ref) : undefined
    if (pending && frame.t !== 'changes') {
      this.pending.delete(ref!)
      clearTimeout(pending.timer)
      if (frame.t === 'error') pending.reject(new HubError(isErrorCode(frame.code) ? frame.code : 'internal', frame.message))
      else pending.resolve(frame)
    }
    // An `error` frame is an event like any other; EventEmitter would throw one nobody listens to.
    if (frame.t !== 'changes' && (frame.t !== 'error' || this.listenerCount('error') > 0)) this.emit(frame.t, frame)
  }

  private onChanges(frame: ChangesFrame): void {
    if (frame.from !== this.cursor) this.emit('gap', { expected: this.cursor, got: frame.from })
    this.cursor = frame.to
    this.emit('changes', frame)
  }
}
