import { randomBytes } from 'node:crypto'
import { startServerProcess } from '../hub-process.ts'
import { freePort } from '../../scripts/free-port.ts'
import { freshSchema } from '../postgres.ts'
import type { Scenario, ScenarioContext, Target } from './types.ts'

const PASSWORD = 'bench-password-1'

/** synchub itself (`node bin/synchub.js serve`) on a fresh Postgres schema, with one socket transport. */
export function hubScenario(transport: 'uws' | 'ws'): Scenario {
  return {
    name: transport === 'uws' ? 'hub' : `hub-${transport}`,
    description: `synchub serve, Postgres, in-process bus, SYNCHUB_TRANSPORT=${transport}`,
    start: (ctx) => startHub(ctx, transport),
  }
}

async function startHub(ctx: ScenarioContext, transport: 'uws' | 'ws'): Promise<Target> {
  const db = await freshSchema()
  try {
    const port = await freePort()
    const proc = await startServerProcess({
      name: 'synchub',
      args: ['bin/synchub.js', 'serve'],
      env: {
        DATABASE_URL: db.url,
        PORT: String(port),
        HOST: '127.0.0.1',
        SYNCHUB_SECRET: randomBytes(32).toString('hex'),
        SYNCHUB_REGISTRATION: 'open',
        SYNCHUB_TRANSPORT: transport,
        // Every bench user registers and logs in from 127.0.0.1 within seconds: lift the auth rate limits.
        SYNCHUB_AUTH_RATE_IP: '1000000',
        SYNCHUB_AUTH_RATE_USER: '1000',
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      },
      cwd: ctx.root,
      port,
      readyTimeoutMs: 60_000,
    })
    try {
      const tag = Date.now().toString(36)
      const started = performance.now()
      const tokens = new Array<string>(ctx.users)
      let next = 0
      // A few at a time: password hashing is deliberately slow.
      const worker = async () => {
        while (next < ctx.users) {
          const i = next++
          tokens[i] = await register(proc.baseUrl, `bench_${tag}_${i}`)
        }
      }
      await Promise.all(Array.from({ length: 4 }, worker))
      ctx.log(`  ${ctx.users} users registered and logged in in ${((performance.now() - started) / 1000).toFixed(1)} s`)
      return {
        wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
        tokens,
        process: proc,
        verify: (acked) => countStored(proc.baseUrl, tokens, acked),
        postgresPids: () => db.serverPids(),
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
async function countStored(base: string, tokens: string[], acked: number): Promise<{ ok: boolean; detail: string }> {
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
