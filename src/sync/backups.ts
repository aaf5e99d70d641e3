import type { ImportMode } from '../../protocol/backup.ts'
import type { Bus } from '../bus/port.ts'
import type { BackupStore } from '../store/backup-store.ts'
import { prepareExport, type PreparedExport } from './backup-export.ts'
import { announceImport, importBackup, type ImportOutcome } from './backup-import.ts'
import type { RecordCodec } from './record-codec.ts'

export interface BackupLimits {
  maxRecordBytes: number
  /** Largest upload one import takes. */
  maxImportBytes: number
  trashRetentionMs: number
}

/** The user's own backup (`GET /v1/export`, `POST /v1/import`): streamed out page by page, streamed in, then announced. */
export class Backups {
  constructor(
    private readonly deps: {
      store: BackupStore
      codec: RecordCodec
      bus: Pick<Bus, 'publish' | 'publishControl'>
      limits: BackupLimits
      /** Records exported or imported, as they go (metrics; a test watches an export's pace with it). */
      onRecords?: (direction: 'export' | 'import', n: number) => void
    },
  ) {}

  export(user: { id: string; username: string }, q: { scopes?: string[] }): Promise<PreparedExport> {
    const counted = this.counter('export')
    return prepareExport({ store: this.deps.store, codec: this.deps.codec, user, scopes: q.scopes, onProgress: (p) => counted(p.records) })
  }

  /**
   * Imports a backup into the user's account in one transaction, then tells every node: an
   * overwrite resets the user's sockets, any import makes the feeds read the new changes.
   */
  async import(
    body: AsyncIterable<Uint8Array>,
    q: { userId: string; mode: ImportMode; scopes?: string[]; deviceId?: string; onProgress?: (p: { phase: 'read' | 'apply'; records: number; total?: number }) => void },
  ): Promise<Omit<ImportOutcome, 'from' | 'replaced'>> {
    const { limits } = this.deps
    const counted = this.counter('import')
    const outcome = await importBackup(body, {
      store: this.deps.store,
      codec: this.deps.codec,
      ...q,
      maxRecordBytes: limits.maxRecordBytes,
      maxBytes: limits.maxImportBytes,
      trashRetentionMs: limits.trashRetentionMs,
      onProgress: (p) => {
        q.onProgress?.(p)
        if (p.phase === 'apply') counted(p.records)
      },
    })
    announceImport(this.deps.bus, q.userId, outcome)
    const { from: _from, replaced: _replaced, ...result } = outcome
    return result
  }

  /** Turns a running total into the increments onRecords counts. */
  private counter(direction: 'export' | 'import'): (total: number) => void {
    let reported = 0
    return (total) => {
      this.deps.onRecords?.(direction, total - reported)
      reported = total
    }
  }
}
