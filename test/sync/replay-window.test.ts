import { ReplayAnswerStore } from '../../src/store/replay-answer-store.ts'
import { pruneReplayAnswers } from '../../src/sync/replay-window.ts'
import { eachStore } from '../contracts/adapters.ts'

/**
 * The prune over many devices, pages and chunks: what stays is exactly each live device's latest
 * `keep` answers, a revoked device keeps none, and the device rows stay as they were.
 */
eachStore(async (t, db) => {
  const now = Date.now()
  // Five users × three devices; device d of user u has applied (u + 1) * 10 + d mids.
  const devices: Array<{ user: string; id: string; last: number; revoked: boolean }> = []
  for (let u = 0; u < 5; u++) {
    await db.query('INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $1, $2, $3)', [`u${u}`, 'x', now])
    for (let d = 0; d < 3; d++) devices.push({ user: `u${u}`, id: `dev${d}`, last: (u + 1) * 10 + d, revoked: u === 2 && d === 1 })
  }
  for (const d of devices) {
    await db.query('INSERT INTO devices (user_id, id, last_mid, created_at, last_seen, revoked_at) VALUES ($1, $2, $3, $4, $4, $5)', [d.user, d.id, d.last, now, d.revoked ? now : null])
    await db.query(
      `INSERT INTO op_results (user_id, device_id, mid, result) SELECT $1, $2, m, '\\x80'::bytea FROM generate_series(1, $3::int8) AS m`,
      [d.user, d.id, d.last],
    )
  }
  const keep = 12
  const expected = new Map(devices.map((d) => [`${d.user}/${d.id}`, d.revoked ? [] : range(Math.max(1, d.last - keep + 1), d.last)]))
  const dropped = devices.reduce((n, d) => n + (d.revoked ? d.last : Math.max(0, d.last - keep)), 0)
  const touched = devices.filter((d) => d.revoked || d.last > keep).length

  t.same(await pruneReplayAnswers(new ReplayAnswerStore(db), keep, { page: 2, chunk: 4 }), { devices: touched, answers: dropped }, 'counts every device and answer dropped')
  const { rows } = await db.query<{ user_id: string; device_id: string; mid: number }>('SELECT user_id, device_id, mid FROM op_results ORDER BY user_id, device_id, mid')
  const left = new Map<string, number[]>([...expected.keys()].map((k) => [k, []]))
  for (const r of rows) left.get(`${r.user_id}/${r.device_id}`)!.push(r.mid)
  t.same(left, expected, 'each live device keeps exactly its latest answers; the revoked one none')
  t.same(await pruneReplayAnswers(new ReplayAnswerStore(db), keep, { page: 2, chunk: 4 }), { devices: 0, answers: 0 }, 'a second run finds nothing')
  const { rows: kept } = await db.query<{ user_id: string; id: string; last_mid: number; revoked: boolean }>(
    'SELECT user_id, id, last_mid, revoked_at IS NOT NULL AS revoked FROM devices ORDER BY user_id, id',
  )
  t.same(kept.map((d) => ({ user: d.user_id, id: d.id, last: d.last_mid, revoked: d.revoked })), devices, 'every device row is as it was')
})

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i)
}
