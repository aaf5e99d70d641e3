import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto'
import { HubError } from '../../protocol/errors.ts'

/** scrypt cost: N = 2^ln. 2^15 with r=8 takes ~32 MiB and tens of milliseconds per hash. */
export interface ScryptParams {
  ln: number
  r: number
  p: number
}

export const DEFAULT_SCRYPT: ScryptParams = { ln: 15, r: 8, p: 1 }

const SALT_BYTES = 16
const KEY_BYTES = 32
/** Bounds on params read back from a stored hash, so a corrupt row cannot demand gigabytes. */
const MAX = { ln: 20, r: 32, p: 16 }
const FORMAT = /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9_-]{16,64})\$([A-Za-z0-9_-]{32,128})$/

/** crypto.scrypt runs on the libuv thread pool, so hashing never blocks the event loop. */
function derive(password: string, salt: Buffer, params: ScryptParams, keyLength: number): Promise<Buffer> {
  const N = 2 ** params.ln
  // Node refuses anything above maxmem (32 MiB by default), which N=2^15, r=8 sits right at.
  const options: ScryptOptions = { N, r: params.r, p: params.p, maxmem: 128 * N * params.r * (params.p + 1) + 1024 * 1024 }
  // NFKC so the same password typed on different keyboards/platforms hashes the same (NIST 800-63B).
  const input = Buffer.from(password.normalize('NFKC'), 'utf8')
  return new Promise((resolve, reject) => scrypt(input, salt, keyLength, options, (err, key) => (err ? reject(err) : resolve(key))))
}

/** Hashes a password into a self-describing string: `$scrypt$ln=15,r=8,p=1$<salt>$<key>` (base64url). */
export async function hashPassword(password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const key = await derive(password, salt, params, KEY_BYTES)
  return `$scrypt$ln=${params.ln},r=${params.r},p=${params.p}$${salt.toString('base64url')}$${key.toString('base64url')}`
}

/** Parses a stored hash; undefined when it is not one this module wrote. */
export function parseHash(stored: string): { params: ScryptParams; salt: Buffer; key: Buffer } | undefined {
  const m = FORMAT.exec(stored)
  if (!m) return undefined
  const params = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) }
  if (params.ln < 1 || params.ln > MAX.ln || params.r < 1 || params.r > MAX.r || params.p < 1 || params.p > MAX.p) return undefined
  return { params, salt: Buffer.from(m[4]!, 'base64url'), key: Buffer.from(m[5]!, 'base64url') }
}

/** Checks a password against a stored hash in constant time; false for a malformed hash. */
export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parsed = parseHash(stored)
  if (!parsed) return false
  const key = await derive(password, parsed.salt, parsed.params, parsed.key.length)
  return timingSafeEqual(key, parsed.key)
}

/** True when a stored hash was made with weaker params than the current ones (rehash on login). */
export function needsRehash(stored: string, params: ScryptParams = DEFAULT_SCRYPT): boolean {
  const parsed = parseHash(stored)
  return !parsed || parsed.params.ln < params.ln || parsed.params.r < params.r || parsed.params.p < params.p
}

/**
 * Why a new password is too easy to guess, or undefined when it is not (NIST SP 800-63B §5.1.1.2:
 * refuse common, repetitive and sequential passwords and context words such as the username;
 * no composition rules, so long passphrases pass). Every route that sets a password (register,
 * and later change and reset) checks it here. Length is the schema's business (8–1024).
 */
export async function newPasswordProblem(password: string, context: { username: string }): Promise<string | undefined> {
  const p = password.normalize('NFKC').toLowerCase()
  const user = context.username.normalize('NFKC').toLowerCase()
  const common = await commonPasswords()
  // A common password dressed up with digits or symbols at either end is still common.
  const core = p.replace(/^[^\p{L}]+|[^\p{L}]+$/gu, '')
  if (common.has(p) || (core.length >= 4 && common.has(core))) return 'it is one of the most common passwords (or one with digits or symbols added)'
  if (new Set(p).size < MIN_DISTINCT) return `it repeats too few characters: use at least ${MIN_DISTINCT} different ones`
  if (isSequence(p)) return 'it is a simple sequence of characters'
  const reversed = [...user].reverse().join('')
  if (p === user || p === reversed) return 'it is the username'
  const shorter = Math.min(p.length, user.length)
  if (shorter >= 4 && (p.includes(user) || p.includes(reversed) || user.includes(p))) return 'it contains the username'
  if (p.includes(SERVICE)) return `it contains the service's name (${SERVICE})`
  return undefined
}

/** Throws `weak_password` naming the rule a new password breaks. */
export async function checkNewPassword(password: string, context: { username: string }): Promise<void> {
  const problem = await newPasswordProblem(password, context)
  if (problem !== undefined) throw new HubError('weak_password', `password: ${problem}; choose another (a few unrelated words make a strong one)`)
}

const MIN_DISTINCT = 5
const SERVICE = 'synchub'

/** Each character one code point after (or before) the previous: abcdefgh, 98765432. */
function isSequence(p: string): boolean {
  const points = [...p].map((c) => c.codePointAt(0)!)
  const step = points[1]! - points[0]!
  return Math.abs(step) === 1 && points.every((c, i) => i === 0 || c - points[i - 1]! === step)
}

/**
 * zxcvbn-ts's list of common passwords (about 49,000, from leaked password sets; MIT), loaded on
 * the first check rather than at start: it takes tens of milliseconds to unpack.
 */
const commonPasswords = loadOnce(() =>
  import('@zxcvbn-ts/language-common').then(({ dictionary }): ReadonlySet<string> => new Set((dictionary['passwords-common'] as string[]).map((w) => w.toLowerCase()))),
)

/** Loads an immutable table the first time it is asked for (the same for every hub in a process). */
function loadOnce<T>(load: () => Promise<T>): () => Promise<T> {
  let loaded: Promise<T> | undefined
  return () => (loaded ??= load())
}
