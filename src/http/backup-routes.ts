import { Hono } from 'hono'
import { BACKUP_MEDIA_TYPE, ExportQuery, ImportQuery } from '../../protocol/backup.ts'
import { Id } from '../../protocol/records.ts'
import { HubError } from '../../protocol/errors.ts'
import { parseOrThrow } from '../../protocol/validate.ts'
import type { AccessVerifier } from '../auth/principal.ts'
import { textStream } from '../sync/backup-export.ts'
import type { Backups } from '../sync/backups.ts'
import type { Clock } from '../time/clock.ts'
import { requireAuth, type HubEnv } from './env.ts'
import { reply } from './negotiate.ts'

export interface BackupRoutesDeps {
  verifier: AccessVerifier
  backups: Backups
  /** A declared upload over this is refused before it is read. */
  maxImportBytes: number
  /** Paces an import's progress lines. */
  clock: Clock
  /** An import that failed for a reason not the client's, once its answer has started streaming. */
  onInternalError?: (err: unknown) => void
}

/** The user's own backup: streamed out page by page, streamed in line by line. */
export function backupRoutes(deps: BackupRoutesDeps): Hono<HubEnv> {
  const app = new Hono<HubEnv>()
  app.use('/v1/export', requireAuth(deps.verifier))
  app.use('/v1/import', requireAuth(deps.verifier))

  app.get('/v1/export', async (c) => {
    const q = parseOrThrow(ExportQuery, c.req.query(), 'query')
    const principal = c.get('principal')
    const prepared = await deps.backups.export({ id: principal.userId, username: principal.username }, { scopes: q.scopes })
    const day = new Date(prepared.header.exported_at).toISOString().slice(0, 10)
    return new Response(textStream(prepared.lines), {
      headers: {
        'content-type': `${BACKUP_MEDIA_TYPE}; charset=utf-8`,
        'content-disposition': `attachment; filename="synchub-${safeName(principal.username)}-${day}.ndjson"`,
        // It holds the user's provider keys in plaintext.
        'cache-control': 'no-store',
      },
    })
  })

  app.post('/v1/import', async (c) => {
    // A declared size over the limit is answered at once, before a byte of it is read.
    if (Number(c.req.header('content-length') ?? 0) > deps.maxImportBytes) throw new HubError('too_large', `the backup is over the import limit of ${deps.maxImportBytes} bytes`)
    const q = parseOrThrow(ImportQuery, c.req.query(), 'query')
    const deviceHeader = c.req.header('device-id')
    const deviceId = deviceHeader === undefined ? undefined : Id.safeParse(deviceHeader).data
    if (deviceHeader !== undefined && deviceId === undefined) throw new HubError('invalid', 'Device-Id: expected 1 to 200 characters')
    const body = c.req.raw.body
    if (!body) throw new HubError('backup_invalid', 'the body is empty: expected a synchub backup (NDJSON, header line first)')
    const userId = c.get('principal').userId
    // Asked for NDJSON, the answer streams progress lines while the import runs, then its result.
    const progress = (c.req.header('accept') ?? '').includes(BACKUP_MEDIA_TYPE) ? progressLines(deps.clock, deps.onInternalError) : undefined
    const imported = deps.backups.import(body, { userId, mode: q.mode, scopes: q.scopes, deviceId, onProgress: progress?.report })
    const finished = imported.catch((err: unknown) => {
      // A client that went away mid-upload is not a hub failure worth an error log.
      if (c.req.raw.signal.aborted && !(err instanceof HubError)) throw new HubError('backup_truncated', 'the upload was cut off before its end')
      throw err
    })
    if (progress) return progress.response(finished)
    return reply(c, await finished)
  })

  return app
}

/**
 * An import's answer as NDJSON: `{"progress":{"phase","records","total"?}}` lines at most every
 * 250 ms while the file is checked (phase read) and applied (phase apply), then one last line,
 * `{"result":{imported,copies,skipped}}` or `{"error":{code,message}}`. The status is 200 once
 * the stream starts, so the last line is the verdict.
 */
function progressLines(clock: Clock, onInternalError?: (err: unknown) => void) {
  const encoder = new TextEncoder()
  const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>()
  const writer = writable.getWriter()
  const write = (line: unknown) => void writer.write(encoder.encode(JSON.stringify(line) + '\n')).catch(() => {})
  let last = 0
  return {
    report(p: { phase: 'read' | 'apply'; records: number; total?: number }) {
      const now = clock.now()
      if (now - last < 250) return
      last = now
      write({ progress: p })
    },
    response(finished: Promise<unknown>): Response {
      finished.then(
        (result) => write({ result }),
        (err: unknown) => {
          if (!(err instanceof HubError)) onInternalError?.(err) // the app's error handler never sees it
          const e = err instanceof HubError ? err : new HubError('internal', 'internal error')
          write({ error: { code: e.code, message: e.message } })
        },
      ).finally(() => void writer.close().catch(() => {}))
      return new Response(readable, { headers: { 'content-type': `${BACKUP_MEDIA_TYPE}; charset=utf-8`, 'cache-control': 'no-store' } })
    },
  }
}

const safeName = (name: string) => name.replace(/[^A-Za-z0-9_.-]/g, '_')
