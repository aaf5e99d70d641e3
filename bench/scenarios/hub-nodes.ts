import { randomBytes } from 'node:crypto'
import { serverGroup, startServerProcesses, type ServerProcess } from '../hub-process.ts'
import { freePort } from '../../scripts/free-port.ts'
import { freshSchema, reserveWal } from '../postgres.ts'
import type { ScenarioContext, Target, Verification } from './types.ts'

const PASSWORD = 'bench-password-1'

/**
 * WAL one message push writes, with room to spare: measured at about 1.7 KiB (pg_current_wal_lsn
 * sampled during a 5,000/s step); more right after a checkpoint, when pages are logged whole.
 */
const WAL_BYTES_PER_PUSH = 4096

/** A started hub: one node or several, with `wsUrls[i]` the socket URL of node i. */
export type HubTarget = Target & { wsUrls: string[] }

/**
 * `node bin/synchub.js serve` once per entry of `nodes` (each entry: that node's own environment),
 * all on one fresh Postgres schema with one secret, so a token from any node works on every node.
 * Registers and logs in ctx.users users, spread over the nodes.
 */
export async function startHubNodes(ctx: ScenarioContext, nodes: Array<Record<string, string>>): Promise<HubTarget> {
  const db = await freshSchema()
  try {
    const secret = randomBytes(32).toString('hex')
    const ports = await Promise.all(nodes.map(() => freePort()))
    const procs = await startServerProcesses(
      nodes.map((nodeEnv, i) => ({
        name: nodes.length > 1 ? `synchub node ${i}` : 'synchub',
        args: ['bin/synchub.js', 'serve'],
        env: {
          DATABASE_URL: db.url,
          PORT: String(ports[i]),
          HOST: '127.0.0.1',
          SYNCHUB_SECRET: secret,
          SYNCHUB_REGISTRATION: 'open',
          // Every bench user registers and logs in from 127.0.0.1 within seconds: lift the auth rate limits.
          SYNCHUB_AUTH_RATE_IP: '1000000',
          SYNCHUB_AUTH_RATE_USER: '1000',
          LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
          ...nodeEnv,
        },
        cwd: ctx.root,
        port: ports[i]!,
        readyTimeoutMs: 60_000,
      })),
    )
    const proc = procs.length > 1 ? serverGroup(procs) : procs[0]!
    try {
      const tokens = await registerUsers(ctx, procs)
      return {
        wsUrl: wsUrlOf(procs[0]!),
        wsUrls: procs.map(wsUrlOf),
        tokens,
        process: proc,
        verify: (acked) => countStored(procs[0]!.baseUrl, tokens, acked),
        postgresPids: () => db.serverPids(),
        prepareStep: (rate, seconds) => reserveWal(rate * seconds * WAL_BYTES_PER_PUSH),
        async stop() {
          await proc.stop()
          await db.drop()
        },
      }
    } catch (err) {
      await proc.stop()
      throw err
    }
  } catch (err) {
    await db.drop()
    throw err
  }
}

const wsUrlOf = (p: ServerProcess) => `ws://127.0.0.1:${p.port}/v1/ws`

/** A few at a time (password hashing is deliberately slow), round-robin over the nodes. */
async function registerUsers(ctx: ScenarioContext, procs: ServerProcess[]): Promise<string[]> {
  const tag = Date.now().toString(36)
  const started = performance.now()
  const tokens = new Array<string>(ctx.users)
  let next = 0
  const worker = async (w: number) => {
    const base = procs[w % procs.length]!.baseUrl
    while (next < ctx.users) {
      const i = next++
      tokens[i] = await register(base, `bench_${tag}_${i}`)
    }
  }
  await Promise.all(Array.from({ length: 4 }, (_, w) => worker(w)))
  ctx.log(`  ${ctx.users} users registered and logged in in ${((performance.now() - started) / 1000).toFixed(1)} s`)
  return tokens
}

async function register(base: string, username: string): Promise<string> {
  await postJson(base, '/v1/auth/register', { username, password: PASSWORD }, [201])
  const login = (await postJson(base, '/v1/auth/login', { username, password: PASSWORD }, [200])) as { access_token: string }
  return login.access_token
}

async function postJson(base: string, path: string, body: unknown, ok: number[]): Promise<unknown> {
  const res = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  })
  const text = await res.text()
  if (!ok.includes(res.status)) throw new Error(`POST ${path} answered ${res.status}: ${text.slice(0, 300)}`)
  return JSON.parse(text)
}

/** Durability check through the public API: live `messages` per user, summed, against the acks. Every ack must be stored. */
async function countStored(base: string, tokens: string[], acked: number): Promise<Verification> {
  let stored = 0
  for (const token of tokens) {
    const res = await fetch(`${base}/v1/sync/status`, {
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
      signal: AbortSignal.timeout(15_000),
    })
    if (res.status !== 200) return { ok: false, detail: `GET /v1/sync/status answered ${res.status}: ${(await res.text()).slice(0, 200)}` }
    const status = (await res.json()) as { collections?: Record<string, { count: number }> }
    stored += status.collections?.messages?.count ?? 0
  }
  // More stored than acked is no loss: pushes the bench stopped waiting for committed later.
  const extra = stored > acked ? ` (${stored - acked} committed after the bench stopped waiting for their acks)` : ''
  return { ok: stored >= acked, detail: `${stored} messages stored for ${acked} acked pushes${extra}` }
}
