import { z } from 'zod'
import { Change, CollectionName, Id, Millis, Seq } from './records.ts'
import { Op, Result } from './ops.ts'
import { ERROR_CODES } from './errors.ts'
import { storedText } from './text-rules.ts'

/** An integer the client picks; the hub's reply echoes it. */
export const Ref = z.int()
export const Epoch = z.string()

// ---- client → hub ----------------------------------------------------------------------------

export const Device = z.object({
  id: Id,
  name: storedText(z.string().max(200)).optional(),
  platform: storedText(z.string().max(100)).optional(),
})

export const AuthFrame = z.object({ t: z.literal('auth'), ref: Ref, token: z.string().min(1).max(8192), device: Device })
export const RefreshFrame = z.object({ t: z.literal('refresh'), ref: Ref, token: z.string().min(1).max(8192) })
export const PingFrame = z.object({ t: z.literal('ping'), ref: Ref })
export const SubFrame = z.object({
  t: z.literal('sub'),
  ref: Ref,
  since: Seq,
  epoch: Epoch.optional(),
  collections: z.array(CollectionName).max(100).optional(),
})
export const PushFrame = z.object({ t: z.literal('push'), ref: Ref, ops: z.array(Op).min(1) })
export const AckFrame = z.object({ t: z.literal('ack'), cursor: Seq })

export const ClientFrame = z.discriminatedUnion('t', [AuthFrame, RefreshFrame, PingFrame, SubFrame, PushFrame, AckFrame])
export type ClientFrame = z.infer<typeof ClientFrame>
export type AuthFrame = z.infer<typeof AuthFrame>
export type SubFrame = z.infer<typeof SubFrame>
export type PushFrame = z.infer<typeof PushFrame>
export const CLIENT_FRAME_TYPES = ['auth', 'refresh', 'ping', 'sub', 'push', 'ack'] as const

// ---- hub → client ----------------------------------------------------------------------------

export const AuthOkFrame = z.object({
  t: z.literal('auth_ok'),
  ref: Ref,
  user_id: Id,
  device_id: Id,
  cursor: Seq,
  epoch: Epoch,
  expires_at: Millis,
  server_time: Millis,
  node: z.string(),
  /** The hub's PROTOCOL_VERSION (protocol/version.ts). Added within v1: a hub that omits it speaks 1. */
  protocol: z.int().positive().optional(),
})
export const PongFrame = z.object({ t: z.literal('pong'), ref: Ref, server_time: Millis, cursor: Seq })
export const ChangesFrame = z.object({
  t: z.literal('changes'),
  from: Seq,
  to: Seq,
  items: z.array(Change),
  more: z.literal(true).optional(),
})
export const SyncedFrame = z.object({ t: z.literal('synced'), ref: Ref, cursor: Seq })
export const PushAckFrame = z.object({ t: z.literal('ack'), ref: Ref, cursor: Seq, results: z.array(Result) })
export const ResetReason = z.enum(['cursor_purged', 'epoch_changed', 'cursor_ahead'])
export const ResetFrame = z.object({ t: z.literal('reset'), ref: Ref.optional(), reason: ResetReason, epoch: Epoch.optional() })
export const ErrorFrame = z.object({ t: z.literal('error'), ref: Ref.optional(), code: z.enum(ERROR_CODES), message: z.string() })
export const ByeReason = z.enum(['draining', 'token_expired', 'revoked', 'slow_consumer'])
export const ByeFrame = z.object({ t: z.literal('bye'), reason: ByeReason, retry_ms: z.int().nonnegative().optional() })

/** The user's sync scope changed: the socket's stream now covers `scope`; `added`/`removed` are collections. */
export const ScopeFrame = z.object({
  t: z.literal('scope'),
  scope: z.array(z.string()),
  added: z.array(CollectionName),
  removed: z.array(CollectionName),
})
/**
 * After a widening `scope`: the records of the added collections the client has not been sent
 * (all with seq ≤ its cursor), in pages; the last page has no `more`. Live `changes` wait until then.
 */
export const BackfillFrame = z.object({
  t: z.literal('backfill'),
  collections: z.array(CollectionName),
  items: z.array(Change),
  more: z.literal(true).optional(),
})

export const HubFrame = z.discriminatedUnion('t', [
  AuthOkFrame,
  PongFrame,
  ChangesFrame,
  SyncedFrame,
  PushAckFrame,
  ResetFrame,
  ErrorFrame,
  ByeFrame,
  ScopeFrame,
  BackfillFrame,
])
export type HubFrame = z.infer<typeof HubFrame>
export type AuthOkFrame = z.infer<typeof AuthOkFrame>
export type ChangesFrame = z.infer<typeof ChangesFrame>
export type PushAckFrame = z.infer<typeof PushAckFrame>
export type ResetFrame = z.infer<typeof ResetFrame>
export type ErrorFrame = z.infer<typeof ErrorFrame>
export type ByeFrame = z.infer<typeof ByeFrame>
export type ScopeFrame = z.infer<typeof ScopeFrame>
export type BackfillFrame = z.infer<typeof BackfillFrame>
export type ResetReason = z.infer<typeof ResetReason>
export type ByeReason = z.infer<typeof ByeReason>
