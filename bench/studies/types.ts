import type { TargetRow } from '../cluster-compare.ts'
import type { Options } from '../options.ts'

/** What a study is handed: the checkout's root, the run's options, a progress line printer. */
export interface StudyContext {
  root: string
  opts: Options
  /** The cores every side shared, to say what a target's rate would take of them. */
  machineCores: number
  log(line: string): void
}

/**
 * A measurement that is not a rate ladder (bench/ladder.ts): a cold start, a fallback drill, a
 * reconnect storm… Each is run by name (`--only`), reports its own markdown section and target
 * rows, and keeps its raw result in the report's JSON under `studies.<name>`.
 */
export interface Study<R = unknown> {
  name: string
  /** One or two lines for `--help`. */
  describe: string
  /** Run by a plain `npm run bench` (the full run), not only when named. */
  inFullRun: boolean
  run(ctx: StudyContext): Promise<R>
  markdown(result: R): string[]
  targets(result: R, ctx: StudyContext): TargetRow[]
}

/** Keeps a study's result type while it sits in a list of studies of every kind. */
export const study = <R>(s: Study<R>): Study<unknown> => s as Study<unknown>
