import t from 'tap'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DEFAULT_OUT_DIR, parseOptions, type Options } from '../options.ts'

const benchDir = fileURLToPath(new URL('..', import.meta.url))

t.test('reports go to bench/results unless --out names another directory', async (t) => {
  t.equal(DEFAULT_OUT_DIR, join(benchDir, 'results'), 'the default is bench/results, whatever the cwd')
  t.equal((parseOptions([]) as Options).outDir, DEFAULT_OUT_DIR)
  t.equal((parseOptions(['--out', '/tmp/bench-x']) as Options).outDir, '/tmp/bench-x', 'an absolute --out is kept')
})

t.test('a relative --out is taken from where npm was invoked, not from the workspace folder', async (t) => {
  const before = process.env.INIT_CWD
  t.teardown(() => {
    if (before === undefined) delete process.env.INIT_CWD
    else process.env.INIT_CWD = before
  })
  process.env.INIT_CWD = '/srv/checkout'
  t.equal((parseOptions(['--out', 'runs/today']) as Options).outDir, '/srv/checkout/runs/today')
  delete process.env.INIT_CWD
  t.equal((parseOptions(['--out', 'runs/today']) as Options).outDir, join(process.cwd(), 'runs/today'), 'without npm: the cwd')
})
