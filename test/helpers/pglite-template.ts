import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { listMigrations, migrate } from '../../src/store/migrate.ts'
import { createPgliteClient, type PgliteSqlClient } from '../../src/store/pglite.ts'

/**
 * A migrated, empty PGlite data directory, loaded as a template by every embedded store a test
 * opens migrated: initdb in WebAssembly takes seconds, loading a copy a fraction of one. It is
 * kept on disk between test processes, named by a hash of the migrations and the PGlite version,
 * so a changed migration makes a new one and a stale one is never loaded.
 */
const made = new Map<string, Promise<Blob>>()

export function pgliteTemplate(): Promise<Blob> {
  const version = (JSON.parse(readFileSync(new URL('../../node_modules/@electric-sql/pglite/package.json', import.meta.url), 'utf8')) as { version: string }).version
  const key = createHash('sha256')
    .update(version)
    .update(JSON.stringify(listMigrations().map((m) => [m.name, m.sql])))
    .digest('hex')
    .slice(0, 16)
  let template = made.get(key)
  if (!template) made.set(key, (template = loadOrMake(key)))
  return template
}

async function loadOrMake(key: string): Promise<Blob> {
  const dir = join(tmpdir(), 'synchub-test-cache')
  const file = join(dir, `pglite-template-${key}.tar`)
  try {
    return new Blob([readFileSync(file)])
  } catch {}
  const db = await createPgliteClient()
  await migrate(db)
  const blob = await db.dump()
  await db.close()
  mkdirSync(dir, { recursive: true })
  // Written aside and renamed: a process reading it meanwhile sees the whole file or none.
  const partial = `${file}.${process.pid}.partial`
  writeFileSync(partial, new Uint8Array(await blob.arrayBuffer()))
  renameSync(partial, file)
  return blob
}

/** A migrated, empty embedded store, from the template. */
export async function migratedPglite(): Promise<PgliteSqlClient> {
  return createPgliteClient(undefined, { template: await pgliteTemplate() })
}
