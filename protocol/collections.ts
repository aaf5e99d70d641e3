import { z } from 'zod'
import { Id } from './records.ts'

/**
 * The built-in collections as PROTOCOL.md "Collections" states them: each one's sync-scope key,
 * kind and minimum `data`. The hub's registry (src/sync/collections.ts) is built from these, and
 * the client SDK derives its record types from the same schemas, so the two cannot drift.
 */
export type CollectionKind = 'mutable' | 'append_only'

// Minimum shapes: unknown fields are kept (loose objects).
const anyValue = z.looseObject({ value: z.unknown().refine((v) => v !== undefined, 'value is required') })

export const ConversationData = z.looseObject({
  title: z.string(),
  /** Set by the hub on a fork. */
  parent_conversation_id: z.string().optional(),
  fork_from_message_id: z.string().optional(),
})
export const MessageData = z.looseObject({
  conversation_id: Id,
  role: z.enum(['user', 'assistant', 'system', 'tool']),
  content: z.string(),
  status: z.enum(['sending', 'sent', 'failed', 'delivered']).optional(),
  delivered_at: z.int().nonnegative().optional(),
})
export const CharacterData = z.looseObject({
  name: z.string(),
  avatar_url: z.string().optional(),
  system_prompt: z.string().optional(),
  personality: z.string().optional(),
})
export const ValueData = anyValue
export const ProviderData = z.looseObject({
  name: z.string(),
  base_url: z.string().optional(),
  models: z.array(z.unknown()).optional(),
  enabled: z.boolean().optional(),
})
export const ProviderKeyData = z.looseObject({ provider: z.string().min(1), key: z.string() })

/** A collection's rules (the hub's registry holds these for built-in and declared collections). */
export interface BuiltInCollection {
  name: string
  scope: string
  kind: CollectionKind
  /** Minimum shape of `data`; unknown fields are kept. */
  schema: z.ZodType<Record<string, unknown>>
  /** append_only: the only fields a later put may change. */
  statusFields?: readonly string[]
  /** The data field that names the parent record (messages → their conversation). */
  parentField?: string
  /** The collection of that parent: deleting, restoring or clearing it takes these records along. */
  parentCollection?: string
  /** Data fields encrypted at rest: stored sealed, delivered only to the owner's devices. */
  secretFields?: readonly string[]
}

const schema = (s: z.ZodType) => s as unknown as z.ZodType<Record<string, unknown>>

export const BUILT_IN_COLLECTION_SPECS: readonly BuiltInCollection[] = [
  // The fork fields are the hub's to set; only `title` is checked on a put.
  { name: 'conversations', scope: 'chat.history', kind: 'mutable', schema: schema(z.looseObject({ title: z.string() })) },
  {
    name: 'messages',
    scope: 'chat.history',
    kind: 'append_only',
    statusFields: ['status', 'delivered_at'],
    parentField: 'conversation_id',
    parentCollection: 'conversations',
    schema: schema(MessageData),
  },
  { name: 'characters', scope: 'characters.cards', kind: 'mutable', schema: schema(CharacterData) },
  { name: 'character_settings', scope: 'characters.per_settings', kind: 'mutable', schema: schema(ValueData) },
  { name: 'providers', scope: 'providers.config', kind: 'mutable', schema: schema(ProviderData) },
  { name: 'provider_keys', scope: 'providers.keys', kind: 'mutable', secretFields: ['key'], schema: schema(ProviderKeyData) },
  { name: 'text_inputs', scope: 'user.text_inputs', kind: 'mutable', schema: schema(ValueData) },
  { name: 'settings', scope: 'user.settings', kind: 'mutable', schema: schema(ValueData) },
]

/** Each built-in collection's `data`, as a client reads and writes it. */
export interface BuiltInData {
  conversations: z.infer<typeof ConversationData>
  messages: z.infer<typeof MessageData>
  characters: z.infer<typeof CharacterData>
  character_settings: z.infer<typeof ValueData>
  providers: z.infer<typeof ProviderData>
  provider_keys: z.infer<typeof ProviderKeyData>
  text_inputs: z.infer<typeof ValueData>
  settings: z.infer<typeof ValueData>
}

/** The built-in collections of each scope key. */
export function builtInCollectionsOf(scopeKeys: readonly string[]): string[] {
  const keys = new Set(scopeKeys)
  return BUILT_IN_COLLECTION_SPECS.filter((c) => keys.has(c.scope)).map((c) => c.name)
}
