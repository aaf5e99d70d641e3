import type { z } from 'zod'
import { textProblem } from './codec.ts'
import { HubError } from './errors.ts'
import { CLIENT_FRAME_TYPES, ClientFrame } from './frames.ts'

/** First issue of a zod failure as one readable line: `ops.0.data: expected record`. */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0]
  if (!issue) return 'invalid'
  const path = issue.path.map(String).join('.')
  return path ? `${path}: ${issue.message}` : issue.message
}

/**
 * Parses with a schema or throws `invalid` naming the first problem. A decoded value whose text
 * is not well-formed (decodeInput) is refused before its schema is looked at.
 */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const badText = value !== null && typeof value === 'object' ? textProblem(value) : undefined
  if (badText !== undefined) throw new HubError('invalid', `${what}: ${badText}`)
  const result = schema.safeParse(value)
  if (!result.success) throw new HubError('invalid', `${what}: ${describeIssue(result.error)}`)
  return result.data
}

/** Validates a decoded map as a client frame: unknown `t` is `bad_frame`, bad fields `invalid`. */
export function parseClientFrame(value: Record<string, unknown>): ClientFrame {
  const t = value.t
  if (typeof t !== 'string' || !(CLIENT_FRAME_TYPES as readonly string[]).includes(t)) {
    throw new HubError('bad_frame', `unknown frame type ${JSON.stringify(t)?.slice(0, 40) ?? 'undefined'}`)
  }
  return parseOrThrow(ClientFrame, value, t)
}

/** The client's `ref`, when the frame carried a usable one, so errors can echo it. */
export function refOf(value: unknown): number | undefined {
  const ref = (value as { ref?: unknown } | null)?.ref
  return Number.isSafeInteger(ref) ? (ref as number) : undefined
}
