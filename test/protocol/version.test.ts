// The wire contract cannot change unnoticed: its schema's hash is pinned beside PROTOCOL_VERSION,
// which the hub reports in auth_ok, the golden vectors show and PROTOCOL.md names.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { AuthOkFrame } from '../../protocol/frames.ts'
import { PROTOCOL_SCHEMA_SHA256, PROTOCOL_VERSION } from '../../protocol/version.ts'
import { canonicalJson, wireSchema, wireSchemaHash } from '../../protocol/wire-schema.ts'
import { loadVectors } from './vectors.ts'

t.test('the wire schema is the one pinned for this protocol version', async (t) => {
  const actual = await wireSchemaHash()
  t.equal(
    actual,
    PROTOCOL_SCHEMA_SHA256,
    [
      'The wire schema changed (protocol/wire-schema.ts: frames, REST and backup bodies, error registry).',
      `It now hashes to ${actual}. See what changed: \`node --import tsx scripts/protocol-schema.ts\` on this commit and on the one before, then diff.`,
      `- Only ADDED (a new optional field, frame type, body or error code; nothing a v${PROTOCOL_VERSION} client reads changed):`,
      '  keep PROTOCOL_VERSION, set PROTOCOL_SCHEMA_SHA256 in protocol/version.ts to the hash above, and document the addition in protocol/PROTOCOL.md.',
      `- RENAMED, REMOVED, NARROWED or CHANGED THE MEANING of anything: v${PROTOCOL_VERSION} clients break (PROTOCOL.md, "Versioning");`,
      '  a new version means bumping PROTOCOL_VERSION, pinning the hash above, and saying so in PROTOCOL.md and CHANGELOG.md.',
      '- Only zod was upgraded and its JSON Schema output moved (the diff shows no wire change): re-pin, version unchanged.',
    ].join('\n'),
  )
})

t.test('the hash follows the schema, not the order it was declared in', async (t) => {
  const schema = wireSchema() as { client: { oneOf: Array<{ properties: Record<string, unknown>; required: string[] }> } }
  const reordered = JSON.parse(canonicalJson(schema)) as typeof schema
  const auth = reordered.client.oneOf[0]!
  auth.properties = Object.fromEntries(Object.entries(auth.properties).reverse())
  t.equal(await wireSchemaHash(reordered), PROTOCOL_SCHEMA_SHA256, 'the same fields in another order: the same hash')

  const renamed = JSON.parse(canonicalJson(schema)) as typeof schema
  const frame = renamed.client.oneOf[0]!
  frame.properties.access_token = frame.properties.token
  delete frame.properties.token
  t.not(await wireSchemaHash(renamed), PROTOCOL_SCHEMA_SHA256, 'a renamed field: another hash')

  const added = JSON.parse(canonicalJson(schema)) as typeof schema
  added.client.oneOf[0]!.properties.locale = { type: 'string' }
  t.not(await wireSchemaHash(added), PROTOCOL_SCHEMA_SHA256, 'an added optional field: another hash too (re-pinned, not bumped)')
})

t.test('auth_ok reports the version; clients read it as optional', async (t) => {
  for (const v of loadVectors().filter((v) => v.frame.t === 'auth_ok')) {
    t.equal(v.frame.protocol, PROTOCOL_VERSION, `${v.name} shows protocol ${PROTOCOL_VERSION}`)
  }
  const { protocol: _, ...fromOlderHub } = loadVectors().find((v) => v.name === 'hub-auth-ok')!.frame
  t.ok(AuthOkFrame.safeParse(fromOlderHub).success, 'an auth_ok without `protocol` (a hub before it was added) still parses')
  t.notOk(AuthOkFrame.safeParse({ ...fromOlderHub, protocol: 0 }).success, 'versions start at 1')
})

t.test('PROTOCOL.md names the version the code has', async (t) => {
  const doc = readFileSync(new URL('../../protocol/PROTOCOL.md', import.meta.url), 'utf8')
  t.match(doc.split('\n')[0], `protocol v${PROTOCOL_VERSION}`, 'the title')
  t.match(doc, `protocol version ${PROTOCOL_VERSION}`, 'the versioning paragraph')
  t.match(doc, /`protocol`/, 'auth_ok.protocol is documented')
})
