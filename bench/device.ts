import { randomUUID } from 'node:crypto'
import WebSocket from 'ws'
import { decodeMsgpack, encodeMsgpack } from '../protocol/codec.ts'
import { FrameScanner, type Scanned } from './frame-scan.ts'
import { now as clockNow } from './clock.ts'
import type { BenchDevice, Frame, OpenDevice } from './device-port.ts'
import { pushFrame } from './messages.ts'

export type { Frame }

/** Setup requests use refs from here up, so they never collide with step pushes (ref = push number + 1). */
const SETUP_REF_BASE = 1_000_000_000
/** One scanner for every socket of this thread (module state is per worker): each scan is consumed synchronously. */
const scanner = new FrameScanner()
/** Every Nth scanned frame is also decoded in full and compared (a scanner bug must not pass as a loss or a pass). */
const CROSS_CHECK_EVERY = 500
export const scanStats = { scanned: 0, checked: 0, mismatches: 0 }

/**
 * One device's socket, kept lean for the hot path: `changes` and acks go to `onScanned` without
 * being decoded, anything else to `onFrame`; only setup requests (auth, sub, the first
 * conversation) wait for replies.
 */
export class DeviceSocket implements BenchDevice {
  /** Mutation number of the last op this device sent. */
  mid = 0
  /** `to` of the last changes frame (the cursor rule: next `from` must equal it). */
  cursor = 0
  closed = false
  onFrame: (frame: Frame, now: number) => void = () => {}
  /** The hot path: `changes` and successful `ack` frames, read without decoding. */
  onScanned: (frame: Scanned, now: number) => void = () => {}
  onClose: (code: number) => void = () => {}
  private setupRef = SETUP_REF_BASE
  private readonly waiting = new Map<number, { resolve(f: Frame): void; reject(e: Error): void; timer: NodeJS.Timeout }>()

  private constructor(
    private readonly ws: WebSocket,
    readonly user: number,
    readonly index: number,
    readonly id: string,
  ) {
    ws.binaryType = 'nodebuffer'
    ws.on('message', (data: Buffer) => {
      const now = clockNow()
      if (scanner.scan(data)) {
        const s = scanner.out
        // Setup replies and refusals carry what the slow path needs: decode those in full.
        if (!(s.t === 'ack' && (s.ref >= SETUP_REF_BASE || !s.ok))) {
          if (++scanStats.scanned % CROSS_CHECK_EVERY === 0) crossCheck(s, decodeMsgpack(data) as Frame)
          return this.onScanned(s, now)
        }
      }
      const frame = decodeMsgpack(data) as Frame
      const ref = frame.ref as number | undefined
      if (ref !== undefined && ref >= SETUP_REF_BASE && frame.t !== 'changes') {
        const w = this.waiting.get(ref)
        if (w) {
          this.waiting.delete(ref)
          clearTimeout(w.timer)
          if (frame.t === 'error') w.reject(new Error(`${String(frame.code)}: ${String(frame.message)}`))
          else w.resolve(frame)
          return
        }
      }
      this.onFrame(frame, now)
    })
    ws.on('close', (code: number) => {
      this.closed = true
      for (const w of this.waiting.values()) (clearTimeout(w.timer), w.reject(new Error(`socket closed (${code})`)))
      this.waiting.clear()
      this.onClose(code)
    })
    ws.on('error', () => {}) // 'close' follows and is what counts
  }

  /** Opens the socket, then `auth` and `sub {since:0}`, waiting for `synced`. */
  static async openSubscribed(o: OpenDevice): Promise<DeviceSocket> {
    const dev = await DeviceSocket.open(o.url, o.user, o.index, randomUUID(), o.timeoutMs)
    try {
      const auth = await dev.request({ t: 'auth', token: o.token, device: { id: dev.id, name: `bench ${o.index}`, platform: 'bench' } }, o.timeoutMs)
      if (auth.t !== 'auth_ok') throw new Error(`auth answered ${auth.t}`)
      const synced = await dev.request({ t: 'sub', since: 0 }, o.timeoutMs)
      if (synced.t !== 'synced') throw new Error(`sub answered ${synced.t}`)
    } catch (err) {
      await dev.close()
      throw err
    }
    return dev
  }

  static open(url: string, user: number, index: number, id: string, timeoutMs: number): Promise<DeviceSocket> {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * 1024 * 1024, handshakeTimeout: timeoutMs })
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new DeviceSocket(ws, user, index, id)))
      ws.once('error', reject)
    })
  }

  /** A setup request: resolves with the reply to its ref, rejects on `error` or timeout. */
  request(frame: Record<string, unknown>, timeoutMs: number): Promise<Frame> {
    const ref = ++this.setupRef
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(ref)
        reject(new Error(`no reply to ${String(frame.t)} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.waiting.set(ref, { resolve, reject, timer })
      this.ws.send(encodeMsgpack({ ...frame, ref }))
    })
  }

  async createConversation(id: string, title: string, timeoutMs: number): Promise<void> {
    const op = { op: 'put', mid: ++this.mid, collection: 'conversations', id, data: { title } }
    const ack = await this.request({ t: 'push', ops: [op] }, timeoutMs)
    const result = (ack.results as Array<{ ok: boolean; code?: string }> | undefined)?.[0]
    if (ack.t !== 'ack' || !result?.ok) throw new Error(`conversation push answered ${JSON.stringify(ack).slice(0, 200)}`)
  }

  push(g: number, conversationId: string, content: string): void {
    this.send(pushFrame(g, ++this.mid, conversationId, content))
  }

  private ackedCursor = 0
  ackCursor(): void {
    if (this.cursor <= this.ackedCursor) return
    this.ackedCursor = this.cursor
    this.send(encodeMsgpack({ t: 'ack', cursor: this.cursor }))
  }

  send(bytes: Uint8Array): void {
    if (!this.closed) this.ws.send(bytes)
  }

  /** Bytes handed to ws but not yet written to the kernel (the generator's own backlog). */
  get buffered(): number {
    return this.ws.bufferedAmount
  }

  async close(timeoutMs = 2000): Promise<void> {
    if (this.closed) return
    const done = new Promise<void>((r) => this.ws.once('close', () => r()))
    this.ws.close(1000)
    const timer = setTimeout(() => this.ws.terminate(), timeoutMs)
    await done
    clearTimeout(timer)
  }
}

function crossCheck(s: Scanned, f: Frame): void {
  scanStats.checked++
  const items = (f.items as Array<{ collection: string; id: string }> | undefined) ?? []
  const messages = items.filter((i) => i.collection === 'messages').map((i) => parseInt(i.id.slice(-12), 16))
  const same =
    s.t === f.t &&
    (f.t === 'ack'
      ? s.ref === f.ref && s.ok === (f.results as Array<{ ok: boolean }>)[0]?.ok
      : s.from === f.from && s.to === f.to && s.otherItems === items.length - messages.length && messages.every((g, i) => g === s.pushNumbers[i]))
  if (!same) scanStats.mismatches++
}
