import type { ErrorCode } from '../../protocol/errors.ts'
import type { FailResult } from '../../protocol/ops.ts'

/** An op's refusal: it still uses up its mid, and a replay gets it again with `dup`. */
export const refuse = (code: ErrorCode, message: string): FailResult => ({ ok: false, code, message })
export const isRefusal = (x: unknown): x is FailResult => typeof x === 'object' && x !== null && (x as FailResult).ok === false
