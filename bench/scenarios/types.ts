import type { ClientKind } from '../device-port.ts'
import type { ServerProcess } from '../hub-process.ts'

/** A server under load, started by a scenario and stopped by the runner. */
export interface Target {
  wsUrl: string
  /** Where device `device` (0..2) of user `user` connects, for a server of several nodes; wsUrl if absent. */
  wsUrlFor?(user: number, device: number): string
  /** The client the devices speak (default synchub: ws + msgpack frames). */
  client?: ClientKind
  /** One access token per user. */
  tokens: string[]
  process: ServerProcess
  /** Pids of the Postgres processes serving this server (its backends), for CPU accounting. */
  postgresPids?(): Promise<number[]>
  /** Pid of the Redis server it uses (shared with anyone else on it), for CPU accounting. */
  redisPids?(): Promise<number[]>
  /**
   * Readies what the server stands on for a step of `rate` pushes/s lasting `seconds` (a Postgres
   * server's recycled WAL segments). Skipped with --cold-wal.
   */
  prepareStep?(rate: number, seconds: number): Promise<StepPreparation>
  /** What the server reports about itself once the steps are done (e.g. stored message counts). */
  verify?(acked: number): Promise<Verification>
  stop(): Promise<void>
}

/** What Target.prepareStep did, or why it could not. */
export interface StepPreparation {
  ok: boolean
  detail: string
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
  /** A step breaks above this p99 (ms) unless --p99-limit says otherwise; default 50. */
  p99LimitMs?: number
  start(ctx: ScenarioContext): Promise<Target>
}
