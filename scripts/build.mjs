#!/usr/bin/env node
/**
 * npm run build: compiles protocol/ and src/ to JavaScript with type declarations (dist/), copies
 * the SQL migrations beside them, and bundles the browser client (dist/browser/). Plain
 * JavaScript, so building needs nothing but the dev dependencies.
 *   node scripts/build.mjs              build
 *   node scripts/build.mjs --if-stale   build only when a source is newer than the last build
 *                                       (tap runs this before the tests: hubs they spawn run dist/)
 */
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DIST = join(ROOT, 'dist')
const STAMP = join(DIST, '.built')
const SOURCES = ['protocol', 'src', 'migrations', 'tsconfig.json', 'tsconfig.build.json', 'package.json', 'scripts/build.mjs']

/** Newest modification time under the sources (ms). */
function newestSource() {
  let newest = 0
  const visit = (path) => {
    const st = statSync(path)
    if (st.isDirectory()) for (const name of readdirSync(path)) visit(join(path, name))
    else newest = Math.max(newest, st.mtimeMs)
  }
  for (const s of SOURCES) if (existsSync(join(ROOT, s))) visit(join(ROOT, s))
  return newest
}

async function build() {
  const started = Date.now()
  rmSync(DIST, { recursive: true, force: true })
  // TypeScript 7's compiler is a native binary: run it as itself, not through its node launcher,
  // so a test runner's hooks on spawned node processes (tap's, tsx) never reach it.
  const { default: compilerPath } = await import(new URL('../node_modules/typescript/lib/getExePath.js', import.meta.url).href)
  execFileSync(compilerPath(), ['-p', join(ROOT, 'tsconfig.build.json')], { stdio: 'inherit', cwd: ROOT })
  // src/store/migrate.ts finds them two levels above itself: dist/src/store → dist/migrations.
  cpSync(join(ROOT, 'migrations'), join(DIST, 'migrations'), { recursive: true })
  const { build: bundle } = await import('esbuild')
  mkdirSync(join(DIST, 'browser'), { recursive: true })
  await bundle({
    entryPoints: [join(ROOT, 'src/client/index.ts')],
    outfile: join(DIST, 'browser/synchub-client.js'),
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    sourcemap: true,
    minify: true,
    logLevel: 'warning',
  })
  writeFileSync(STAMP, new Date().toISOString() + '\n')
  console.error(`build: dist/ written in ${Date.now() - started} ms`)
}

const ifStale = process.argv.includes('--if-stale')
if (ifStale && existsSync(STAMP) && statSync(STAMP).mtimeMs >= newestSource()) process.exit(0)
try {
  await build()
} catch (err) {
  console.error(`build failed: ${err.message ?? err}`)
  process.exit(1)
}
