import { mkdirSync } from 'node:fs'
import { PGlite, types } from '@electric-sql/pglite'
import type { SqlClient, SqlQueryable } from './sql-client.ts'

/**
 * The embedded default: Postgres compiled to WebAssembly, in-process, one connection. Its
 * transactions are serialised by PGlite itself; group commit still batches pushes into one.
 * `dataDir` undefined or `memory://` keeps everything in memory (tests).
 */
export async function createPgliteClient(dataDir?: string, opts: { template?: Blob } = {}): Promise<PgliteSqlClient> {
  if (dataDir && !dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true })
  // A template (a dumped data directory) skips initdb, which takes seconds in WebAssembly.
  const db = await PGlite.create(dataDir, { parsers: { [types.INT8]: (v: string) => Number(v) }, loadDataDir: opts.template })
  const wrap = (q: Pick<PGlite, 'query' | 'exec'>): SqlQueryable => ({
    exec: async (script) => void (await q.exec(script)),
    query: async (text, params) => {
      const res = await q.query(text, params as unknown[] | undefined)
      return { rows: res.rows as never[] }
    },
  })
  const top = wrap(db)
  // One process owns the directory; the lock only has to serialise callers inside it.
  let lockChain: Promise<unknown> = Promise.resolve()
  const client: PgliteSqlClient = {
    kind: 'pglite',
    ...top,
    transaction: (fn) => db.transaction((tx) => fn(wrap(tx))),
    withAdvisoryLock: (_key, fn) => {
      const run = lockChain.then(() => fn(top))
      lockChain = run.catch(() => {})
      return run
    },
    reserved: () => ({ ...client, close: async () => {} }),
    close: () => db.close(),
    dump: () => db.dumpDataDir('none'),
  }
  return client
}

export interface PgliteSqlClient extends SqlClient {
  /** The whole data directory as a tarball, loadable as a template. */
  dump(): Promise<Blob>
}
