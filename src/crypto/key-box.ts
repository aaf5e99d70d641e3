import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { deriveKey, KEY_PURPOSE } from './keys.ts'

const PREFIX = 'enc:v1:'
const IV_BYTES = 12
const TAG_BYTES = 16

/** Thrown when a sealed value cannot be opened: unknown key id, malformed, or tampered with. */
export class KeyBoxError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'KeyBoxError'
  }
}

/**
 * AES-256-GCM for secrets at rest (provider keys). A sealed value is one self-describing string,
 * `enc:v1:<kid>:<iv>:<ciphertext+tag>` (base64url), so it fits any text or msgpack field. The key
 * is derived from SYNCHUB_SECRET; `kid` names it (a hash of the key, never the key) so that after
 * a rotation values sealed under SYNCHUB_SECRET_PREVIOUS still open until re-encrypted.
 */
export class KeyBox {
  /** Key id of the current secret: everything is sealed under it. */
  readonly kid: string
  private readonly keys = new Map<string, Uint8Array>()

  constructor(secret: string, previousSecret?: string) {
    const current = deriveKey(secret, KEY_PURPOSE.keyEncryption)
    this.kid = keyId(current)
    this.keys.set(this.kid, current)
    if (previousSecret !== undefined) {
      const previous = deriveKey(previousSecret, KEY_PURPOSE.keyEncryption)
      if (!this.keys.has(keyId(previous))) this.keys.set(keyId(previous), previous)
    }
  }

  seal(plaintext: Uint8Array): string {
    const iv = randomBytes(IV_BYTES)
    const header = PREFIX + this.kid
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.kid)!, iv)
    // The header is authenticated too: a value cannot be relabelled with another kid or version.
    cipher.setAAD(Buffer.from(header))
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()])
    return `${header}:${iv.toString('base64url')}:${body.toString('base64url')}`
  }

  open(sealed: string): Uint8Array {
    const parts = sealed.startsWith(PREFIX) ? sealed.slice(PREFIX.length).split(':') : []
    if (parts.length !== 3) throw new KeyBoxError('not a sealed value (expected enc:v1:<kid>:<iv>:<data>)')
    const [kid, ivText, bodyText] = parts as [string, string, string]
    const key = this.keys.get(kid)
    if (!key) {
      throw new KeyBoxError(`sealed under key id ${kid}, which is neither SYNCHUB_SECRET's nor SYNCHUB_SECRET_PREVIOUS's (${[...this.keys.keys()].join(', ')})`)
    }
    const iv = Buffer.from(ivText, 'base64url')
    const body = Buffer.from(bodyText, 'base64url')
    if (iv.byteLength !== IV_BYTES || body.byteLength < TAG_BYTES) throw new KeyBoxError(`sealed value under key id ${kid} is malformed`)
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, iv)
      decipher.setAAD(Buffer.from(PREFIX + kid))
      decipher.setAuthTag(body.subarray(body.byteLength - TAG_BYTES))
      return new Uint8Array(Buffer.concat([decipher.update(body.subarray(0, body.byteLength - TAG_BYTES)), decipher.final()]))
    } catch {
      throw new KeyBoxError(`sealed value under key id ${kid} failed authentication (corrupted or tampered with)`)
    }
  }

  /** The key id a sealed value names, or undefined when the value is not sealed. */
  static kidOf(value: unknown): string | undefined {
    if (typeof value !== 'string' || !value.startsWith(PREFIX)) return undefined
    return value.slice(PREFIX.length).split(':', 1)[0]
  }
}

/** A short public name for a key: 48 bits of SHA-256 under its own label. */
function keyId(key: Uint8Array): string {
  return createHash('sha256').update('synchub/kid/v1').update(key).digest().subarray(0, 6).toString('base64url')
}
