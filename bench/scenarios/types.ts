import type { ServerProcess } from '../hub-process.ts'

/** A server under load, started by a scenario and stopped by the runner. */
export interface Target {
  wsUrl: string
  /** One access token per user. */
  tokens: string[]
  process: ServerProcess
  /** Pids of the Postgres processes serving this server (its backends), for CPU accounting. */
  postgresPids?(): Promise<number[]>
  /** What the server reports about itself once the steps are done (e.g. stored message counts). */
  verify?(acked: number): Promise<Verification>
  stop(): Promise<void>
}

export interface Verification {
  ok: boolean
  detail: string
}

export interface ScenarioContext {
  users: number
  /** Repo root: the cwd of spawned servers. */
  root: string
  log(line: string): void
}

/** One row group of the report: how to start a server and provision its users. */
export interface Scenario {
  name: string
  description: string
  start(ctx: ScenarioContext): Promise<Target>
}
