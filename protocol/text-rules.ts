import { z } from 'zod'

/**
 * What text the hub takes. Every string a client sends (ids, map keys, record data, device
 * fields, REST bodies, backup lines) must be well-formed Unicode: a lone UTF-16 surrogate
 * (possible in JSON through a `\ud800` escape) or a MessagePack str whose bytes are not UTF-8
 * would be stored as something other than what was sent, or relayed to other devices as bytes
 * they cannot decode. Strings the store keeps as text (ids, device names, usernames…) must
 * not hold NUL either: Postgres text cannot. Record data is stored as MessagePack bytes, so NUL
 * inside it is kept as sent.
 */
export const LONE_SURROGATE = 'not well-formed Unicode (a lone UTF-16 surrogate)'
export const NOT_UTF8 = 'not valid UTF-8'
export const HAS_NUL = 'must not contain NUL (U+0000)'

const LONE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/
const nativeWellFormed = typeof (String.prototype as { isWellFormed?: unknown }).isWellFormed === 'function'

/** True when `s` holds no lone surrogate (String.prototype.isWellFormed where the runtime has it). */
export function isWellFormed(s: string): boolean {
  return nativeWellFormed ? (s as unknown as { isWellFormed(): boolean }).isWellFormed() : !LONE.test(s)
}

/** A text field the store keeps as text: well-formed and without NUL (one check: ids are on the push path). */
export function storedText<T extends z.ZodString>(schema: T): T {
  return schema.check((ctx) => {
    const s = ctx.value
    const message = s.includes('\0') ? HAS_NUL : isWellFormed(s) ? undefined : LONE_SURROGATE
    if (message !== undefined) ctx.issues.push({ code: 'custom', message, input: s })
  }) as T
}

/**
 * The path (`ops.0.data.title`) of the first map key or string inside a decoded value that is
 * not well-formed; undefined when there is none. Iterative, so any depth is safe.
 */
export function illFormedPath(value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, '']]
  while (stack.length > 0) {
    const [v, path] = stack.pop()!
    if (typeof v === 'string') {
      if (!isWellFormed(v)) return path || '(the value)'
      continue
    }
    if (v === null || typeof v !== 'object' || v instanceof Uint8Array) continue
    const entries: Array<[string, unknown]> = Array.isArray(v) ? v.map((x, i) => [String(i), x]) : Object.entries(v)
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, child] = entries[i]!
      const at = path ? `${path}.${k}` : k
      if (!isWellFormed(k)) return `${path ? `${path}.` : ''}(a key)`
      stack.push([child, at])
    }
  }
  return undefined
}

/**
 * True when bytes [start, end) of `buf` are UTF-8 as RFC 3629 defines it: no overlong forms, no
 * surrogates (ED A0..BF), nothing above U+10FFFF. ASCII costs one comparison per byte.
 */
export function isUtf8(buf: Uint8Array, start: number, end: number): boolean {
  let i = start
  while (i < end) {
    const b = buf[i]!
    if (b < 0x80) {
      i++
      continue
    }
    if (b < 0xc2 || b > 0xf4) return false
    const n = b < 0xe0 ? 2 : b < 0xf0 ? 3 : 4
    if (i + n > end) return false
    const b1 = buf[i + 1]!
    if ((b1 & 0xc0) !== 0x80) return false
    if (n >= 3) {
      if ((buf[i + 2]! & 0xc0) !== 0x80) return false
      if (b === 0xe0 && b1 < 0xa0) return false // overlong
      if (b === 0xed && b1 >= 0xa0) return false // a surrogate
      if (b === 0xf0 && b1 < 0x90) return false // overlong
      if (b === 0xf4 && b1 >= 0x90) return false // above U+10FFFF
      if (n === 4 && (buf[i + 3]! & 0xc0) !== 0x80) return false
    }
    i += n
  }
  return true
}
