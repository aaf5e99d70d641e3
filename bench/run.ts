/**
 * npm run bench -- [--quick] [--only relay,hub] [--users N] [--rates …] [--seconds S]
 * Runs each scenario's rate ladder, one after the other, and writes <--out>/<name>.{json,md}
 * (default bench/results/latest.*).
 */
import { execFileSync } from 'node:child_process'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { dirname, join } from 'node:path'
import { cleanupAndExit, startWatchdog } from './cleanup.ts'
import { runLadder, type ScenarioResult } from './ladder.ts'
import { parseOptions, USAGE } from './options.ts'
import { markdown, summarize, writeReport, type Report } from './report.ts'
import { SCENARIOS } from './scenarios/index.ts'
import { STUDIES } from './studies/index.ts'
import type { StudyContext } from './studies/types.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2))
  if (opts === 'help') return void console.log(USAGE)
  startWatchdog(opts.timeoutSec * 1000)
  const startedAt = new Date()
  // Read before any server starts: the code the run measured, not what is checked out at its end.
  const git = gitRevision()
  const t0 = performance.now()
  console.log(`bench: ${opts.only.join(', ')}; ${opts.users} users; rates ${opts.rates.join(', ')}; ${opts.warmupSec}+${opts.measureSec} s per step`)
  const load = loadavg()[0]!
  if (load > 0.5) console.log(`bench: warning: load average ${load.toFixed(2)} before start; other processes will share the cores (see "other CPU")`)

  const scenarios: ScenarioResult[] = []
  const studies: Record<string, unknown> = {}
  const ctx: StudyContext = { root, opts, machineCores: cpus().length, log: console.log }
  for (const name of opts.only) {
    const study = STUDIES[name]
    if (study) studies[name] = await study.run(ctx)
    else scenarios.push(await runLadder(SCENARIOS[name]!, opts, root))
  }

  const { outDir, name, ...shown } = opts
  const report: Report = {
    meta: {
      startedAt: startedAt.toISOString(),
      durationSec: (performance.now() - t0) / 1000,
      command: `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim(),
      git,
      node: process.version,
      cpus: `${cpus().length} × ${cpus()[0]?.model.trim() ?? '?'}`,
      memGiB: Math.round(totalmem() / 2 ** 30),
      loadAvgAtStart: load,
      options: shown,
    },
    scenarios,
    studies,
    summary: summarize(scenarios, studies, ctx),
  }
  const files = writeReport(outDir, name, report)
  console.log('\n' + markdown(report))
  console.log(`bench: wrote ${[files.md, files.json, files.svg].filter(Boolean).join(', ')}`)
}

function gitRevision(): string {
  try {
    const rev = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).trim()
    const dirty = execFileSync('git', ['status', '--porcelain', '--', 'src', 'protocol', 'bin'], { cwd: root, encoding: 'utf8' }).trim()
    return dirty ? `${rev}+dirty` : rev
  } catch {
    return 'unknown'
  }
}

main().then(
  () => cleanupAndExit(0),
  (err) => {
    console.error(`bench: ${(err as Error).stack ?? err}`)
    void cleanupAndExit(1)
  },
)
