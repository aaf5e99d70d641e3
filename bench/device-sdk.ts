import { randomUUID } from 'node:crypto'
import { MemoryStorage, SyncClient } from '../src/client/node.ts'
import { now as clockNow } from './clock.ts'
import type { BenchDevice, Frame, OpenDevice } from './device-port.ts'
import type { Scanned } from './frame-scan.ts'
import { messageId, pushNumberOf } from './messages.ts'

/**
 * One device driven through the client SDK (SyncClient, memory storage) instead of a raw
 * socket: pushes go through its outbox (mids, persistence, one batch in flight), deliveries
 * through its inbox and change handler. Timestamps are taken where the app would see them: when
 * the handler is called, when push() resolves. Set beside the raw `hub` scenario at the same
 * rates, the difference is the SDK's cost.
 */
export class SdkDevice implements BenchDevice {
  cursor = 0
  onScanned: (frame: Scanned, now: number) => void = () => {}
  onFrame: (frame: Frame, now: number) => void = () => {}
  onClose: (code: number) => void = () => {}
  readonly buffered = 0
  private readonly client: SyncClient

  private constructor(
    o: OpenDevice,
    readonly user: number,
    readonly index: number,
  ) {
    this.client = new SyncClient({
      url: o.url.replace(/^ws/, 'http').replace(/\/v1\/ws$/, ''),
      auth: { getToken: async () => o.token },
      device: { id: randomUUID(), name: `bench sdk ${o.index}`, platform: 'bench' },
      storage: new MemoryStorage(),
      handshakeTimeoutMs: o.timeoutMs,
      onChanges: (batch) => {
        if (batch.kind !== 'changes') return
        const at = clockNow()
        const pushNumbers: number[] = []
        let otherItems = 0
        for (const c of batch.changes) {
          if (c.collection === 'messages') pushNumbers.push(pushNumberOf(c.id))
          else otherItems++
        }
        this.onScanned({ t: 'changes', ref: -1, from: batch.from, to: batch.to, ok: false, pushNumbers, otherItems }, at)
      },
    })
    this.client.on('connection', (e) => e.event === 'close' && this.onClose(e.code))
  }

  static async openSubscribed(o: OpenDevice): Promise<SdkDevice> {
    const dev = new SdkDevice(o, o.user, o.index)
    await dev.client.start()
    await Promise.race([
      dev.client.whenSynced(),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`sdk device ${o.user}/${o.index}: not synced within ${o.timeoutMs} ms`)), o.timeoutMs)),
    ]).catch(async (err) => {
      await dev.client.stop()
      throw err
    })
    return dev
  }

  async createConversation(id: string, title: string): Promise<void> {
    await this.client.push({ op: 'put', collection: 'conversations', id, data: { title } })
  }

  push(g: number, conversationId: string, content: string): void {
    const ref = g + 1
    this.client.push({ op: 'put', collection: 'messages', id: messageId(g), data: { conversation_id: conversationId, role: 'user', content } }).then(
      () => this.onScanned({ t: 'ack', ref, from: -1, to: -1, ok: true, pushNumbers: [], otherItems: 0 }, clockNow()),
      (err: { code?: string; message?: string }) => this.onFrame({ t: 'ack', ref, results: [{ ok: false, code: err.code ?? 'refused', message: err.message ?? '' }] }, clockNow()),
    )
  }

  /** The SDK sends device acks itself, after its cursor is written. */
  ackCursor(): void {}

  async close(): Promise<void> {
    await this.client.stop()
  }
}
