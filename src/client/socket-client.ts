/**
 * The raw socket under its former name, kept for the test suites that speak the protocol frame
 * by frame. The SDK's SyncClient (reconnects, outbox, REST fallback) is in sync-client.ts.
 */
export { HubSocket as SyncClient, type ConnectOptions } from './hub-socket.ts'
