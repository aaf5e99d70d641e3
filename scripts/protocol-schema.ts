/**
 * Prints the wire schema that PROTOCOL_SCHEMA_SHA256 pins (protocol/wire-schema.ts), keys sorted,
 * and its hash on stderr. To see what a change did to the wire, run it on both commits and diff:
 *   node --import tsx scripts/protocol-schema.ts > after.json
 */
import { canonicalJson, wireSchema, wireSchemaHash } from '../protocol/wire-schema.ts'

const schema = wireSchema()
process.stdout.write(canonicalJson(schema, 2) + '\n')
process.stderr.write(`sha256 ${await wireSchemaHash(schema)}\n`)
