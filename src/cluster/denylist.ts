/**
 * Access-token ids revoked before they expire (logout). Async so a shared (Redis) adapter can
 * replace the in-process one without changing callers.
 */
export interface TokenDenylist {
  /** Refuses `jti` until `expiresAt` (ms since the epoch); after that the token is dead anyway. */
  add(jti: string, expiresAt: number): Promise<void>
  has(jti: string): Promise<boolean>
}

import { systemClock, type Clock } from '../time/clock.ts'

const SWEEP_EVERY_MS = 60_000

/** One node's denylist: a map pruned of expired ids now and then, so it stays small. */
export function createMemoryDenylist(clock: Clock = systemClock): TokenDenylist {
  const now = clock.now
  const until = new Map<string, number>()
  let lastSweep = now()
  const sweep = () => {
    const t = now()
    if (t - lastSweep < SWEEP_EVERY_MS) return
    lastSweep = t
    for (const [jti, exp] of until) if (exp <= t) until.delete(jti)
  }
  return {
    async add(jti, expiresAt) {
      sweep()
      if (expiresAt > now()) until.set(jti, expiresAt)
    },
    async has(jti) {
      const exp = until.get(jti)
      if (exp === undefined) return false
      if (exp > now()) return true
      until.delete(jti)
      return false
    },
  }
}
