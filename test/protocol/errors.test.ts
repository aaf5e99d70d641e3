import t from 'tap'
import { readFileSync } from 'node:fs'
import { CLOSE, ERROR_CODES, ERROR_REGISTRY, HubError, isErrorCode } from '../../protocol/errors.ts'
import { CLIENT_FRAME_TYPES, ByeReason, ErrorFrame, HubFrame, ResetReason } from '../../protocol/frames.ts'
import { DEFAULT_LIMITS } from '../../protocol/limits.ts'
import { FailResult, Op } from '../../protocol/ops.ts'
import { ErrorBody } from '../../protocol/rest.ts'

const doc = readFileSync(new URL('../../protocol/PROTOCOL.md', import.meta.url), 'utf8')

/** Close codes a server may send: 1000-1014 minus the reserved ones, and the private 4000-4999. */
const sendableClose = (c: number) => (c >= 1000 && c <= 1014 && ![1004, 1005, 1006].includes(c)) || (c >= 4000 && c <= 4999)

t.test('every code has a close code and an HTTP status, and HubError exposes them', async (t) => {
  t.strictSame(
    [...ERROR_CODES].sort(),
    [
      'backup_invalid', 'backup_record_invalid', 'backup_truncated', 'backup_unknown_collection', 'backup_version',
      'bad_frame', 'forbidden', 'immutable', 'internal', 'invalid', 'method_not_allowed', 'not_found', 'out_of_order', 'out_of_scope', 'rate_limited', 'too_large', 'unauthorized', 'unavailable',
      'weak_password',
    ],
    'the twelve codes of the v1 contract, the five of imports and two the hub added (405, weak passwords), no more, no fewer',
  )
  for (const code of ERROR_CODES) {
    const { close, http } = ERROR_REGISTRY[code]
    t.ok(sendableClose(close), `${code}: close ${close} is a code a server may send`)
    t.ok(http >= 400 && http <= 599, `${code}: HTTP ${http} is an error status`)
    const err = new HubError(code, `about ${code}`, { extra: 1 })
    t.ok(err instanceof Error, `${code}: a HubError is an Error`)
    t.equal(err.name, 'HubError')
    t.equal(err.code, code)
    t.equal(err.message, `about ${code}`)
    t.equal(err.closeCode, close, `${code}: closeCode`)
    t.equal(err.httpStatus, http, `${code}: httpStatus`)
    t.strictSame(err.details, { extra: 1 })
    t.ok(isErrorCode(code))
  }
  t.notOk(isErrorCode('nope'))
  t.notOk(isErrorCode('toString'), 'inherited names are not codes')
  t.notOk(isErrorCode(undefined))
})

t.test('the statuses the contract fixes', async (t) => {
  t.equal(ERROR_REGISTRY.unauthorized.close, 4401, 'unauthorized closes 4401')
  t.equal(ERROR_REGISTRY.bad_frame.close, 1008, 'repeated bad frames close 1008')
  t.equal(ERROR_REGISTRY.invalid.http, 400, 'a write without Device-Id is 400 invalid')
  t.equal(CLOSE.tokenExpired, 4401)
  t.equal(CLOSE.revoked, 4403)
  t.equal(CLOSE.draining, 1012)
  t.equal(CLOSE.policy, 1008)
  t.ok(Object.values(CLOSE).every(sendableClose), 'every named close code is sendable')
})

t.test('the frames and bodies that carry a code accept exactly the registry', async (t) => {
  for (const schema of [ErrorFrame.shape.code, FailResult.shape.code, ErrorBody.shape.error.shape.code]) {
    t.strictSame([...schema.options].sort(), [...ERROR_CODES].sort())
  }
})

t.test('PROTOCOL.md documents the registry, the limits and every name as the code has them', async (t) => {
  const rows = [...doc.matchAll(/^\| `([a-z_]+)` \|[^\n]*\| (\d{4}) \| (\d{3}) \|$/gm)].map((m) => [m[1], Number(m[2]), Number(m[3])])
  t.strictSame(
    rows.sort(),
    ERROR_CODES.map((c) => [c, ERROR_REGISTRY[c].close, ERROR_REGISTRY[c].http]).sort(),
    'the error table lists each code once with its close code and HTTP status',
  )
  const limit = (name: string) => Number(new RegExp(`^\\| \`${name}\` \\| ([0-9_]+)`, 'm').exec(doc)?.[1]?.replaceAll('_', ''))
  t.equal(limit('SYNCHUB_MAX_FRAME_BYTES'), DEFAULT_LIMITS.maxFrameBytes, 'frame limit default')
  t.equal(limit('SYNCHUB_MAX_OPS_PER_PUSH'), DEFAULT_LIMITS.maxOpsPerPush, 'ops per push default')
  t.equal(limit('SYNCHUB_MAX_RECORD_BYTES'), DEFAULT_LIMITS.maxRecordBytes, 'record data default')
  const names = [
    ...CLIENT_FRAME_TYPES,
    ...HubFrame.options.map((o) => o.shape.t.value),
    ...Op.options.map((o) => o.shape.op.value),
    ...ResetReason.options,
    ...ByeReason.options,
  ]
  for (const name of names) t.ok(doc.includes(`\`${name}\``), `PROTOCOL.md mentions \`${name}\``)
})
