/**
 * synchub/client: the browser (and any platform with WebSocket and fetch) entry of the SDK.
 * Imports nothing from `node:`; the Node entry (node.ts) adds `ws` and the file storage.
 */
export { SyncClient, type SyncClientOptions, type Status, type ConnState, type ClientError, type ClientEvents, type ConnectionEvent } from './sync-client.ts'
export type { ChangeBatch, ChangeHandler, ResetHandler, ResetInfo, Via } from './inbox.ts'
export type { OpInput, Settled } from './outbox.ts'
export type { AuthOptions, TokenProvider, TokenReason } from './tokens.ts'
export { FatalAuthError } from './tokens.ts'
export { RestError } from './hub-api.ts'
export { LocalView, CollectionView, type ViewRecord, type DataOf, type ListFilter, type RecordEvent } from './local-view.ts'
export { MemoryStorage } from './storage/memory.ts'
export { IndexedDbStorage, type IndexedDbStorageOptions } from './storage/indexeddb.ts'
export type { StorageAdapter, Snapshot, WriteBatch, Meta, OutboxEntry, StoredRecord } from './storage/port.ts'
export type { SocketPort, SocketLink, SocketEvents, RestPort, RestRequest, RestAnswer } from './transport.ts'
export { webSocketPort, platformWebSocket, type WebSocketFactory, type WebSocketLike } from './socket-adapter.ts'
export { fetchRestPort, type FetchLike } from './rest-adapter.ts'
export type { Clock } from './clock.ts'
export { HubError, type ErrorCode } from '../../protocol/errors.ts'
export type { Change } from '../../protocol/records.ts'
export type { Op, Result, OkResult, FailResult } from '../../protocol/ops.ts'
export type { BuiltInData } from '../../protocol/collections.ts'
