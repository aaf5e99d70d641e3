import { Hono, type Context } from 'hono'
import { LoginBody, LogoutBody, PasswordGrantForm, RefreshBody, RegisterBody } from '../../protocol/rest.ts'
import { Id } from '../../protocol/records.ts'
import type { LoginThrottle } from '../auth/login-throttle.ts'
import type { AuthService } from '../auth/service.ts'
import { clientAddress, requireAuth, type HubEnv } from './env.ts'
import { readBody, reply } from './negotiate.ts'

export interface AuthRoutesOptions {
  maxBodyBytes: number
  /** Login and registration attempts counted per client address (behind a trusted proxy: the one it saw) and username. */
  rateLimit?: { throttle: LoginThrottle; trustProxy: boolean }
}

const FORM = 'application/x-www-form-urlencoded'

/** Registration, login (JSON or the OAuth2 password form), refresh rotation, logout and me. */
export function authRoutes(auth: AuthService, opts: AuthRoutesOptions): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  const limit = { maxBytes: opts.maxBodyBytes }
  const throttle = async (c: Context<HubEnv>, action: 'login' | 'register', username: string) => {
    const rl = opts.rateLimit
    if (rl) await rl.throttle.attempt(action, clientAddress(c, rl.trustProxy), username)
  }

  app.post('/v1/auth/register', async (c) => {
    const body = await readBody(c, RegisterBody, limit)
    await throttle(c, 'register', body.username)
    return reply(c, { user: await auth.register(body) }, 201)
  })

  app.post('/v1/auth/login', async (c) => {
    const isForm = (c.req.header('content-type') ?? '').includes(FORM)
    const body = await readBody(c, isForm ? PasswordGrantForm : LoginBody, { ...limit, form: true })
    await throttle(c, 'login', body.username)
    // The device is optional at login; when given, its refresh tokens are tagged with it.
    const device = Id.safeParse(c.req.header('device-id'))
    return noStore(reply(c, await auth.login(body, device.success ? device.data : undefined)))
  })

  app.post('/v1/auth/refresh', async (c) => {
    const body = await readBody(c, RefreshBody, limit)
    return noStore(reply(c, await auth.refresh(body.refresh_token)))
  })

  app.post('/v1/auth/logout', async (c) => {
    const body = await readBody(c, LogoutBody, limit)
    await auth.logout(body.refresh_token, bearerOf(c))
    return c.body(null, 204)
  })

  app.get('/v1/auth/me', requireAuth(auth), async (c) => reply(c, await auth.me(c.get('principal').userId)))

  return app
}

/** Token answers must not be cached by anything in between (RFC 6749 §5.1). */
function noStore(res: Response): Response {
  res.headers.set('cache-control', 'no-store')
  return res
}

function bearerOf(c: Context<HubEnv>): string | undefined {
  return /^Bearer\s+(\S+)$/i.exec(c.req.header('authorization') ?? '')?.[1]
}
