import { z } from 'zod'
import { CollectionName, Id, RecordData, Seq } from './records.ts'
import { ERROR_CODES } from './errors.ts'

/** The device's mutation number: starts at 1, grows by exactly 1 per op across sockets and REST. */
export const Mid = z.int().positive()

export const PutOp = z.object({
  op: z.literal('put'),
  mid: Mid,
  collection: CollectionName,
  id: Id,
  data: RecordData,
  base: Seq.optional(),
})
export const DelOp = z.object({ op: z.literal('del'), mid: Mid, collection: CollectionName, id: Id })
export const RestoreOp = z.object({ op: z.literal('restore'), mid: Mid, collection: CollectionName, id: Id })
export const RegenOp = z.object({
  op: z.literal('regen'),
  mid: Mid,
  conversation: Id,
  old: Id,
  message: z.object({ id: Id, data: RecordData }),
})
export const ForkOp = z.object({
  op: z.literal('fork'),
  mid: Mid,
  from: z.object({ conversation: Id, message: Id }),
  conversation: z.object({ id: Id, data: RecordData }),
})
export const ClearOp = z.object({ op: z.literal('clear'), mid: Mid, conversation: Id })

export const Op = z.discriminatedUnion('op', [PutOp, DelOp, RestoreOp, RegenOp, ForkOp, ClearOp])
export type Op = z.infer<typeof Op>
export type PutOp = z.infer<typeof PutOp>
export type DelOp = z.infer<typeof DelOp>
export type RestoreOp = z.infer<typeof RestoreOp>
export type RegenOp = z.infer<typeof RegenOp>
export type ForkOp = z.infer<typeof ForkOp>
export type ClearOp = z.infer<typeof ClearOp>

export const OkResult = z.object({
  ok: z.literal(true),
  seq: Seq.optional(),
  id: Id.optional(),
  copy: Id.optional(),
  dup: z.literal(true).optional(),
})
export const FailResult = z.object({
  ok: z.literal(false),
  code: z.enum(ERROR_CODES),
  message: z.string(),
  dup: z.literal(true).optional(),
})
export const Result = z.union([OkResult, FailResult])
export type OkResult = z.infer<typeof OkResult>
export type FailResult = z.infer<typeof FailResult>
export type Result = z.infer<typeof Result>
