import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { SCENARIOS } from './scenarios/index.ts'
import { STUDIES } from './studies/index.ts'

export interface Options {
  users: number
  rates: number[]
  warmupSec: number
  measureSec: number
  drainSec: number
  only: string[]
  /** A step breaks when p99 exceeds this or anything is lost; set, it overrides every scenario's own limit. */
  p99LimitMs?: number
  /** The issue's fixed-rate target: at this rate, zero loss and p99 ≤ targetP99Ms. */
  targetRate: number
  targetP99Ms: number
  contentChars: number
  /** Generator threads (worker_threads), users split between them. */
  threads: number
  /** Run every rate even after a side breaks. */
  keepGoing: boolean
  /** Leave Postgres's WAL as found: no recycled segments reserved before each step. */
  coldWal: boolean
  /** Absolute directory the report is written to. */
  outDir: string
  name: string
  quick: boolean
  /** Hard stop for the whole run. */
  timeoutSec: number
  /** Cold start (`cold`): messages and conversations in the account a new device pulls. */
  coldMessages: number
  coldConversations: number
  /** receive: the revision to compare with (default: the commit before the text checks). */
  receiveBaseline?: string
}

/** Where reports go unless `--out` says otherwise (gitignored: results are not committed). */
export const DEFAULT_OUT_DIR = fileURLToPath(new URL('./results', import.meta.url))

/** What a plain `npm run bench` runs: the ladders, then the studies of the full run. */
const FULL_RUN = ['relay', 'hub', 'hub-ws', 'sdk', 'cluster', 'socketio', ...Object.values(STUDIES).filter((s) => s.inFullRun).map((s) => s.name)]

const FULL_RATES = [1000, 2500, 5000, 7500, 10000, 12500, 15000, 17500, 20000, 25000, 30000]
const QUICK_RATES = [1000, 5000, 10000, 20000]

export const USAGE = `npm run bench -- [options]     (or: node --import tsx bench/run.ts [options])
  --quick               short steps, fewer rates (about 2 minutes)
  --only a,b            rate ladders: ${Object.keys(SCENARIOS).join(', ')}
                        (cluster,socketio is the cluster comparison: 2 hub nodes + Redis against
                        Socket.IO; sdk beside hub gives the client SDK's overhead); and studies:
${Object.values(STUDIES).map((s) => `                          ${s.name}: ${s.describe}${s.inFullRun ? '' : ' (only when named)'}`).join('\n')}
                        default ${FULL_RUN.join(',')}; --quick relay,hub
  --baseline REV        receive: the git revision to compare with
  --messages N          cold: messages in the account (default 100000; quick 20000)
  --conversations N     cold: conversations they are spread over (default 200)
  --users N             users, 3 sockets each (default 200)
  --rates a,b,c         total push rates to step through, pushes/s
  --seconds S           measured seconds per step (default 5; quick 2)
  --warmup S            unmeasured seconds before each step's window (default 1; quick 0.5)
  --drain S             grace for late acks/deliveries after a step (default 3; quick 2)
  --p99-limit MS        a step breaks above this p99 (default: the scenario's, 50; 100 for cluster and socketio)
  --content N           characters of message content (default 120: ~200-byte message data)
  --threads N           load generator threads, users split between them (default 1)
  --keep-going          run every rate even after a side breaks
  --cold-wal            do not reserve recycled WAL segments in Postgres before each hub step
                        (see bench/README.md: a server that sat idle creates them during the step)
  --out DIR             directory for the report (default bench/results, not committed;
                        a relative DIR is taken from where you ran the command)
  --name NAME           output files DIR/NAME.{json,md} (default latest)
  --timeout S           stop the whole run after S seconds (default 3600; quick 240)
Env equivalents: BENCH_THREADS, BENCH_USERS, BENCH_RATES, BENCH_SECONDS, BENCH_ONLY, BENCH_DATABASE_URL.`

export function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean', default: false },
      only: { type: 'string' },
      users: { type: 'string' },
      rates: { type: 'string' },
      seconds: { type: 'string' },
      warmup: { type: 'string' },
      drain: { type: 'string' },
      'p99-limit': { type: 'string' },
      content: { type: 'string' },
      threads: { type: 'string' },
      'keep-going': { type: 'boolean', default: false },
      'cold-wal': { type: 'boolean', default: false },
      out: { type: 'string' },
      name: { type: 'string' },
      timeout: { type: 'string' },
      messages: { type: 'string' },
      conversations: { type: 'string' },
      baseline: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) return 'help'
  const quick = values.quick!
  const env = process.env
  const only = list(values.only ?? env.BENCH_ONLY ?? (quick ? 'relay,hub' : FULL_RUN.join(',')))
  const known = [...Object.keys(SCENARIOS), ...Object.keys(STUDIES)]
  for (const name of only) if (!known.includes(name)) throw new Error(`unknown scenario ${name}; known: ${known.join(', ')}`)
  const ratesRaw = values.rates ?? env.BENCH_RATES
  const rates = ratesRaw ? list(ratesRaw).map(Number) : quick ? QUICK_RATES : FULL_RATES
  if (rates.some((r) => !Number.isFinite(r) || r <= 0 || r > 200_000)) throw new Error(`bad --rates ${rates.join(',')}`)
  return {
    users: int(values.users ?? env.BENCH_USERS, 200, 1, 5000, 'users'),
    rates: [...new Set(rates)].sort((a, b) => a - b),
    warmupSec: num(values.warmup, quick ? 0.5 : 1, 0, 30, 'warmup'),
    measureSec: num(values.seconds ?? env.BENCH_SECONDS, quick ? 2 : 5, 0.5, 120, 'seconds'),
    drainSec: num(values.drain, quick ? 2 : 3, 0.5, 60, 'drain'),
    only,
    p99LimitMs: values['p99-limit'] === undefined ? undefined : num(values['p99-limit'], 0, 1, 10_000, 'p99-limit'),
    targetRate: 5000,
    targetP99Ms: 25,
    contentChars: int(values.content, 120, 1, 100_000, 'content'),
    threads: int(values.threads ?? env.BENCH_THREADS, 1, 1, 16, 'threads'),
    keepGoing: values['keep-going']!,
    coldWal: values['cold-wal']!,
    // npm runs scripts in the package's folder and says where it was invoked in INIT_CWD.
    outDir: values.out ? resolve(process.env.INIT_CWD ?? process.cwd(), values.out) : DEFAULT_OUT_DIR,
    name: values.name ?? 'latest',
    quick,
    timeoutSec: num(values.timeout, quick ? 240 : 3600, 10, 7200, 'timeout'),
    coldMessages: int(values.messages, quick ? 20_000 : 100_000, 100, 10_000_000, 'messages'),
    coldConversations: int(values.conversations, 200, 1, 100_000, 'conversations'),
    ...(values.baseline ? { receiveBaseline: values.baseline } : {}),
  }
}

const list = (s: string) => s.split(',').map((x) => x.trim()).filter(Boolean)

function num(raw: string | undefined, dflt: number, min: number, max: number, name: string): number {
  if (raw === undefined) return dflt
  const n = Number(raw)
  if (!Number.isFinite(n) || n < min || n > max) throw new Error(`--${name} must be between ${min} and ${max}`)
  return n
}

function int(raw: string | undefined, dflt: number, min: number, max: number, name: string): number {
  const n = num(raw, dflt, min, max, name)
  if (!Number.isInteger(n)) throw new Error(`--${name} must be an integer`)
  return n
}
