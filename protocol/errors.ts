/**
 * The error-code registry: one place that maps each stable code to the WebSocket close code
 * used when the error ends a socket, and to the HTTP status REST answers with.
 */
export const ERROR_REGISTRY = {
  bad_frame: { close: 1008, http: 400 },
  unauthorized: { close: 4401, http: 401 },
  forbidden: { close: 4403, http: 403 },
  invalid: { close: 1008, http: 400 },
  too_large: { close: 1009, http: 413 },
  rate_limited: { close: 4429, http: 429 },
  out_of_scope: { close: 4403, http: 403 },
  immutable: { close: 1008, http: 409 },
  not_found: { close: 1008, http: 404 },
  out_of_order: { close: 1008, http: 409 },
  unavailable: { close: 1013, http: 503 },
  internal: { close: 1011, http: 500 },
  // REST only: a method the path (or the hub) does not serve; the answer's Allow lists those it does.
  method_not_allowed: { close: 1008, http: 405 },
  // A new password that is too easy to guess (common, repetitive, or the username); the message names the rule.
  weak_password: { close: 1008, http: 400 },
  // Imports (POST /v1/import, synchub import): the file is refused whole and nothing changes.
  backup_invalid: { close: 1008, http: 400 },
  backup_version: { close: 1008, http: 422 },
  backup_truncated: { close: 1008, http: 400 },
  backup_unknown_collection: { close: 1008, http: 422 },
  backup_record_invalid: { close: 1008, http: 422 },
} as const satisfies Record<string, { close: number; http: number }>

export type ErrorCode = keyof typeof ERROR_REGISTRY
export const ERROR_CODES = Object.keys(ERROR_REGISTRY) as ErrorCode[]

/** Close codes the hub uses that are not tied to one error code. */
export const CLOSE = {
  normal: 1000,
  /** Service restart: a draining node; reconnect elsewhere with the cursor. */
  draining: 1012,
  /** Try again later: the socket fell too far behind (slow consumer) or the hub is overloaded. */
  tryAgain: 1013,
  /** Repeated bad frames. */
  policy: 1008,
  tokenExpired: 4401,
  revoked: 4403,
} as const

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_REGISTRY, code)
}

/** The one error class of the hub and its clients: a stable code plus a human message. */
export class HubError extends Error {
  readonly code: ErrorCode
  readonly details?: unknown
  constructor(code: ErrorCode, message: string, details?: unknown) {
    super(message)
    this.name = 'HubError'
    this.code = code
    this.details = details
  }
  get httpStatus(): number {
    return ERROR_REGISTRY[this.code].http
  }
  get closeCode(): number {
    return ERROR_REGISTRY[this.code].close
  }
}
