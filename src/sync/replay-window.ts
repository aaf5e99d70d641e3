import type { ReplayAnswerStore } from '../store/replay-answer-store.ts'

/**
 * Drops the first answers (op_results) a replay can no longer need: all but each device's latest
 * `keep` mids, and every answer of a revoked device, which never pushes again. A replay of an
 * older mid is still recognised by the device's last_mid and answers `{ok:true, dup:true}`, as
 * PROTOCOL.md allows; what goes is only the copy of the first answer. Without this the table
 * grows by one row per op for good.
 *
 * Walks the devices in key order, a page at a time, and deletes in short statements of at most
 * `chunk` mids each, so no transaction holds many rows. Safe on every node at once: a delete of
 * rows already gone deletes nothing.
 */
export async function pruneReplayAnswers(store: ReplayAnswerStore, keep: number, opts: { page?: number; chunk?: number } = {}): Promise<{ devices: number; answers: number }> {
  const page = opts.page ?? 1000
  const chunk = opts.chunk ?? 5000
  let after = { user: '', device: '' }
  let devices = 0
  let answers = 0
  for (;;) {
    const rows = await store.devicesAfter(after, keep, page)
    for (const d of rows) {
      if (d.low === null || d.low > d.upto) continue
      devices++
      for (let from = d.low; from <= d.upto; from += chunk) answers += await store.deleteAnswers(d.user_id, d.id, from, Math.min(from + chunk - 1, d.upto))
    }
    if (rows.length < page) return { devices, answers }
    const last = rows.at(-1)!
    after = { user: last.user_id, device: last.id }
  }
}
