import { pino, type DestinationStream, type Logger } from 'pino'

/**
 * Paths that may hold secrets anywhere in a log object. Tokens, passwords and provider keys
 * never reach a log line, whatever a caller passes.
 */
const REDACT = [
  'token',
  'password',
  'key',
  'secret',
  'access_token',
  'refresh_token',
  'authorization',
  '*.token',
  '*.password',
  '*.key',
  '*.secret',
  '*.access_token',
  '*.refresh_token',
  '*.authorization',
  'req.headers.authorization',
  'headers.authorization',
]

/** JSON logs on stdout (pino), the shape log collectors expect; `destination` elsewhere (tests capture lines). */
export function createLogger(level = 'info', destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'synchub' },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  }
  return destination ? pino(options, destination) : pino(options)
}
