import { io, type Socket } from 'socket.io-client'
import { now as clockNow } from './clock.ts'
import type { BenchDevice, Frame, OpenDevice } from './device-port.ts'
import type { Scanned } from './frame-scan.ts'
import { pushNumberOf, pushOp } from './messages.ts'

/** What bench/socketio-server.ts emits to the user's room for each push. */
interface Changes {
  items: Array<{ collection: string; id: string }>
}

/**
 * One device on the Socket.IO peer (bench/socketio-server.ts): socket.io-client over WebSocket
 * only, the token in the handshake, a push as `emit('push', {ref, ops}, ack)` with the same op
 * synchub gets, deliveries as `changes` events. Receipts go to the generator in synchub's terms.
 */
export class SocketIoDevice implements BenchDevice {
  mid = 0
  /** The peer has no cursor: every `changes` is reported as from = to = 0, so no cursor gaps. */
  cursor = 0
  onScanned: (frame: Scanned, now: number) => void = () => {}
  onFrame: (frame: Frame, now: number) => void = () => {}
  onClose: (code: number) => void = () => {}

  private constructor(
    private readonly socket: Socket,
    readonly user: number,
    readonly index: number,
  ) {
    socket.on('changes', (msg: Changes) => {
      const now = clockNow()
      const pushNumbers: number[] = []
      let otherItems = 0
      for (const item of msg.items) {
        if (item.collection === 'messages') pushNumbers.push(pushNumberOf(item.id))
        else otherItems++
      }
      this.onScanned({ t: 'changes', ref: -1, from: this.cursor, to: this.cursor, ok: false, pushNumbers, otherItems }, now)
    })
    socket.on('disconnect', (reason) => {
      if (reason !== 'io client disconnect') this.onClose(1006)
    })
  }

  static open(o: OpenDevice): Promise<SocketIoDevice> {
    const socket = io(o.url, {
      transports: ['websocket'],
      auth: { token: o.token },
      // One connection per device (no multiplexing), and a drop counts as a closed socket rather than a silent reconnect.
      forceNew: true,
      reconnection: false,
      timeout: o.timeoutMs,
      // engine.io-client's documented `false` (its types only admit an object); the server refuses deflate anyway.
      perMessageDeflate: false as unknown as { threshold: number },
    })
    return new Promise((resolve, reject) => {
      // The server joins the user's room in its `connection` handler, before `connect` reaches us.
      socket.once('connect', () => resolve(new SocketIoDevice(socket, o.user, o.index)))
      socket.once('connect_error', (err) => {
        socket.close()
        reject(new Error(`socket.io connect: ${err.message}`))
      })
    })
  }

  /** The peer keeps no cursor, so there is nothing to acknowledge. */
  ackCursor(): void {}

  /** The peer stores nothing, so there is no conversation to create. */
  async createConversation(): Promise<void> {}

  push(g: number, conversationId: string, content: string): void {
    const ref = g + 1
    this.socket.emit('push', { ref, ops: [pushOp(g, ++this.mid, conversationId, content)] }, (res: { ok?: boolean; code?: string; message?: string } | undefined) => {
      const now = clockNow()
      if (res?.ok) this.onScanned({ t: 'ack', ref, from: -1, to: -1, ok: true, pushNumbers: [], otherItems: 0 }, now)
      else this.onFrame({ t: 'ack', ref, results: [{ ok: false, code: res?.code ?? 'refused', message: res?.message ?? '' }] }, now)
    })
  }

  get buffered(): number {
    // engine.io-client keeps its `ws` socket in a protected field; typed `any` there.
    const transport = this.socket.io.engine?.transport as unknown as { ws?: { bufferedAmount?: number } } | undefined
    return transport?.ws?.bufferedAmount ?? 0
  }

  async close(): Promise<void> {
    this.socket.close()
  }
}
