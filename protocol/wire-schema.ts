import { z } from 'zod'
import * as backup from './backup.ts'
import { CLOSE, ERROR_REGISTRY } from './errors.ts'
import { ClientFrame, HubFrame } from './frames.ts'
import * as rest from './rest.ts'

/**
 * The wire contract as data, pinned by its hash in version.ts (test/protocol/version.test.ts):
 * the JSON Schema (zod's `toJSONSchema`) of both frame unions, of every REST and backup body
 * exported by rest.ts and backup.ts, and the close code and HTTP status of every error code.
 * Schemas are taken as a reader accepts them (`io: 'input'`): that is what the other side sends.
 * Not exported from index.ts, so client bundles do not carry it.
 */
export function wireSchema(): Record<string, unknown> {
  return {
    client: jsonSchema(ClientFrame),
    hub: jsonSchema(HubFrame),
    rest: schemasOf(rest),
    backup: schemasOf(backup),
    errors: ERROR_REGISTRY,
    close: CLOSE,
  }
}

function jsonSchema(schema: z.ZodType): unknown {
  return z.toJSONSchema(schema, { io: 'input' })
}

/** Every zod schema a module exports, by export name. */
function schemasOf(module: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [name, value] of Object.entries(module)) if (value instanceof z.ZodType) out[name] = jsonSchema(value)
  return out
}

/** JSON with object keys sorted at every level, so the hash does not follow declaration order. */
export function canonicalJson(value: unknown, indent?: number): string {
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]))
        : v
  return JSON.stringify(sorted(value), null, indent)
}

/** SHA-256 (hex) of the canonical wire schema. Web Crypto, so protocol/ imports nothing from Node. */
export async function wireSchemaHash(schema: unknown = wireSchema()): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonicalJson(schema)))
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('')
}
