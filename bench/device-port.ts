import type { Scanned } from './frame-scan.ts'

export type Frame = Record<string, unknown> & { t: string }

/** What the devices speak: synchub's frames over ws, the same through the client SDK, or Socket.IO events (the peer). */
export type ClientKind = 'synchub' | 'sdk' | 'socketio'

/**
 * One device as the load generator drives it, whatever the protocol. Receipts are reported in
 * synchub's terms: `changes` (push numbers of the `messages` delivered) and `ack`.
 */
export interface BenchDevice {
  readonly user: number
  readonly index: number
  /** `to` of the last changes frame (the cursor rule: next `from` must equal it); 0 where there is no cursor. */
  cursor: number
  /** The hot path: deliveries and successful acks. */
  onScanned: (frame: Scanned, now: number) => void
  /** Everything else, decoded: refusals, errors, bye. */
  onFrame: (frame: Frame, now: number) => void
  onClose: (code: number) => void
  /** Creates the user's conversation the messages go to (device 0 only). */
  createConversation(id: string, title: string, timeoutMs: number): Promise<void>
  /** Sends push number g: one chat message, as ref g + 1. */
  push(g: number, conversationId: string, content: string): void
  /** Tells the server how far this device has applied (synchub's device `ack`), if that moved; apps do so every few seconds. */
  ackCursor(): void
  /** Bytes handed to the socket but not yet written to the kernel (the generator's own backlog). */
  readonly buffered: number
  close(): Promise<void>
}

export interface OpenDevice {
  url: string
  user: number
  index: number
  token: string
  timeoutMs: number
}

/** Connects one device and authenticates it; it receives its user's changes once this resolves. */
export async function openDevice(kind: ClientKind, o: OpenDevice): Promise<BenchDevice> {
  if (kind === 'socketio') return (await import('./device-socketio.ts')).SocketIoDevice.open(o)
  if (kind === 'sdk') return (await import('./device-sdk.ts')).SdkDevice.openSubscribed(o)
  return (await import('./device.ts')).DeviceSocket.openSubscribed(o)
}
