import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const VECTORS_DIR = fileURLToPath(new URL('../../protocol/vectors/', import.meta.url))

export interface Vector {
  name: string
  side: 'client' | 'hub'
  /** The frame as committed in NAME.json. */
  frame: Record<string, any>
  /** The committed NAME.msgpack bytes (empty when the file is missing). */
  bytes: Uint8Array
}

/** Every committed vector, read straight from the files (not through the generator). */
export function loadVectors(): Vector[] {
  const files = readdirSync(VECTORS_DIR)
  return files
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const name = f.slice(0, -'.json'.length)
      const msgpack = `${name}.msgpack`
      return {
        name,
        side: name.startsWith('client-') ? 'client' : 'hub',
        frame: JSON.parse(readFileSync(VECTORS_DIR + f, 'utf8')),
        bytes: files.includes(msgpack) ? new Uint8Array(readFileSync(VECTORS_DIR + msgpack)) : new Uint8Array(0),
      }
    })
}

/** File names in the vectors folder, for checking that nothing is orphaned. */
export function vectorFiles(): string[] {
  return readdirSync(VECTORS_DIR)
}
