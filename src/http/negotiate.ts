import type { Context } from 'hono'
import type { z } from 'zod'
import { decodeInput, encodeMsgpack } from '../../protocol/codec.ts'
import { HubError } from '../../protocol/errors.ts'
import { parseOrThrow } from '../../protocol/validate.ts'

const MSGPACK = 'application/msgpack'

/** True when the client asked for msgpack answers (`Accept: application/msgpack`). */
export function wantsMsgpack(c: Context): boolean {
  return (c.req.header('accept') ?? '').includes(MSGPACK)
}

/**
 * Reads and validates a request body: JSON by default, msgpack on `Content-Type:
 * application/msgpack`, and the OAuth2 form encoding where a route allows it. Text must be
 * well-formed (decodeInput): a JSON body that is not UTF-8 does not parse (`bad_frame`), and a
 * str that is not UTF-8 or an escaped lone surrogate is `invalid`, naming the field.
 */
export async function readBody<S extends z.ZodType>(c: Context, schema: S, opts: { maxBytes: number; form?: boolean }): Promise<z.infer<S>> {
  const type = c.req.header('content-type') ?? ''
  const bytes = await readBytes(c.req.raw, opts.maxBytes)
  const form = opts.form === true && type.includes('application/x-www-form-urlencoded')
  let value: unknown
  try {
    if (type.includes(MSGPACK)) value = decodeInput(bytes, false)
    else if (form) value = parseForm(bytes)
    else value = bytes.byteLength === 0 ? {} : decodeInput(bytes, true)
  } catch (err) {
    if (err instanceof HubError) throw err
    throw new HubError('bad_frame', `body is not valid ${type.includes(MSGPACK) ? 'MessagePack' : form ? 'UTF-8 form data' : 'UTF-8 JSON'}`)
  }
  return parseOrThrow(schema, value, 'body')
}

/**
 * `application/x-www-form-urlencoded` as RFC 1866 and the URL standard write it, but strict:
 * a percent-escape that does not decode to UTF-8 throws (URLSearchParams would put U+FFFD in
 * its place, so the value read would not be the one sent). A repeated name keeps its last value.
 */
function parseForm(bytes: Uint8Array): Record<string, string> {
  const form = new Map<string, string>()
  const decode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '))
  for (const pair of new TextDecoder('utf-8', { fatal: true }).decode(bytes).split('&')) {
    if (pair === '') continue
    const eq = pair.indexOf('=')
    form.set(decode(eq < 0 ? pair : pair.slice(0, eq)), eq < 0 ? '' : decode(pair.slice(eq + 1)))
  }
  return Object.fromEntries(form)
}

/**
 * The whole body, refused with `too_large` as soon as it passes `maxBytes`: the transports
 * stream bodies, so reading stops there instead of holding whatever a client sends.
 */
async function readBytes(req: Request, maxBytes: number): Promise<Uint8Array> {
  const tooLarge = () => new HubError('too_large', `body over ${maxBytes} bytes`)
  if (Number(req.headers.get('content-length') ?? 0) > maxBytes) throw tooLarge()
  if (!req.body) return new Uint8Array(0)
  const chunks: Uint8Array[] = []
  let size = 0
  const reader = req.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    size += value.byteLength
    if (size > maxBytes) {
      void reader.cancel().catch(() => {})
      throw tooLarge()
    }
    chunks.push(value)
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)
}

/** Answers with JSON, or msgpack when the client accepts it. */
export function reply(c: Context, body: unknown, status = 200): Response {
  if (wantsMsgpack(c)) {
    return new Response(encodeMsgpack(body) as Uint8Array<ArrayBuffer>, { status, headers: { 'content-type': MSGPACK } })
  }
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })
}

/** The REST error shape `{error:{code, message}}` with the registry's HTTP status. */
export function replyError(c: Context, err: unknown): Response {
  const hubError = err instanceof HubError ? err : new HubError('internal', 'internal error')
  const res = reply(c, { error: { code: hubError.code, message: hubError.message } }, hubError.httpStatus)
  if (hubError.code === 'rate_limited' && typeof (hubError.details as { retryAfterSec?: number })?.retryAfterSec === 'number') {
    res.headers.set('retry-after', String((hubError.details as { retryAfterSec: number }).retryAfterSec))
  }
  return res
}
