/**
 * Regenerates every NAME.msgpack from NAME.json with the hub's own codec:
 *   node --import tsx protocol/vectors/write.ts
 * A vector must be a valid frame exactly as written (`client-*` a ClientFrame, `hub-*` a
 * HubFrame, no field the schema would drop), so a broken vector never reaches the bytes.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import { fileURLToPath } from 'node:url'
import { encodeFrame } from '../codec.ts'
import { ClientFrame, HubFrame } from '../frames.ts'

const dir = fileURLToPath(new URL('.', import.meta.url))
const names = readdirSync(dir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => f.slice(0, -'.json'.length))
  .sort()

const problems: string[] = []
for (const name of names) {
  const schema = name.startsWith('client-') ? ClientFrame : name.startsWith('hub-') ? HubFrame : undefined
  if (!schema) {
    problems.push(`${name}: the name must start with client- or hub-`)
    continue
  }
  const frame = JSON.parse(readFileSync(`${dir}${name}.json`, 'utf8')) as object
  const parsed = schema.safeParse(frame)
  if (!parsed.success) problems.push(`${name}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`)
  else if (!isDeepStrictEqual(parsed.data, frame)) problems.push(`${name}: holds fields the schema does not know`)
  else writeFileSync(`${dir}${name}.msgpack`, encodeFrame(frame, 'msgpack'))
}
if (problems.length > 0) {
  console.error(problems.join('\n'))
  process.exit(1)
}
console.log(`wrote ${names.length} vectors to ${dir}`)
