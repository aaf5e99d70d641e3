import { spawn } from 'node:child_process'
import { onCleanup } from './cleanup.ts'
import { ProcessSampler } from './procfs.ts'

/** A server under test, run as its own process so its memory and CPU are its own. */
export interface ServerProcess {
  /** The first node's, for a group. */
  pid: number
  port: number
  baseUrl: string
  /** Memory and CPU of the process tree (and of Postgres). */
  sampler(): ProcessSampler
  /** The last lines the process wrote (for error messages). */
  tail(): string
  /** True once the process has exited. */
  exited(): boolean
  stop(): Promise<void>
}

export interface SpawnOptions {
  name: string
  args: string[]
  env: Record<string, string>
  cwd: string
  port: number
  host?: string
  readyPath?: string
  readyTimeoutMs?: number
}

/** BENCH_SERVER_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`) go to the servers' node only, not the generator's. */
function serverNodeArgs(): string[] {
  return (process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)
}


/** Spawns `node <args>` and resolves once GET readyPath answers 200. */
export async function startServerProcess(opts: SpawnOptions): Promise<ServerProcess> {
  const host = opts.host ?? '127.0.0.1'
  // Own process group, so a launcher's grandchildren die with it.
  const child = spawn(process.execPath, [...serverNodeArgs(), ...opts.args], {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  })
  const lines: string[] = []
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(line.slice(0, 500))
    if (lines.length > 40) lines.splice(0, lines.length - 40)
  }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  let exitCode: number | null | undefined
  const exitPromise = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : 0)
      resolve()
    }),
  )
  const killGroup = (sig: NodeJS.Signals) => {
    if (exitCode !== undefined || !child.pid) return
    try {
      process.kill(-child.pid, sig)
    } catch {
      // already gone
    }
  }
  const unregister = onCleanup({ sync: () => killGroup('SIGKILL') })

  const baseUrl = `http://${host}:${opts.port}`
  const proc: ServerProcess = {
    pid: child.pid!,
    port: opts.port,
    baseUrl,
    sampler: () => new ProcessSampler([child.pid!]),
    tail: () => lines.join('\n'),
    exited: () => exitCode !== undefined,
    async stop() {
      killGroup('SIGTERM')
      const timer = setTimeout(() => killGroup('SIGKILL'), 5000)
      await exitPromise
      clearTimeout(timer)
      unregister()
    },
  }

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000)
  while (Date.now() < deadline) {
    if (exitCode !== undefined) throw new Error(`${opts.name} exited with ${exitCode} before it was ready:\n${proc.tail()}`)
    try {
      const res = await fetch(`${baseUrl}${opts.readyPath ?? '/readyz'}`, { signal: AbortSignal.timeout(1000) })
      await res.arrayBuffer()
      if (res.status === 200) return proc
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 150))
  }
  await proc.stop()
  throw new Error(`${opts.name} was not ready within ${opts.readyTimeoutMs ?? 30_000} ms:\n${proc.tail()}`)
}

/** Starts several servers at once; if any fails, stops the others and throws its error. */
export async function startServerProcesses(list: SpawnOptions[]): Promise<ServerProcess[]> {
  const started = await Promise.allSettled(list.map(startServerProcess))
  const procs = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  if (failed) {
    await Promise.all(procs.map((p) => p.stop()))
    throw failed.reason
  }
  return procs
}

/** Several server processes as one (a cluster's nodes): memory and CPU summed, exited once any node has. */
export function serverGroup(procs: ServerProcess[]): ServerProcess {
  const [first] = procs
  if (!first) throw new Error('serverGroup: no processes')
  return {
    pid: first.pid,
    port: first.port,
    baseUrl: first.baseUrl,
    sampler: () => new ProcessSampler(procs.map((p) => p.pid)),
    tail: () => procs.map((p, i) => `--- node ${i} (pid ${p.pid}) ---\n${p.tail()}`).join('\n'),
    exited: () => procs.some((p) => p.exited()),
    async stop() {
      await Promise.all(procs.map((p) => p.stop()))
    },
  }
}
