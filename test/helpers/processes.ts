/**
 * Process-level tests: hub nodes as real processes (scripts/cluster.ts) on a fresh Postgres
 * schema, a Redis of the test's choosing, devices that reconnect and resume by cursor, and a
 * private Redis a test may stop. The machine's shared Postgres and Redis are never stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import type { Test } from 'tap'
import { HubSocket } from '../../src/client/hub-socket.ts'
import { SyncClient } from '../../src/client/node.ts'
import type { ByeFrame } from '../../protocol/frames.ts'
import { httpRequest, startHubCluster, type ExitInfo, type HubNode } from '../../scripts/cluster.ts'
import { freePort } from '../../scripts/free-port.ts'
import { TEST_REDIS_URL, freshPostgresSchema, postgresAvailable, redisAvailable } from './services.ts'
import { waitUntil } from './wait.ts'

export { httpRequest, waitUntil, type HubNode }

// Backstop for a test process that exits without its teardown: no child outlives it.
const killers = new Set<() => void>()
process.on('exit', () => {
  for (const kill of killers) kill()
})

export interface ProcUser {
  id: string
  username: string
  token: string
}

export interface ProcCluster {
  nodes: HubNode[]
  /** The nodes' database (a fresh schema through search_path) and their Redis key prefix. */
  databaseUrl: string
  redisPrefix: string
  /** Registers and logs in a user over REST on node `via`. */
  newUser(via?: number): Promise<ProcUser>
  /** A device of `user` whose first socket goes to node `node` (subscribed from 0). */
  device(user: ProcUser, id: string, node: number, opts?: DeviceOptions): Promise<Device>
  /** A bare socket of `user` as device `deviceId` on node `node` (closed in teardown). */
  connect(node: number, user: ProcUser, deviceId: string): Promise<HubSocket>
  /** A REST call with the user's token on node `node`. */
  rest(node: number, method: string, path: string, opts?: { user?: ProcUser; body?: unknown; deviceId?: string; timeoutMs?: number }): Promise<{ status: number; json: any }>
  /** The sum of a Prometheus metric over its labels on node `node`; undefined when absent. */
  metric(node: number, name: string): Promise<number | undefined>
}

/**
 * Starts `nodes` hub processes (uws and ws alternating) on a fresh schema. Skips (never under
 * CI) when Postgres or the shared Redis is down. Everything is killed in teardown.
 */
