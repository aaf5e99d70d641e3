import { HubError } from '../../protocol/errors.ts'

export interface Line {
  /** 1-based line number, for messages. */
  n: number
  text: string
}

const NEWLINE = 0x0a
const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Splits a byte stream into lines as it arrives, holding at most one line (plus one chunk) in
 * memory: a line longer than `maxLineBytes` is refused rather than buffered. Lines are split
 * on bytes first and decoded whole, so a character cut between two chunks decodes correctly.
 * Blank lines are skipped; a trailing `\r` is dropped.
 */
export async function* ndjsonLines(chunks: AsyncIterable<Uint8Array>, maxLineBytes: number, onBytes?: (n: number) => void): AsyncGenerator<Line> {
  let pending: Uint8Array[] = []
  let pendingBytes = 0
  let n = 0
  const finish = (tail: Uint8Array): Line | undefined => {
    const parts = pending.length === 0 ? tail : concat([...pending, tail], pendingBytes + tail.byteLength)
    pending = []
    pendingBytes = 0
    n++
    let end = parts.byteLength
    if (end > 0 && parts[end - 1] === 0x0d) end--
    if (end === 0) return undefined
    let text: string
    try {
      text = decoder.decode(parts.subarray(0, end))
    } catch {
      throw new HubError('backup_invalid', `line ${n} is not valid UTF-8`)
    }
    return text.trim() === '' ? undefined : { n, text }
  }
  for await (const chunk of chunks) {
    onBytes?.(chunk.byteLength)
    let start = 0
    for (let i = chunk.indexOf(NEWLINE); i !== -1; i = chunk.indexOf(NEWLINE, start)) {
      if (pendingBytes + i - start > maxLineBytes) throw tooLong(n + 1, maxLineBytes)
      const line = finish(chunk.subarray(start, i))
      start = i + 1
      if (line) yield line
    }
    if (start < chunk.byteLength) {
      // The chunk's buffer may be reused by the transport: keep a copy of the unfinished line.
      const rest = chunk.slice(start)
      pendingBytes += rest.byteLength
      if (pendingBytes > maxLineBytes) throw tooLong(n + 1, maxLineBytes)
      pending.push(rest)
    }
  }
  if (pendingBytes > 0) {
    const line = finish(new Uint8Array(0))
    if (line) yield line
  }
}

function tooLong(n: number, max: number): HubError {
  return new HubError('backup_invalid', `line ${n} is longer than ${max} bytes`)
}

function concat(parts: Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total)
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}
