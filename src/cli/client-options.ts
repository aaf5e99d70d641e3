import { parseArgs, type ParseArgsConfig } from 'node:util'
import { FileStorage, SyncClient, type SyncClientOptions } from '../client/node.ts'

/** A command-line mistake: the message and the usage, exit 2. */
export class UsageError extends Error {}

type Flags = NonNullable<ParseArgsConfig['options']>

/** The flags every client command takes, plus its own; credentials only from the environment. */
export function parseClientArgs<F extends Flags>(argv: string[], own: F, env: NodeJS.ProcessEnv) {
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({
      args: argv,
      options: { url: { type: 'string' }, device: { type: 'string' }, state: { type: 'string' }, ...own },
      strict: true,
    }))
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  for (const name of ['url', 'device', 'state']) if (typeof values[name] !== 'string' || !values[name]) throw new UsageError(`--${name} is required`)
  const url = String(values.url)
  if (!/^https?:\/\/[^/]/.test(url)) throw new UsageError(`--url must be the hub's base URL, http://… or https://… (got ${url})`)
  const username = env.SYNCHUB_USERNAME
  const password = env.SYNCHUB_PASSWORD
  if (!username || !password) throw new UsageError('set SYNCHUB_USERNAME and SYNCHUB_PASSWORD (credentials are never taken from flags)')
  return { url, device: String(values.device), state: String(values.state), username, password, values }
}

/** A client for a command: file state in --state, username/password auth, status lines on stderr. */
export function commandClient(
  name: string,
  args: { url: string; device: string; state: string; username: string; password: string },
  extra: Partial<SyncClientOptions>,
): SyncClient {
  const client = new SyncClient({
    url: args.url,
    auth: { username: args.username, password: args.password },
    device: { id: args.device, name: `synchub ${name}`, platform: 'cli' },
    storage: new FileStorage(args.state),
    ...extra,
  })
  client.on('status', (s) => console.error(`synchub ${name}: ${s}`))
  client.on('error', (e) => console.error(`synchub ${name}: ${e.fatal ? 'stopped: ' : ''}${e.code}: ${e.message}`))
  return client
}

/** Resolves on the first SIGINT or SIGTERM (and stops listening). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGINT', on)
      process.off('SIGTERM', on)
      resolve(signal)
    }
    process.on('SIGINT', on)
    process.on('SIGTERM', on)
  })
}
