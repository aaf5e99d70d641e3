import type { RateLimiter } from '../cluster/rate-limit.ts'

const MINUTE = 60_000

/** Guessing passwords and mass registration are slowed per client address and per account name. */
export class LoginThrottle {
  constructor(private readonly opts: { limiter: RateLimiter; perIp: number; perUser: number }) {}

  /** Counts one attempt; throws `rate_limited` (with the seconds to wait) past either limit per minute. */
  async attempt(action: 'login' | 'register', address: string, username: string): Promise<void> {
    await this.opts.limiter.hit(`${action}:ip:${address}`, this.opts.perIp, MINUTE)
    await this.opts.limiter.hit(`${action}:user:${username.toLowerCase()}`, this.opts.perUser, MINUTE)
  }
}
