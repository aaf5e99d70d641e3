import { randomUUID } from 'node:crypto'
import type { Change } from '../../protocol/records.ts'
import type { ClearOp, FailResult, ForkOp, RegenOp, Result } from '../../protocol/ops.ts'
import type { RecordRow } from '../store/rows.ts'
import type { CollectionRule } from './collections.ts'
import type { UserPlan } from './push-planner.ts'
import { isRefusal, refuse } from './refusals.ts'

const CONVERSATIONS = 'conversations'
const MESSAGES = 'messages'

/** Both chat collections' rules, or the refusal (out of scope, unknown). */
function chatRules(plan: UserPlan): { conversations: CollectionRule; messages: CollectionRule } | FailResult {
  const conversations = plan.rule(CONVERSATIONS)
  if (isRefusal(conversations)) return conversations
  const messages = plan.rule(MESSAGES)
  if (isRefusal(messages)) return messages
  return { conversations, messages }
}

/** The conversation, live, or the refusal that says why not. */
function liveConversation(plan: UserPlan, id: string): RecordRow | FailResult {
  const row = plan.row(CONVERSATIONS, id)
  if (!row) return refuse('not_found', `conversation ${id} does not exist`)
  if (row.deleted_at !== null) return refuse('not_found', `conversation ${id} is in the recycle bin; restore it first`)
  return row
}

const liveMessages = (plan: UserPlan, conversation: string) => plan.children(MESSAGES, conversation).filter((m) => m.deleted_at === null)

/**
 * Regenerate the last reply, in one commit: the old assistant message goes to the recycle bin
 * with `replaced_by` naming the new one, and the new message is inserted.
 */
export function regen(plan: UserPlan, op: RegenOp, deviceId: string, changes: Change[]): Result {
  const rules = chatRules(plan)
  if (isRefusal(rules)) return rules
  const conversation = liveConversation(plan, op.conversation)
  if (isRefusal(conversation)) return conversation
  const newest = liveMessages(plan, op.conversation).at(-1)
  if (!newest || newest.id !== op.old) {
    return refuse('invalid', `regen: ${op.old} is not the newest message of conversation ${op.conversation}${newest ? ` (${newest.id} is)` : ' (it has none)'}`)
  }
  if (plan.dataOf(newest).role !== 'assistant') return refuse('invalid', `regen: ${op.old} is not an assistant reply`)
  const data = op.message.data
  if (data.conversation_id !== op.conversation) return refuse('invalid', `regen: the new message's conversation_id must be ${op.conversation}`)
  if (plan.row(MESSAGES, op.message.id)) return refuse('invalid', `regen: message ${op.message.id} already exists`)
  const bytes = plan.encodeData(rules.messages, data)
  if (isRefusal(bytes)) return bytes
  plan.trash(newest, deviceId, changes, { extra: { replaced_by: op.message.id } })
  const created = plan.create(plan.fresh(rules.messages, { id: op.message.id, bytes, data, deviceId }), data, changes)
  return { ok: true, seq: created.seq, id: created.id }
}

/**
 * Branch a conversation at a message, in one commit: a new conversation naming its parent and
 * fork point, holding copies of the source's live messages up to and including that message
 * (new ids, `forked_from` = the original's). The source is untouched.
 */
export function fork(plan: UserPlan, op: ForkOp, deviceId: string, changes: Change[]): Result {
  const rules = chatRules(plan)
  if (isRefusal(rules)) return rules
  const source = liveConversation(plan, op.from.conversation)
  if (isRefusal(source)) return source
  const at = plan.row(MESSAGES, op.from.message)
  if (!at || at.parent_id !== op.from.conversation) {
    return refuse('invalid', `fork: message ${op.from.message} does not belong to conversation ${op.from.conversation}`)
  }
  if (at.deleted_at !== null) return refuse('not_found', `fork: message ${op.from.message} is in the recycle bin`)
  if (plan.row(CONVERSATIONS, op.conversation.id)) return refuse('invalid', `fork: conversation ${op.conversation.id} already exists`)
  const data = { ...op.conversation.data, parent_conversation_id: op.from.conversation, fork_from_message_id: op.from.message }
  const bytes = plan.encodeData(rules.conversations, data)
  if (isRefusal(bytes)) return bytes
  const history = liveMessages(plan, op.from.conversation).filter((m) => m.created_seq <= at.created_seq)
  // Copies are checked before anything is written: a copy over the size limit refuses the fork.
  const copies: Array<{ data: Record<string, unknown>; bytes: Uint8Array }> = []
  for (const m of history) {
    const copy = { ...plan.dataOf(m), conversation_id: op.conversation.id, forked_from: m.id }
    const copyBytes = plan.encodeData(rules.messages, copy)
    if (isRefusal(copyBytes)) return copyBytes
    copies.push({ data: copy, bytes: copyBytes })
  }
  let last = plan.create(plan.fresh(rules.conversations, { id: op.conversation.id, bytes, data, deviceId }), data, changes)
  for (const c of copies) last = plan.create(plan.fresh(rules.messages, { id: randomUUID(), bytes: c.bytes, data: c.data, deviceId }), c.data, changes)
  return { ok: true, seq: last.seq, id: op.conversation.id }
}

/** Move every live message of a conversation to the recycle bin; the conversation stays. */
export function clear(plan: UserPlan, op: ClearOp, deviceId: string, changes: Change[]): Result {
  const rules = chatRules(plan)
  if (isRefusal(rules)) return rules
  const conversation = liveConversation(plan, op.conversation)
  if (isRefusal(conversation)) return conversation
  let seq = conversation.seq
  for (const m of liveMessages(plan, op.conversation)) seq = plan.trash(m, deviceId, changes).seq
  return { ok: true, seq, id: op.conversation }
}
