import type { Change } from '../../protocol/records.ts'
import { commandClient, parseClientArgs, untilSignal } from './client-options.ts'

/**
 * `synchub tail`: one device that stays connected with all of the SDK's resilience and prints
 * each applied change as one line of JSON. The cursor is written after the line is out, so a
 * rerun on the same --state goes on after the last line printed.
 */
export async function runTail(argv: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const args = parseClientArgs(argv, { collections: { type: 'string' } }, env)
  const collections = typeof args.values.collections === 'string' ? args.values.collections.split(',').filter(Boolean) : undefined
  const client = commandClient('tail', args, {
    ...(collections ? { collections } : {}),
    onChanges: (batch) => writeLines(batch.changes),
    onReset: (info) => console.error(`synchub tail: the history was reset (${info.reason}): from 0 again`),
  })
  let fatal = false
  client.on('error', (e) => {
    if (e.fatal) fatal = true
  })
  await client.start()
  const stopped = new Promise<void>((resolve) => client.on('status', (s) => s === 'stopped' && resolve()))
  const signal = await Promise.race([untilSignal(), stopped.then(() => undefined)])
  await client.stop()
  if (signal) console.error(`synchub tail: ${signal}: cursor ${client.cursor} saved`)
  return fatal ? 1 : 0
}

/** Writes the lines and resolves once stdout took them (the cursor must not run ahead of the output). */
function writeLines(changes: Change[]): Promise<void> | void {
  if (changes.length === 0) return
  const text = changes.map((c) => JSON.stringify(c)).join('\n') + '\n'
  return new Promise((resolve, reject) => process.stdout.write(text, (err) => (err ? reject(err) : resolve())))
}
