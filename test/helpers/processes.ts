/**
 * Process-level tests: hub nodes as real processes (scripts/cluster.ts) on a fresh Postgres
 * schema, a Redis of the test's choosing, devices that reconnect and resume by cursor, and a
 * private Redis a test may stop. The machine's shared Postgres and Redis are never stopped.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { connect } from 'node:net'
import type { Test } from 'tap'
import { SyncClient } from '../../src/client/socket-client.ts'
import type { ByeFrame, ChangesFrame } from '../../protocol/frames.ts'
import type { Op, Result } from '../../protocol/ops.ts'
import { httpRequest, startHubCluster, type ExitInfo, type HubNode } from '../../scripts/cluster.ts'
import { freePort } from '../../scripts/free-port.ts'
import { TEST_REDIS_URL, freshPostgresSchema, postgresAvailable, redisAvailable } from './services.ts'
import { messagePut } from './ops.ts'
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
  connect(node: number, user: ProcUser, deviceId: string): Promise<SyncClient>
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
  const sockets = new Set<SyncClient>()
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
      const d = new Device(nodes, user, id, o)
      devices.add(d)
      await d.open(node)
      return d
    },
    async connect(node, user, deviceId) {
      const c = await SyncClient.connect(nodes[node]!.wsUrl, { token: user.token, device: { id: deviceId }, timeoutMs: 5000 })
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
 * A device as the app would be: one socket, resumed on another node by cursor (sub since =
 * the last `to` received) when it ends; an outbox whose op is resent with the same mid until
 * acked. Records everything it receives across sockets for the assertions.
 */
export class Device {
  readonly seqs: number[] = []
  readonly idAt = new Map<number, string>()
  /** Frames whose `from` was not the previous `to` (across sockets). */
  readonly chainBreaks: string[] = []
  /** Each bye the device was told, with how many of its pushes were acked by then. */
  readonly byes: Array<{ node: string; frame: ByeFrame; acked: number }> = []
  readonly closes: Array<{ node: string; code: number }> = []
  readonly acked: AckedOp[] = []
  /** Answers with ok:false, and requests the hub refused with an error frame. */
  readonly failures: string[] = []
  /** Node ids of every socket, in order. */
  readonly visited: string[] = []
  cursor = 0
  private mid = 0
  private socket: SyncClient | undefined
  private current: HubNode | undefined
  private session: Promise<SyncClient> = Promise.reject(new Error('not connected'))
  private closedByUs = false

  constructor(
    private readonly nodes: HubNode[],
    readonly user: ProcUser,
    readonly id: string,
    private readonly opts: DeviceOptions = {},
  ) {
    this.session.catch(() => {})
  }

  get node(): HubNode | undefined {
    return this.current
  }

  async open(node: number): Promise<void> {
    this.session = this.connectTo(this.nodes[node]!)
    await this.session
  }

  /** Pushes one message, resending it (same mid) until acked; resolves with the ack. */
  async push(id: string, onSent?: () => void): Promise<AckedOp> {
    const op: Op = messagePut(++this.mid, id, 'c1', `message ${id}`)
    for (let sends = 1; ; sends++) {
      if (sends > 20) throw new Error(`${this.id}: mid ${op.mid} still unacked after 20 sends: ${this.failures.slice(-3).join('; ')}`)
      const client = await this.session
      try {
        const pending = client.push([op])
        onSent?.()
        onSent = undefined
        const result = (await pending).results[0] as Result
        if (!result.ok) this.failures.push(`mid ${op.mid}: ${result.code} ${result.message}`)
        else if (result.seq === undefined) this.failures.push(`mid ${op.mid}: ok without a seq ${JSON.stringify(result)}`)
        const acked = { mid: op.mid, id, seq: (result.ok && result.seq) || -1, dup: result.ok && result.dup === true, sends }
        this.acked.push(acked)
        return acked
      } catch (err) {
        if (this.closedByUs) throw err
        if ((err as { code?: string }).code) {
          // The hub refused the request (unavailable…): nothing was applied; retry.
          this.failures.push(`mid ${op.mid}: refused ${(err as Error).message}`)
          await new Promise((r) => setTimeout(r, 100))
        } else if (client === this.socket && client.closeCode === undefined) {
          // No answer in time on a socket still open: drop it and resume elsewhere.
          client.kill()
          await client.closed()
        }
      }
    }
  }

  /** Pushes `count` messages one after another with `pauseMs` between them. */
  async pushMany(count: number, pauseMs: number, onSent?: (k: number) => void): Promise<void> {
    for (let k = 0; k < count; k++) {
      await this.push(`${this.id}-${this.mid + 1}`, onSent && (() => onSent(k)))
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs))
    }
  }

  close(): void {
    this.closedByUs = true
    this.socket?.kill()
  }

  private async connectTo(node: HubNode): Promise<SyncClient> {
    const client = await SyncClient.connect(node.wsUrl, { token: this.user.token, device: { id: this.id }, timeoutMs: 5000 })
    if (this.closedByUs) {
      client.kill()
      throw new Error('device closed')
    }
    let bye: ByeFrame | undefined
    client.on('changes', (f: ChangesFrame) => {
      if (f.from !== this.cursor) this.chainBreaks.push(`${node.id}: from ${f.from} after ${this.cursor}`)
      for (const c of f.items) {
        this.seqs.push(c.seq)
        this.idAt.set(c.seq, c.id)
      }
      this.cursor = f.to
    })
    client.on('bye', (f: ByeFrame) => {
      bye = f
      this.byes.push({ node: node.id, frame: f, acked: this.acked.length })
    })
    client.on('close', (code: number) => {
      this.closes.push({ node: node.id, code })
      if (client !== this.socket || this.closedByUs || this.opts.reconnect === false) return
      // A draining node asks for a pause below retry_ms before reconnecting elsewhere.
      const pause = bye?.retry_ms !== undefined ? Math.random() * bye.retry_ms : 0
      this.session = this.reconnect(node, pause)
      this.session.catch(() => {})
    })
    try {
      await client.subscribe(this.cursor)
    } catch (err) {
      client.kill()
      throw err
    }
    // Only a resumed socket becomes the device's: the close of one that failed on the way is
    // the reconnect loop's business, not a reason to start a second loop.
    if (client.closeCode !== undefined) throw new Error(`${node.id} closed the socket during the resume`)
    this.socket = client
    this.current = node
    this.visited.push(node.id)
    return client
  }

  /** Tries the other nodes in turn (then any) until one takes the socket and the resume. */
  private async reconnect(from: HubNode, pauseMs: number): Promise<SyncClient> {
    await new Promise((r) => setTimeout(r, pauseMs))
    const deadline = Date.now() + 30_000
    for (let round = 0; Date.now() < deadline; round++) {
      for (let k = 1; k <= this.nodes.length; k++) {
        const node = this.nodes[(from.index + k) % this.nodes.length]!
        if (this.closedByUs) throw new Error('device closed')
        try {
          return await this.connectTo(node)
        } catch {
          // down, draining or busy: the next one
        }
      }
      await new Promise((r) => setTimeout(r, Math.min(50 * 2 ** round, 500)))
    }
    throw new Error(`${this.id}: no node took the socket within 30 s`)
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

/** How the node's current process ended, or undefined if it still runs after `ms` (a liveness bound). */
export async function exitWithin(node: HubNode, ms: number): Promise<ExitInfo | undefined> {
  let timer: NodeJS.Timeout | undefined
  const info = await Promise.race([node.exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)))])
  clearTimeout(timer)
  return info
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
