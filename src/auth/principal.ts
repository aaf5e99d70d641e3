import type { Role } from './roles.ts'

/** Who a verified access token speaks for. */
export interface Principal {
  userId: string
  username: string
  role: Role
  /** The token's own id (jti), for the logout denylist. */
  tokenId: string
  /** When the access token expires, ms since the epoch. */
  expiresAt: number
}

/** Verifies access tokens; refuses forged, expired, wrong-key, denylisted and disabled users' tokens. */
export interface AccessVerifier {
  /** Resolves the principal or throws HubError `unauthorized` (bad token) / `forbidden` (disabled). */
  verifyAccess(token: string): Promise<Principal>
}
