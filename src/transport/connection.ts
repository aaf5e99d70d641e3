/**
 * One accepted WebSocket, whatever server accepted it. The session layer speaks only to this,
 * so the uWebSockets.js and ws adapters pass the same suite.
 */
export interface Connection {
  readonly remoteAddress: string
  /** Queues one frame: a Uint8Array goes as a binary frame, a string as a text frame. */
  send(data: Uint8Array | string): void
  /** Runs `fn`; the frames it sends on this socket leave in one write (fewer packets and wake-ups). */
  cork(fn: () => void): void
  /** Bytes queued but not yet written to the network (backpressure). */
  readonly bufferedAmount: number
  /** Closes with a code and short reason; a no-op once closed. */
  close(code: number, reason?: string): void
  readonly closed: boolean
}

/** What the session layer attaches to each connection. */
export interface SocketSession {
  /** One received frame. `data` is only valid during the call: copy what must outlive it. */
  message(data: Uint8Array, isBinary: boolean): void
  /** The send buffer drained below the server's threshold. */
  drain(): void
  /** The socket is gone (either side closed it); called exactly once. */
  closed(code: number): void
}

export interface SocketHandler {
  open(conn: Connection): SocketSession
}

export interface TransportOptions {
  host: string
  port: number
  /** Path of the WebSocket endpoint; other paths go to `fetch`. */
  wsPath: string
  /** Hard frame ceiling enforced by the server itself (frames over it close the socket, 1009). */
  maxPayloadBytes: number
  /** Seconds without any frame before the server closes the socket. */
  idleTimeoutSec: number
  fetch: (request: Request, info: { remoteAddress: string }) => Response | Promise<Response>
  sockets: SocketHandler
  /**
   * Whether a WebSocket upgrade carrying these headers may proceed (the browser origin check);
   * refused upgrades get 403 before any socket exists. Default: every upgrade.
   */
  upgradeAllowed?(origin: string | undefined, host: string | undefined): boolean
}

export interface TransportServer {
  readonly kind: 'uws' | 'ws'
  /** The port actually bound (useful with port 0). */
  readonly port: number
  /** Refuses new sockets and HTTP upgrades (drain); open sockets stay. */
  stopAccepting(): void
  /** Closes the listener and every socket. */
  close(): Promise<void>
}
