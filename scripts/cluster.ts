/**
 * A local cluster: N hub processes (`node bin/synchub.js serve`) sharing one Postgres and one
 * Redis. `npm run cluster -- --nodes 3` runs it in a terminal; tests import `startHubCluster`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { request as httpRequestRaw } from 'node:http'
import { freePort } from './free-port.ts'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import pg from 'pg'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const LOCAL_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test'
const LOCAL_REDIS_URL = 'redis://127.0.0.1:6379'
const CLUSTER_SCHEMA = 'synchub_cluster'
/** Lines of output kept per node (for diagnostics): enough for a test, bounded for a long run. */
const OUTPUT_LINES = 5000

/**
 * Loaded into each hub before it starts: exits when the parent's end of stdin closes, so hubs
 * never outlive a launcher or test that was SIGKILLed. unref() lets a drained hub exit normally.
 */
const PARENT_GUARD =
  'data:text/javascript,' +
  encodeURIComponent('const s=process.stdin;s.on("end",()=>process.exit(70));s.on("error",()=>{});s.resume();s.unref?.()')

export interface HubClusterOptions {
  nodes: number
  /** Node i listens on basePort + i; 0 picks free ports instead. */
  basePort: number
  databaseUrl: string
  redisUrl: string
  secret: string
  host?: string
  /** Environment for every node (over process.env, under the cluster's own variables). */
  env?: Record<string, string>
  /** Extra environment for node i (0-based), over everything else. */
  nodeEnv?: (index: number) => Record<string, string>
  /** Every output line, as it arrives (the CLI prefixes and prints them). */
  onLine?: (node: HubNode, line: string) => void
  readyTimeoutMs?: number
}

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface HubNode {
  /** hub-1 … hub-N, also its SYNCHUB_NODE_ID. */
  readonly id: string
  readonly index: number
  readonly port: number
  readonly url: string
  readonly wsUrl: string
  /** The current process (a restart changes it). */
  readonly pid: number
  readonly running: boolean
  /** Settles when the current process exits. */
  readonly exited: Promise<ExitInfo>
  /** The process's stdout and stderr lines, across restarts. */
  readonly output: string[]
  kill(signal?: NodeJS.Signals): void
  /** SIGTERM, waits for the exit (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<ExitInfo>
  /** Stops the process if it runs, starts a new one on the same port and waits until ready. */
  restart(): Promise<void>
  waitReady(timeoutMs?: number): Promise<void>
}

export interface HubCluster {
  nodes: HubNode[]
  /** Stops every node (SIGTERM, then SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>
  /** SIGKILLs every node still running, synchronously (teardown of last resort). */
  killAll(): void
}

/** Starts N nodes in parallel and resolves once each answers GET /readyz with 200. */
export async function startHubCluster(opts: HubClusterOptions): Promise<HubCluster> {
  const host = opts.host ?? '127.0.0.1'
  const ports = await Promise.all(Array.from({ length: opts.nodes }, (_, i) => (opts.basePort ? Promise.resolve(opts.basePort + i) : freePort(host))))
  const nodes = ports.map((port, i) => createNode(i, port, host, opts))
  const cluster: HubCluster = {
    nodes,
    async stop(graceMs) {
      await Promise.all(nodes.map((n) => n.stop(graceMs)))
    },
    killAll() {
      for (const n of nodes) n.kill('SIGKILL')
    },
  }
  try {
    await Promise.all(nodes.map((n) => n.restart()))
  } catch (err) {
    cluster.killAll()
    throw err
  }
  return cluster
}