export async function startProcCluster(
  t: Test,
  opts: { nodes?: number; redisUrl?: string; env?: Record<string, string>; nodeEnv?: (i: number) => Record<string, string> } = {},
): Promise<ProcCluster | undefined> {
  if (!(await postgresAvailable()) || !(await redisAvailable())) {
    t.skip('Postgres or Redis is not running', () => {})
    return undefined
  }
  const schema = await freshPostgresSchema()
  const sockets = new Set<HubSocket>()
  const devices = new Set<Device>()
  let cluster: Awaited<ReturnType<typeof startHubCluster>> | undefined
  const killAll = () => cluster?.killAll()
  killers.add(killAll)
  t.teardown(async () => {
    for (const d of devices) d.close()
    for (const c of sockets) c.kill()
    if (cluster) {
      if (!t.passing()) for (const n of cluster.nodes) t.comment(`${n.id} output (last lines):\n${n.output.slice(-15).join('\n')}`)
      cluster.killAll()
      await Promise.all(cluster.nodes.map((n) => n.exited))
    }
    killers.delete(killAll)
    await schema.drop()
  })
  const redisPrefix = `t${randomBytes(5).toString('hex')}`
  cluster = await startHubCluster({
    nodes: opts.nodes ?? 3,
    basePort: 0,
    databaseUrl: schema.url,
    redisUrl: opts.redisUrl ?? TEST_REDIS_URL,
    secret: randomBytes(32).toString('base64url'),
    env: {
      LOG_LEVEL: 'info',
      DATABASE_POOL_SIZE: '5',
      // Its own channels and keys: other suites share the machine's Redis.
      SYNCHUB_REDIS_PREFIX: redisPrefix,
      SYNCHUB_AUTH_RATE_IP: '100000',
      SYNCHUB_AUTH_RATE_USER: '100000',
      ...opts.env,
    },
    nodeEnv: (i) => ({ SYNCHUB_TRANSPORT: i % 2 === 0 ? 'uws' : 'ws', ...opts.nodeEnv?.(i) }),
  })
  const nodes = cluster.nodes

  const rest: ProcCluster['rest'] = async (node, method, path, o = {}) => {
    const res = await httpRequest(nodes[node]!.url + path, {
      method,
      headers: {
        ...(o.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(o.user ? { authorization: `Bearer ${o.user.token}` } : {}),
        ...(o.deviceId ? { 'device-id': o.deviceId } : {}),
      },
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
      timeoutMs: o.timeoutMs,
    })
    return { status: res.status, json: res.text ? JSON.parse(res.text) : undefined }
  }
  let users = 0
  return {
    nodes,
    databaseUrl: schema.url,
    redisPrefix,
    rest,
    async newUser(via = 0) {
      const username = `chaos${++users}_${randomBytes(3).toString('hex')}`
      const password = 'correct horse battery'
      const reg = await rest(via, 'POST', '/v1/auth/register', { body: { username, password } })
      if (reg.status !== 201) throw new Error(`register: ${reg.status} ${JSON.stringify(reg.json)}`)
      const login = await rest(via, 'POST', '/v1/auth/login', { body: { username, password } })
      if (login.status !== 200) throw new Error(`login: ${login.status} ${JSON.stringify(login.json)}`)
      return { id: reg.json.user.id, username, token: login.json.access_token }
    },
    async device(user, id, node, o) {
      const d = new Device(nodes, user, id, node, o)
      devices.add(d)
      await d.open()
      return d
    },
    async connect(node, user, deviceId) {
      const c = await HubSocket.connect(nodes[node]!.wsUrl, { token: user.token, device: { id: deviceId }, timeoutMs: 5000 })
      sockets.add(c)
      return c
    },
    async metric(node, name) {
      const res = await httpRequest(`${nodes[node]!.url}/metrics`)
      if (res.status !== 200) return undefined
      return sumMetric(res.text, name)
    },
  }
}

/** Sums every sample of `name` (any labels) in Prometheus text; undefined when there is none. */
export function sumMetric(text: string, name: string): number | undefined {
  let sum: number | undefined
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
    if (m && m[1] === name) sum = (sum ?? 0) + Number(m[3])
  }
  return sum
}

// ---- a private Redis ------------------------------------------------------------------------

export interface PrivateRedis {
  url: string
  port: number
  /** Kills it at once (SIGKILL: an outage, not a shutdown). */
  stop(): Promise<void>
  /** Starts it again on the same port, empty. */
  start(): Promise<void>
}

/**
 * A redis-server of the test's own, which it may stop and start. It runs under a small shell
 * that kills it when the test process's end of the pipe closes, so it never outlives the test.
 */
export async function startPrivateRedis(t: Test): Promise<PrivateRedis> {
  const port = await freePort()
  let wrapper: ChildProcess | undefined
  let pid = 0
  let exited: Promise<void> = Promise.resolve()
  const kill = () => {
    if (!wrapper || !pid) return
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
  killers.add(kill)
  const script = 'redis-server "$@" & r=$!; echo "pid $r"; read _; kill -9 $r 2>/dev/null; wait $r'
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  const redis: PrivateRedis = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async stop() {
      if (!wrapper) return
      kill()
      wrapper.stdin!.end()
      await exited
      wrapper = undefined
      pid = 0
    },
    async start() {
      await redis.stop()
      const w = spawn('sh', ['-c', script, 'sh', ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
      wrapper = w
      exited = new Promise((resolve) => w.once('exit', () => resolve()))
      let out = ''
      w.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()))
      w.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()))
      await waitUntil(() => /pid (\d+)/.test(out), 5000)
      pid = Number(/pid (\d+)/.exec(out)![1])
      const deadline = Date.now() + 5000
      while (!(await redisPing(port))) {
        if (Date.now() > deadline) throw new Error(`private redis did not start on ${port}:\n${out}`)
        await new Promise((r) => setTimeout(r, 20))
      }
    },
  }
  t.teardown(async () => {
    await redis.stop()
    killers.delete(kill)
  })
  await redis.start()
  return redis
}

function redisPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1')
    s.setTimeout(500, () => (s.destroy(), resolve(false)))
    s.once('error', () => resolve(false))
    s.once('connect', () => s.write('PING\r\n'))
    s.once('data', (d) => (s.destroy(), resolve(d.toString().startsWith('+PONG'))))
  })
}

// ---- a device -------------------------------------------------------------------------------

