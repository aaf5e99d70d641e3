import { hkdfSync } from 'node:crypto'

/**
 * Labels for keys derived from the one operator secret. Each purpose gets an independent key, so
 * the token-signing key and (later) the key-encryption key never coincide even though both come
 * from SYNCHUB_SECRET. Changing a label invalidates everything made with the old key.
 */
export const KEY_PURPOSE = {
  accessToken: 'synchub/access-token/v1',
  keyEncryption: 'synchub/key-encryption/v1',
} as const

export type KeyPurpose = (typeof KEY_PURPOSE)[keyof typeof KEY_PURPOSE]

/** Fewer bytes than this cannot hold 128 bits of entropy, whatever the alphabet. */
export const MIN_SECRET_BYTES = 16
const SALT = 'synchub'

/** HKDF-SHA256 of the operator secret under a purpose label. */
export function deriveKey(secret: string | Uint8Array, purpose: KeyPurpose, length = 32): Uint8Array {
  const ikm = typeof secret === 'string' ? Buffer.from(secret, 'utf8') : secret
  if (ikm.byteLength < MIN_SECRET_BYTES) throw new Error(`the secret must be at least ${MIN_SECRET_BYTES} bytes`)
  return new Uint8Array(hkdfSync('sha256', ikm, SALT, purpose, length))
}