function createNode(index: number, port: number, host: string, opts: HubClusterOptions): HubNode {
  const id = `hub-${index + 1}`
  const url = `http://${host}:${port}`
  const output: string[] = []
  let child: ChildProcess | undefined
  let exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null })
  let running = false

  const env = {
    ...process.env,
    SYNCHUB_REGISTRATION: process.env.SYNCHUB_REGISTRATION || 'open',
    ...opts.env,
    DATABASE_URL: opts.databaseUrl,
    REDIS_URL: opts.redisUrl,
    SYNCHUB_SECRET: opts.secret,
    HOST: host,
    PORT: String(port),
    SYNCHUB_NODE_ID: id,
    ...opts.nodeEnv?.(index),
  }

  const spawnProcess = () => {
    // Own process group: a terminal's Ctrl-C reaches only the launcher, which then sends one
    // SIGTERM (a hub takes a second signal as "exit now, skip the drain").
    const proc = spawn(process.execPath, ['--import', PARENT_GUARD, 'bin/synchub.js', 'serve'], {
      cwd: ROOT,
      env,
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    })
    child = proc
    running = true
    const keep = (line: string) => {
      output.push(line)
      if (output.length > OUTPUT_LINES) output.splice(0, output.length - OUTPUT_LINES)
      opts.onLine?.(node, line)
    }
    splitLines(proc.stdout!, keep)
    splitLines(proc.stderr!, keep)
    exited = new Promise((resolve) => {
      const done = (code: number | null, signal: NodeJS.Signals | null) => {
        if (child === proc) running = false
        resolve({ code, signal })
      }
      proc.once('exit', done)
      // A process that could not be spawned never exits: count it as gone.
      proc.once('error', (err) => (keep(`spawn failed: ${err.message}`), done(null, null)))
    })
  }

  const node: HubNode = {
    id,
    index,
    port,
    url,
    wsUrl: `ws://${host}:${port}/v1/ws`,
    get pid() {
      return child?.pid ?? -1
    },
    get running() {
      return running
    },
    get exited() {
      return exited
    },
    output,
    kill(signal = 'SIGTERM') {
      if (running && child?.pid) {
        try {
          process.kill(child.pid, signal)
        } catch {
          // gone already
        }
      }
    },
    async stop(graceMs = 10_000) {
      if (!running) return exited
      node.kill('SIGTERM')
      const timer = setTimeout(() => node.kill('SIGKILL'), graceMs)
      const info = await exited
      clearTimeout(timer)
      return info
    },
    async restart() {
      await node.stop()
      spawnProcess()
      await node.waitReady(opts.readyTimeoutMs)
    },
    async waitReady(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      let gone = false
      void exited.then(() => (gone = true))
      while (Date.now() < deadline) {
        if (gone) throw new Error(`${id} exited before it was ready:\n${output.slice(-20).join('\n')}`)
        try {
          if ((await httpRequest(`${url}/readyz`, { timeoutMs: 1000 })).status === 200) return
        } catch {
          // not listening yet
        }
        await new Promise((r) => setTimeout(r, 100))
      }
      throw new Error(`${id} was not ready within ${timeoutMs} ms:\n${output.slice(-20).join('\n')}`)
    },
  }
  return node
}

function splitLines(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let rest = ''
  stream.setEncoding('utf8')
  stream.on('data', (chunk: string) => {
    const parts = (rest + chunk).split('\n')
    rest = parts.pop()!
    for (const p of parts) if (p) onLine(p)
  })
  stream.on('end', () => rest && onLine(rest))
}

/**
 * One HTTP request on a connection of its own, closed after the answer. fetch would keep the
 * connection alive for seconds, which holds a uWebSockets.js hub open after it drains.
 */
