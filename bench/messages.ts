import { randomUUID } from 'node:crypto'
import { encodeMsgpack } from '../protocol/codec.ts'

/** Hex digits at the end of a message id that carry the push number (frame-scan.ts reads them). */
export const PUSH_DIGITS = 12

/** An id shaped like a UUID whose last group carries the push number, so receipt needs no map. */
export function messageId(g: number): string {
  return randomUUID().slice(0, 36 - PUSH_DIGITS) + g.toString(16).padStart(PUSH_DIGITS, '0')
}

export function pushNumberOf(id: string): number {
  return parseInt(id.slice(-PUSH_DIGITS), 16)
}

export function messageContent(chars: number): string {
  const base = 'Bench message: the quick brown fox jumps over the lazy dog while the hub keeps every device in sync. '
  return base.repeat(Math.ceil(chars / base.length)).slice(0, chars)
}

/** Chat message number g as an op: one `put` into `messages`. */
export function pushOp(g: number, mid: number, conversationId: string, content: string) {
  return { op: 'put', mid, collection: 'messages', id: messageId(g), data: { conversation_id: conversationId, role: 'user', content } }
}

/** The push of chat message number g, as a synchub frame. */
export function pushFrame(g: number, mid: number, conversationId: string, content: string): Uint8Array {
  return encodeMsgpack({ t: 'push', ref: g + 1, ops: [pushOp(g, mid, conversationId, content)] })
}

/** Bytes of one push frame and of its record `data`, as sent. */
export function messageSizes(contentChars: number): { pushFrameBytes: number; dataBytes: number } {
  const content = messageContent(contentChars)
  const conversation = randomUUID()
  return {
    pushFrameBytes: pushFrame(1, 1, conversation, content).byteLength,
    dataBytes: encodeMsgpack({ conversation_id: conversation, role: 'user', content }).byteLength,
  }
}
