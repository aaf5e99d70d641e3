import type { ErrorCode } from '../../protocol/errors.ts'
import type { ByeFrame, ErrorFrame } from '../../protocol/frames.ts'

/** Why a socket ended, as the client saw it. */
export interface SocketEnd {
  code: number
  reason: string
  /** The `bye` the hub sent before closing, if any. */
  bye?: ByeFrame
  /** The last `error` frame before the close, if any (auth and refresh refusals). */
  error?: ErrorFrame
  /** HTTP status of a refused upgrade, when the platform tells. */
  refusedStatus?: number
  /** The socket had been authenticated (auth_ok). */
  authenticated: boolean
  /** How long it had been live (synced), or undefined if it never was. */
  liveMs: number | undefined
  /** The token it authenticated with was fetched fresh after a 4401. */
  freshToken: boolean
}

export type CloseDecision =
  /** Do not reconnect: the account or device is refused (4403, revoked). */
  | { action: 'stop'; code: ErrorCode; message: string }
  | {
      action: 'reconnect'
      /** Exact delay (ms), or undefined: the reconnect backoff decides. */
      delayMs?: number
      /** Get a new token first. */
      freshToken: boolean
      /** Counts toward the switch to REST polling (the socket path itself looks broken). */
      failure: boolean
      /** Try the next hub URL. */
      rotate: boolean
      /** At least this long (ms) before trying again. */
      floorMs?: number
    }

/**
 * PROTOCOL.md's close codes and `bye` reasons, and what the client does after each: the table
 * of src/client/CLIENT.md ("After a socket ends"), one row per branch here.
 */
export function afterSocketEnd(end: SocketEnd, opts: { stableMs: number; random: () => number }): CloseDecision {
  const { code, bye, error } = end
  // Revoked device or disabled user: signing in again is the user's business.
  if (code === 4403 || bye?.reason === 'revoked' || error?.code === 'forbidden') {
    return { action: 'stop', code: 'forbidden', message: bye?.reason === 'revoked' ? 'the device was revoked or the user disabled' : `refused: ${error?.message ?? end.reason}` }
  }
  // Token refused or expired: one fresh token at once; after that, back off (still fetching fresh ones).
  if (code === 4401 || bye?.reason === 'token_expired' || error?.code === 'unauthorized') {
    return end.freshToken ? { action: 'reconnect', freshToken: true, failure: false, rotate: false } : { action: 'reconnect', delayMs: 0, freshToken: true, failure: false, rotate: false }
  }
  // A node draining: another node, after retry_ms if given, else at once with a small random delay.
  if (code === 1012 || bye?.reason === 'draining') {
    const delayMs = bye?.retry_ms !== undefined ? bye.retry_ms : Math.floor(opts.random() * 500)
    return { action: 'reconnect', delayMs, freshToken: false, failure: false, rotate: true }
  }
  // Slow consumer, or the hub's database is down: the path works; wait longer, then resume.
  if (code === 1013 || code === 4429) return { action: 'reconnect', freshToken: false, failure: false, rotate: code === 1013, floorMs: 1000 }
  // Everything else (1006 dropped, 1011, a refused upgrade, a handshake timeout, a stream we could
  // not read): the socket path is suspect when it never got live, or died soon after.
  const failure = end.liveMs === undefined || end.liveMs < opts.stableMs
  return { action: 'reconnect', freshToken: false, failure, rotate: failure }
}
