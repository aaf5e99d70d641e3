import { readdirSync, readFileSync } from 'node:fs'

/** Linux /proc readers: memory and CPU of a process and its descendants, without `ps`. */

const CLK_TCK = 100 // USER_HZ; 100 on every mainstream Linux build.
const PAGE_KB = 4

interface Stat {
  pid: number
  ppid: number
  comm: string
  cpuTicks: number
  rssKb: number
}

function readStat(pid: number): Stat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // comm may hold spaces and parentheses: split after the last ')'.
    const close = text.lastIndexOf(')')
    const comm = text.slice(text.indexOf('(') + 1, close)
    const f = text.slice(close + 2).split(' ')
    // f[0] is field 3 (state): ppid = field 4, utime = 14, stime = 15, rss = 24.
    return { pid, ppid: Number(f[1]), comm, cpuTicks: Number(f[11]) + Number(f[12]), rssKb: Number(f[21]) * PAGE_KB }
  } catch {
    return undefined // gone between listing and reading
  }
}

function allStats(): Stat[] {
  const out: Stat[] = []
  for (const name of readdirSync('/proc')) {
    const pid = Number(name)
    if (!Number.isInteger(pid)) continue
    const s = readStat(pid)
    if (s) out.push(s)
  }
  return out
}

/** The processes and every descendant (a launcher may exec or fork the real server). */
function tree(roots: number[], stats: Stat[]): Stat[] {
  const ids = new Set(roots)
  let grew = true
  for (let pass = 0; grew && pass < 16; pass++) {
    grew = false
    for (const s of stats) if (!ids.has(s.pid) && ids.has(s.ppid)) (ids.add(s.pid), (grew = true))
  }
  return stats.filter((s) => ids.has(s.pid))
}

export interface Usage {
  /** Resident memory of the process tree, MiB. */
  rssMiB: number
  /** CPU ticks so far per pid: the process tree, and the Postgres and Redis processes serving it. */
  treeTicks: Map<number, number>
  postgresTicks: Map<number, number>
  redisTicks: Map<number, number>
  /** CPU seconds the whole machine has been busy (all cores, /proc/stat). */
  machineCpuSec: number
}

/**
 * Samples the process trees of a server (one or several nodes) and the Postgres and Redis
 * processes that serve it. `refresh()` scans all of /proc (several ms); `sample()` rereads only
 * the pids found then, so sampling while the load runs costs next to nothing.
 */
export class ProcessSampler {
  private mine: number[] = []
  private postgres: number[] = []
  private redis: number[] = []

  constructor(private readonly roots: number[]) {
    this.refresh()
  }

  /** `postgresPids`: the server's backends (from pg_stat_activity); `redisPids`: the Redis server; none when not used. */
  refresh(postgresPids: number[] = [], redisPids: number[] = []): Usage {
    const stats = allStats()
    const mine = tree(this.roots, stats)
    const pick = (pids: number[]) => stats.filter((s) => pids.includes(s.pid))
    const pg = pick(postgresPids)
    const redis = pick(redisPids)
    this.mine = mine.map((s) => s.pid)
    this.postgres = pg.map((s) => s.pid)
    this.redis = redis.map((s) => s.pid)
    return usage(mine, pg, redis)
  }

  sample(): Usage {
    const read = (pids: number[]) => pids.map(readStat).filter((s): s is Stat => s !== undefined)
    return usage(read(this.mine), read(this.postgres), read(this.redis))
  }
}

/** CPU seconds between two samples, over the pids alive in both (a process that exits in between drops out). */
export function cpuSecBetween(a: Map<number, number>, b: Map<number, number>): number {
  let ticks = 0
  for (const [pid, t] of b) {
    const before = a.get(pid)
    if (before !== undefined) ticks += t - before
  }
  return ticks / CLK_TCK
}

function usage(mine: Stat[], pg: Stat[], redis: Stat[]): Usage {
  let rssKb = 0
  for (const s of mine) rssKb += s.rssKb
  const ticks = (stats: Stat[]) => new Map(stats.map((s) => [s.pid, s.cpuTicks]))
  return {
    rssMiB: rssKb / 1024,
    treeTicks: ticks(mine),
    postgresTicks: ticks(pg),
    redisTicks: ticks(redis),
    machineCpuSec: machineBusySec(),
  }
}

/** Busy time of all cores: everything in the aggregate `cpu` line but idle and iowait. */
export function machineBusySec(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!
    const f = line.trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal (guest is already inside user)
    const busy = f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!
    return busy / CLK_TCK
  } catch {
    return NaN
  }
}

/** VmRSS of one process, MiB (the figure `ps` and `top` show). */
export function vmRssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) / 1024 : NaN
  } catch {
    return NaN
  }
}
