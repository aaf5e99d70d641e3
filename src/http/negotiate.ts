import type { Context } from 'hono'
import type { z } from 'zod'
import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.ts'
import { HubError } from '../../protocol/errors.ts'
import { parseOrThrow } from '../../protocol/validate.ts'

const MSGPACK = 'application/msgpack'

/** True when the client asked for msgpack answers (`Accept: application/msgpack`). */
export function wantsMsgpack(c: Context): boolean {
  return (c.req.header('accept') ?? '').includes(MSGPACK)
}

/**
 * Reads and validates a request body: JSON by default, msgpack on `Content-Type:
 * application/msgpack`, and the OAuth2 form encoding where a route allows it.
 */
export async function readBody<S extends z.ZodType>(c: Context, schema: S, opts: { maxBytes: number; form?: boolean }): Promise<z.infer<S>> {
  const type = c.req.header('content-type') ?? ''
  const bytes = await readBytes(c.req.raw, opts.maxBytes)
  let value: unknown
  try {
    if (type.includes(MSGPACK)) value = decodeMsgpack(bytes)
    else if (opts.form && type.includes('application/x-www-form-urlencoded')) {
      value = Object.fromEntries(new URLSearchParams(new TextDecoder().decode(bytes)))
    } else value = bytes.byteLength === 0 ? {} : JSON.parse(new TextDecoder().decode(bytes))
  } catch {
    throw new HubError('bad_frame', type.includes(MSGPACK) ? 'body is not valid MessagePack' : 'body is not valid JSON')
  }
  return parseOrThrow(schema, value, 'body')
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
