/**
 * synchub/client in Node: the same SDK, with `ws` for the socket (Node 20 has fetch but no
 * WebSocket) and a file-directory storage.
 */
import WebSocket from 'ws'
import { DEFAULT_LIMITS } from '../../protocol/limits.ts'
import { SyncClient as BaseClient, type SyncClientOptions } from './sync-client.ts'
import type { WebSocketFactory, WebSocketLike } from './socket-adapter.ts'

export * from './index.ts'
export { FileStorage, type FileStorageOptions } from './storage/file.ts'

/** `ws` behind the WHATWG interface the socket adapter uses. */
export const nodeWebSocket: WebSocketFactory = (url) =>
  new WebSocket(url, { perMessageDeflate: false, maxPayload: 64 * DEFAULT_LIMITS.maxFrameBytes }) as unknown as WebSocketLike

export class SyncClient extends BaseClient {
  constructor(opts: SyncClientOptions) {
    super({ ...opts, webSocket: opts.webSocket ?? nodeWebSocket })
  }
}
