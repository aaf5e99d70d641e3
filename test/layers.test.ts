import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'

/**
 * The layers of the code, and what each may import (src/README.md, "Layers", says the same in
 * prose). Bottom to top: protocol ← store/bus/cluster ← sync ← transport/http ← hub/ops/cli.
 * A file may import from its own part and from the parts its rule lists; nothing else.
 */
const RULES = {
  // The wire contract and the clock port: they import nothing of ours.
  protocol: [],
  time: [],
  // Adapters of the ports below the use cases.
  crypto: ['protocol'],
  store: ['protocol'],
  bus: ['protocol'],
  cluster: ['protocol', 'time', 'bus'],
  // Accounts and tokens: a service the use cases and the edges call, below sync.
  auth: ['protocol', 'time', 'crypto', 'store', 'cluster'],
  // The use cases: sync, scope, devices, user admin, backups, browse.
  sync: ['protocol', 'time', 'crypto', 'store', 'bus', 'cluster', 'auth'],
  // The edges translate sockets and HTTP to use cases; they reach the store and the bus only through sync.
  transport: ['protocol', 'time', 'auth', 'sync'],
  http: ['protocol', 'time', 'auth', 'sync'],
  // The SDK speaks the wire contract only; nothing on the server imports it.
  client: ['protocol'],
  // Composition (hub.ts and its steps in hub/), operations (config, logger, metrics, drain, the
  // commands' work) and the command line: the top. Only the command line uses the SDK: its
  // `tail` and `push` are devices like any app's.
  ops: ['protocol', 'time', 'crypto', 'store', 'bus', 'cluster', 'auth', 'sync', 'transport', 'http'],
  hub: ['protocol', 'time', 'crypto', 'store', 'bus', 'cluster', 'auth', 'sync', 'transport', 'http', 'ops'],
  cli: ['protocol', 'time', 'crypto', 'store', 'bus', 'cluster', 'auth', 'sync', 'transport', 'http', 'ops', 'hub', 'client'],
} as const satisfies Record<string, readonly string[]>
type Part = keyof typeof RULES

/** Drivers stay in their adapters: only these parts may import these packages. */
const DRIVERS: Record<string, readonly Part[]> = {
  pg: ['store'],
  '@electric-sql/pglite': ['store'],
  ioredis: ['bus', 'cluster'],
  'uWebSockets.js': ['transport'],
  '@hono/node-server': ['transport'],
  ws: ['transport', 'client'],
}

/** Only the store and the top may hold a database connection; the rest go through the store's classes. */
const CONNECTION_MODULES = ['src/store/sql-client.ts', 'src/store/postgres.ts', 'src/store/pglite.ts', 'src/store/open.ts', 'src/store/migrate.ts']
const CONNECTION_HOLDERS: readonly Part[] = ['store', 'hub', 'ops', 'cli']

/**
 * Arrows the rules refuse that are still there, each with the change that removes it. The test
 * fails when one is gone, so the list only shrinks.
 */
const KNOWN_EXCEPTIONS: Array<{ from: string; to: string; todo: string }> = []

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

function partOf(file: string): Part | undefined {
  if (file.startsWith('protocol/')) return 'protocol'
  if (file === 'src/main.ts') return 'cli'
  if (file === 'src/hub.ts') return 'hub'
  const dir = /^src\/([^/]+)\//.exec(file)?.[1]
  return dir !== undefined && dir in RULES ? (dir as Part) : undefined
}

function sources(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)))
    .sort()
}

/** Source text without comments, so prose about SQL or imports does not count. */
const withoutComments = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '')

/** Every module a file imports or re-exports, static or dynamic, type-only included. */
function importsOf(text: string): string[] {
  const found: string[] = []
  for (const re of [/^\s*(?:import|export)\b[^'"]*?\bfrom\s*['"]([^'"]+)['"]/gm, /^\s*import\s*['"]([^'"]+)['"]/gm, /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g]) {
    for (const m of text.matchAll(re)) found.push(m[1]!)
  }
  return found
}