export interface DeviceOptions {
  /** Reconnect to another node when the socket ends (default true). */
  reconnect?: boolean
}

export interface AckedOp {
  mid: number
  id: string
  seq: number
  dup: boolean
  /** Sends it took: above 1 means the outbox was replayed after the socket was lost. */
  sends: number
}

/**
 * A device as an app would run it: the SDK's SyncClient, its first socket on node `node` and
 * the other nodes tried in turn when one is lost (reconnect by cursor, outbox replayed with the
 * same mids). What the hub sent is recorded from the raw frames of each socket, before the SDK
 * dedupes anything, so a hub that sent a change twice or out of order is still caught. REST
 * fallback is off: these tests measure the hub's sockets.
 */
export class Device {
  readonly seqs: number[] = []
  readonly idAt = new Map<number, string>()
  /** Frames whose `from` was not the previous `to` (across sockets). */
  readonly chainBreaks: string[] = []
  /** Each bye with how many of this device's pushes were acked when it came. */
  readonly byes: Array<{ node: string; frame: ByeFrame; acked: number }> = []
  readonly closes: Array<{ node: string; code: number }> = []
  readonly acked: AckedOp[] = []
  /** Answers with ok:false, and requests the hub refused with an error frame. */
  readonly failures: string[] = []
  /** Node ids of every socket, in order. */
  readonly visited: string[] = []
  /** `to` of the last `changes` frame received. */
  cursor = 0
  private pushed = 0
  private current: HubNode | undefined
  private readonly sends = new Map<number, number>()
  readonly client: SyncClient

  constructor(
    private readonly nodes: HubNode[],
    readonly user: ProcUser,
    readonly id: string,
    first: number,
    private readonly opts: DeviceOptions = {},
  ) {
    const order = nodes.map((_, k) => nodes[(first + k) % nodes.length]!)
    const nodeOf = (url: string) => order.find((n) => url.startsWith(n.url.replace(/^http/, 'ws')) || url.startsWith(n.url))
    this.client = new SyncClient({
      url: order.map((n) => n.url),
      auth: { getToken: async () => user.token },
      device: { id },
      reconnect: { baseMs: 50, maxMs: 500 },
      fallbackAfter: Number.POSITIVE_INFINITY,
      handshakeTimeoutMs: 5000,
    })
    this.client.on('frame', ({ frame, url }) => {
      if (frame.t !== 'changes') return
      const node = nodeOf(url)?.id ?? url
      if (frame.from !== this.cursor) this.chainBreaks.push(`${node}: from ${frame.from} after ${this.cursor}`)
      for (const c of frame.items) {
        this.seqs.push(c.seq)
        this.idAt.set(c.seq, c.id)
      }
      this.cursor = frame.to
    })
    this.client.on('connection', (e) => {
      const node = nodeOf(e.url)
      if (e.event === 'open') {
        this.current = node
        this.visited.push(node?.id ?? e.url)
        return
      }
      if (e.bye) this.byes.push({ node: node?.id ?? e.url, frame: e.bye, acked: this.acked.length })
      this.closes.push({ node: node?.id ?? e.url, code: e.code })
      if (this.opts.reconnect === false) void this.client.stop()
    })
    this.client.on('sent', ({ mids }) => {
      for (const mid of mids) this.sends.set(mid, (this.sends.get(mid) ?? 0) + 1)
    })
  }

  get node(): HubNode | undefined {
    return this.current
  }

  /** Starts the client; resolves once its first subscription is synced (rejects if the first socket ends before). */
  async open(): Promise<void> {
    await this.client.start()
    await new Promise<void>((resolve, reject) => {
      const offs = [
        this.client.on('synced', () => (offs.forEach((f) => f()), resolve())),
        this.client.on('status', (s) => s === 'stopped' && (offs.forEach((f) => f()), reject(new Error(`${this.id}: stopped before it synced`)))),
        this.client.on('connection', (e) => {
          if (e.event === 'close' && this.opts.reconnect === false) (offs.forEach((f) => f()), reject(new Error(`${this.id}: the socket closed (${e.code}) before it synced`)))
        }),
        this.client.on('error', (e) => {
          if (this.opts.reconnect === false && e.code === 'unavailable') (offs.forEach((f) => f()), reject(new Error(`${this.id}: ${e.message}`)))
        }),
      ]
    }).catch(async (err) => {
      await this.client.stop()
      throw err
    })
  }