export function httpRequest(
  url: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequestRaw(url, { method: opts.method ?? 'GET', headers: opts.headers, agent: false, timeout: opts.timeoutMs ?? 10_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      res.on('error', reject)
    })
    req.on('timeout', () => req.destroy(new Error(`${opts.method ?? 'GET'} ${url}: no answer in time`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}


/** The default database for the CLI: the local one, in a schema of its own (created if missing). */
export async function clusterDatabaseUrl(base = LOCAL_DATABASE_URL, schema = CLUSTER_SCHEMA, fresh = false): Promise<string> {
  const admin = new pg.Client({ connectionString: base, connectionTimeoutMillis: 5000 })
  await admin.connect()
  try {
    if (fresh) await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
    await admin.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`)
  } finally {
    await admin.end()
  }
  const url = new URL(base)
  url.searchParams.set('options', `-c search_path=${schema}`)
  return url.toString()
}

// ---- the command --------------------------------------------------------------------------

const USAGE = `usage: npm run cluster -- [--nodes N] [--port P] [--fresh]

Runs N hub nodes (hub-1 … hub-N) on ports P, P+1, … against one Postgres and one Redis.
  --nodes N   how many nodes (default 3)
  --port P    the first node's port (default 8080)
  --fresh     drop and recreate the ${CLUSTER_SCHEMA} schema first (default database only)
Environment: DATABASE_URL (default ${LOCAL_DATABASE_URL}, schema ${CLUSTER_SCHEMA}),
REDIS_URL (default ${LOCAL_REDIS_URL}), SYNCHUB_SECRET (default: generated and printed),
SYNCHUB_REGISTRATION (default open) and every other hub variable, passed to each node.
Ctrl-C or SIGTERM drains every node; a second one kills them.`

const COLORS = [36, 33, 35, 32, 34, 31]

async function cli(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { nodes: { type: 'string', default: '3' }, port: { type: 'string', default: '8080' }, fresh: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  })
  if (values.help) return console.log(USAGE), 0
  const nodes = Number(values.nodes)
  const basePort = Number(values.port)
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > 64 || !Number.isInteger(basePort) || basePort < 1 || basePort + nodes > 65536) {
    console.error(`invalid --nodes or --port\n\n${USAGE}`)
    return 2
  }
  const databaseUrl = process.env.DATABASE_URL || (await clusterDatabaseUrl(LOCAL_DATABASE_URL, CLUSTER_SCHEMA, values.fresh))
  const redisUrl = process.env.REDIS_URL || LOCAL_REDIS_URL
  let secret = process.env.SYNCHUB_SECRET
  if (!secret) {
    secret = randomBytes(32).toString('base64url')
    console.log(`cluster: generated SYNCHUB_SECRET=${secret}`)
  }
  const tty = process.stdout.isTTY
  const prefix = (n: HubNode) => (tty ? `\x1b[${COLORS[n.index % COLORS.length]}m[${n.id}]\x1b[0m` : `[${n.id}]`)
  console.log(`cluster: starting ${nodes} node(s); database ${redact(databaseUrl)}, redis ${redact(redisUrl)}`)

  let stopping = 0
  let cluster: HubCluster | undefined
  const onSignal = () => {
    // npm may forward the terminal's Ctrl-C that reached us already: one press, not two.
    if (stopping && Date.now() - stopping < 300) return
    if (stopping) {
      console.log('cluster: second signal, killing every node')
      cluster?.killAll()
      return
    }
    stopping = Date.now()
    console.log('cluster: draining every node (again to kill)')
    void cluster?.stop()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  try {
    cluster = await startHubCluster({ nodes, basePort, databaseUrl, redisUrl, secret, onLine: (n, line) => console.log(`${prefix(n)} ${line}`) })
  } catch (err) {
    console.error(`cluster: ${(err as Error).message}`)
    return 1
  }
  if (stopping) void cluster.stop() // a signal arrived while the nodes were starting
  for (const n of cluster.nodes) console.log(`cluster: ${n.id} ready at ${n.url} (socket ${n.wsUrl}, pid ${n.pid})`)
  const codes = await Promise.all(
    cluster.nodes.map(async (n) => {
      const info = await n.exited
      console.log(`cluster: ${n.id} exited (${info.signal ?? `code ${info.code}`})`)
      return info.code === 0 ? 0 : 1
    }),
  )
  return stopping ? Math.max(...codes) : 1
}

const redact = (url: string) => url.replace(/\/\/([^:@/]+):[^@/]+@/, '//$1:***@')

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = await cli(process.argv.slice(2))
}