const files = [...sources('src'), ...sources('protocol')]
const texts = new Map(files.map((f) => [f, withoutComments(readFileSync(join(ROOT, f), 'utf8'))]))
const arrows = files.flatMap((from) =>
  importsOf(texts.get(from)!).map((spec) => ({
    from,
    spec,
    to: spec.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(from), spec)) : undefined,
  })),
)

t.test('every source file belongs to a part of the rule table', async (t) => {
  t.same(files.filter((f) => partOf(f) === undefined), [], 'no file outside the table')
  t.ok(arrows.length > 100, `the walk found the imports (${arrows.length} arrows in ${files.length} files)`)
})

t.test('no import against the layers', async (t) => {
  const refused = arrows.filter(({ from, to }) => {
    if (to === undefined) return false
    const a = partOf(from)!
    const b = partOf(to)
    if (b === undefined) return true // outside src/ and protocol/: no part may reach there
    return a !== b && !(RULES[a] as readonly Part[]).includes(b)
  })
  const unexplained = refused.filter((r) => !KNOWN_EXCEPTIONS.some((e) => e.from === r.from && e.to === r.to))
  t.same(unexplained.map((r) => `${r.from} → ${r.to} (${partOf(r.from)} may not import ${partOf(r.to!) ?? 'outside src/'})`), [])
  for (const e of KNOWN_EXCEPTIONS) {
    t.ok(refused.some((r) => r.from === e.from && r.to === e.to), `known exception still needed (remove it from the list once it is not): ${e.from} → ${e.to}; ${e.todo}`)
  }
})

t.test('drivers stay in their adapters', async (t) => {
  const misplaced = arrows.filter(({ from, spec }) => DRIVERS[spec] && !DRIVERS[spec]!.includes(partOf(from)!))
  t.same(misplaced.map((a) => `${a.from} imports ${a.spec}`), [])
})

t.test('only the store and the top hold a database connection', async (t) => {
  const holders = arrows.filter(({ from, to }) => to !== undefined && CONNECTION_MODULES.includes(to) && !CONNECTION_HOLDERS.includes(partOf(from)!))
  t.same(holders.map((a) => `${a.from} imports ${a.to}`), [])
})

t.test('every SQL statement lives in src/store', async (t) => {
  const statement = /\b(SELECT\s+[\w*(]|INSERT\s+INTO|UPDATE\s+\w+(\s+\w+)?\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX|SCHEMA)|ALTER\s+TABLE|FOR\s+UPDATE)\b/
  const outside = files.filter((f) => !f.startsWith('src/store/') && statement.test(texts.get(f)!))
  t.same(outside, [], 'no SQL text outside src/store')
  t.ok(statement.test(texts.get('src/store/sync-store.ts')!), 'the check recognises the store’s own statements')
})

t.test('no module-level mutable state in src', async (t) => {
  const problems: string[] = []
  for (const f of files.filter((f) => f.startsWith('src/'))) {
    texts.get(f)!.split('\n').forEach((line, i) => {
      const where = `${f}:${i + 1}: ${line.trim().slice(0, 80)}`
      // A top-level binding that can be reassigned.
      if (/^(export\s+)?(let|var)\s/.test(line)) problems.push(`${where} (top-level let/var)`)
      // A top-level collection that can be written: lookup tables are typed read-only.
      if (/^(export\s+)?const\s+\w+\s*=\s*new\s+(Map|Set|WeakMap|WeakSet)\b/.test(line)) problems.push(`${where} (top-level Map/Set not typed Readonly)`)
      // A top-level call changes something at import time (a library's global setting, a handler).
      if (/^[A-Za-z_$][\w$.]*\s*\(/.test(line) && !/^(export|import|function|class|const|type|interface|async)\b/.test(line)) problems.push(`${where} (top-level call)`)
    })
  }
  t.same(problems, [])
})