  /** Pushes one message through the outbox; resolves with its ack. */
  async push(id: string, onSent?: () => void): Promise<AckedOp> {
    const { mid, result } = await this.client.enqueue({ op: 'put', collection: 'messages', id, data: { conversation_id: 'c1', role: 'user', content: `message ${id}` } })
    if (onSent) {
      const off = this.client.on('sent', ({ mids }) => mids.includes(mid) && (off(), onSent()))
    }
    try {
      const r = await result
      if (!r.ok) throw new Error('not ok')
      if (r.seq === undefined) this.failures.push(`mid ${mid}: ok without a seq ${JSON.stringify(r)}`)
      const acked = { mid, id, seq: r.seq ?? -1, dup: r.dup === true, sends: this.sends.get(mid) ?? 0 }
      this.acked.push(acked)
      return acked
    } catch (err) {
      this.failures.push(`mid ${mid}: ${(err as { code?: string }).code ?? ''} ${(err as Error).message}`)
      throw err
    }
  }

  /** Pushes `count` messages one after another with `pauseMs` between them. */
  async pushMany(count: number, pauseMs: number, onSent?: (k: number) => void): Promise<void> {
    for (let k = 0; k < count; k++) {
      await this.push(`${this.id}-${++this.pushed}`, onSent && (() => onSent(k)))
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs))
    }
  }

  close(): void {
    void this.client.stop()
  }
}

// ---- assertions -----------------------------------------------------------------------------

/**
 * What is wrong with a device's stream, given the user's head: it must hold every seq from 1
 * to head once, in order, every frame chaining on the previous one, and every acked op of the
 * user's devices at its seq. Empty when all is well (at most a few lines otherwise).
 */
export function streamProblems(d: Device, head: number, acked: AckedOp[]): string[] {
  const problems: string[] = [...d.chainBreaks.slice(0, 3)]
  for (let i = 1; i < d.seqs.length && problems.length < 5; i++) {
    if (d.seqs[i]! <= d.seqs[i - 1]!) problems.push(`seq ${d.seqs[i]} after ${d.seqs[i - 1]} (duplicate or out of order)`)
  }
  const seen = new Set(d.seqs)
  const missing = Array.from({ length: head }, (_, i) => i + 1).filter((s) => !seen.has(s))
  if (missing.length > 0) problems.push(`${missing.length} seqs missing up to ${head}, first ${missing.slice(0, 5).join(', ')}`)
  if (d.seqs.some((s) => s > head)) problems.push(`seqs beyond the head ${head}`)
  const wrong = acked.filter((a) => d.idAt.get(a.seq) !== a.id)
  if (wrong.length > 0) problems.push(`${wrong.length} acked ops not at their seq, first ${JSON.stringify(wrong[0])}`)
  return problems
}

/** How the node's current process ended and how long after `since`, or undefined if it still runs after `ms`. */
export async function exitWithin(node: HubNode, ms: number, since = Date.now()): Promise<(ExitInfo & { ms: number }) | undefined> {
  let timer: NodeJS.Timeout | undefined
  const info = await Promise.race([node.exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))])
  clearTimeout(timer)
  return info && { ...info, ms: Date.now() - since }
}

/** Waits until each device reached its user's head, then checks every stream in full. */
export async function assertComplete(t: Test, c: ProcCluster, users: ProcUser[], devices: Device[], waitMs = 20_000): Promise<void> {
  for (const u of users) {
    const mine = devices.filter((d) => d.user === u)
    const acked = mine.flatMap((d) => d.acked)
    const head = await headOf(c, u)
    // One change per op: a replayed mid that was already applied must not apply again.
    t.equal(head, acked.length, `${u.username}: one change per acked op`)
    await waitUntil(() => mine.every((d) => d.cursor >= head), waitMs).catch(() => {})
    for (const d of mine) {
      t.same(streamProblems(d, head, acked), [], `${d.id}: every change up to ${head} once, in order`)
      t.same(d.failures, [], `${d.id}: every push answered ok`)
    }
  }
}

/** The user's newest seq, from the database (REST status on the first node still running). */
export async function headOf(c: ProcCluster, user: ProcUser): Promise<number> {
  const node = c.nodes.findIndex((n) => n.running)
  const res = await c.rest(node, 'GET', '/v1/sync/status', { user })
  if (res.status !== 200) throw new Error(`status: ${res.status}`)
  return res.json.cursor
}
