export { SyncClient, type ConnectOptions } from './socket-client.ts'
export { RestClient } from './rest-client.ts'
