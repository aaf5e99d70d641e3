/** A put of a chat message. */
export const messagePut = (mid: number, id: string, conversation = 'c1', content = 'hello') => ({
  op: 'put' as const,
  mid,
  collection: 'messages',
  id,
  data: { conversation_id: conversation, role: 'user', content },
})
