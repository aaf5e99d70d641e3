import { decodeFrame, encodeFrame, type Encoding } from '../../protocol/codec.ts'
import { HubFrame } from '../../protocol/frames.ts'
import type { SocketEvents, SocketLink, SocketPort } from './transport.ts'

/** The part of the WHATWG WebSocket the adapter uses: the browser's and `ws`'s both have it. */
export interface WebSocketLike {
  binaryType: string
  readonly readyState: number
  send(data: Uint8Array | string): void
  close(code?: number, reason?: string): void
  onopen: ((ev: unknown) => void) | null
  onmessage: ((ev: { data: unknown }) => void) | null
  onclose: ((ev: { code: number; reason: string }) => void) | null
  onerror: ((ev: unknown) => void) | null
}

export type WebSocketFactory = (url: string) => WebSocketLike

/** The platform's WebSocket (browsers, Deno, Node 22+). */
export const platformWebSocket: WebSocketFactory = (url) => {
  const Ctor = (globalThis as { WebSocket?: new (url: string) => WebSocketLike }).WebSocket
  if (!Ctor) throw new Error('this platform has no WebSocket: pass one (the Node entry, synchub/client, uses ws)')
  return new Ctor(url)
}

/**
 * Frames over a WebSocket in one encoding (MessagePack by default). Every hub frame is checked
 * against the protocol's schema; one that fails closes the socket as a broken stream (4000),
 * since acting on a frame we cannot read would break the cursor rule.
 */
export function webSocketPort(factory: WebSocketFactory, encoding: Encoding = 'msgpack'): SocketPort {
  return {
    connect(url: string, events: SocketEvents): SocketLink {
      let ws: WebSocketLike
      let done = false
      let refusedStatus: number | undefined
      const finish = (code: number, reason: string) => {
        if (done) return
        done = true
        events.close(code, reason, refusedStatus)
      }
      try {
        ws = factory(url)
      } catch (err) {
        queueMicrotask(() => finish(1006, (err as Error).message))
        return { send() {}, close() {} }
      }
      ws.binaryType = 'arraybuffer'
      ws.onopen = () => events.open()
      ws.onmessage = (ev) => {
        if (done) return
        let frame: HubFrame
        try {
          const data = ev.data
          const decoded =
            typeof data === 'string'
              ? decodeFrame(data, false, false)
              : decodeFrame(data instanceof ArrayBuffer ? new Uint8Array(data) : (data as Uint8Array), true, false)
          frame = HubFrame.parse(decoded)
        } catch (err) {
          ws.close(4000, 'unreadable frame')
          finish(4000, `unreadable frame from the hub: ${(err as Error).message}`)
          return
        }
        events.frame(frame)
      }
      ws.onclose = (ev) => finish(ev.code, ev.reason)
      ws.onerror = (ev) => {
        // ws reports a refused upgrade's status here; browsers say nothing but close 1006.
        const status = (ev as { message?: string }).message?.match(/Unexpected server response: (\d+)/)?.[1]
        if (status) refusedStatus = Number(status)
      }
      return {
        send(frame) {
          if (done || ws.readyState !== 1) return
          ws.send(encodeFrame(frame, encoding))
        },
        close(code = 1000, reason = '') {
          try {
            ws.close(code, reason)
          } catch {
            // CONNECTING sockets throw on some platforms with custom codes
            ws.close()
          }
          finish(code, reason || 'closed by the client')
        },
      }
    },
  }
}
