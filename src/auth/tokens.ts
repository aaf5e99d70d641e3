import { createHash, randomBytes, randomUUID } from 'node:crypto'
import { SignJWT, errors, jwtVerify } from 'jose'
import { z } from 'zod'
import { HubError } from '../../protocol/errors.ts'
import { Role as RoleSchema } from '../../protocol/rest.ts'
import { KEY_PURPOSE, deriveKey } from '../crypto/keys.ts'
import type { Role } from './roles.ts'

/** What the hub puts in an access token and expects back. */
export interface AccessClaims {
  sub: string
  name: string
  role: Role
  jti: string
  /** Seconds since the epoch, as JWT has it. */
  iat: number
  exp: number
}

export const TOKEN_ISSUER = 'synchub'
export const TOKEN_AUDIENCE = 'synchub'
/** RFC 9068's type for access tokens: a JWT minted for another use is not accepted as one. */
const TOKEN_TYPE = 'at+jwt'
const ALG = 'HS256'

const Claims = z.object({
  sub: z.string().min(1),
  name: z.string(),
  role: RoleSchema,
  jti: z.string().min(1),
  iat: z.number(),
  exp: z.number(),
})

export interface AccessTokenSigner {
  /** Signs a token for the user that expires `ttlSec` from now. */
  sign(user: { id: string; username: string; role: Role }, ttlSec: number): Promise<{ token: string; claims: AccessClaims }>
  /** The token's claims, or HubError `unauthorized` for anything forged, expired, foreign or malformed. */
  verify(token: string): Promise<AccessClaims>
}

/** HS256 under a key derived from the secret; verification pins the algorithm, issuer, audience and type. */
export function createAccessTokenSigner(secret: string | Uint8Array, now: () => number = Date.now): AccessTokenSigner {
  const key = deriveKey(secret, KEY_PURPOSE.accessToken)
  return {
    async sign(user, ttlSec) {
      const iat = Math.floor(now() / 1000)
      const claims: AccessClaims = { sub: user.id, name: user.username, role: user.role, jti: randomUUID(), iat, exp: iat + ttlSec }
      const token = await new SignJWT({ name: claims.name, role: claims.role })
        .setProtectedHeader({ alg: ALG, typ: TOKEN_TYPE })
        .setIssuer(TOKEN_ISSUER)
        .setAudience(TOKEN_AUDIENCE)
        .setSubject(claims.sub)
        .setJti(claims.jti)
        .setIssuedAt(claims.iat)
        .setExpirationTime(claims.exp)
        .sign(key)
      return { token, claims }
    },
    async verify(token) {
      let payload: unknown
      try {
        ;({ payload } = await jwtVerify(token, key, {
          algorithms: [ALG],
          issuer: TOKEN_ISSUER,
          audience: TOKEN_AUDIENCE,
          typ: TOKEN_TYPE,
          requiredClaims: ['sub', 'jti', 'iat', 'exp'],
          currentDate: new Date(now()),
        }))
      } catch (err) {
        // No clock tolerance: one issuer, and a socket is closed exactly at `exp`.
        throw new HubError('unauthorized', err instanceof errors.JWTExpired ? 'access token expired' : 'invalid access token')
      }
      const claims = Claims.safeParse(payload)
      if (!claims.success) throw new HubError('unauthorized', 'invalid access token')
      return claims.data
    },
  }
}

const REFRESH_BYTES = 32

/** A new opaque refresh token: 32 random bytes, base64url. Only its hash is stored. */
export function newRefreshToken(): string {
  return randomBytes(REFRESH_BYTES).toString('base64url')
}

/** SHA-256 (hex) of a refresh token: the lookup key in refresh_tokens; a plain hash suffices for 256 random bits. */
export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex')
}
