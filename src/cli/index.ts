import { runPush } from './push.ts'
import { runTail } from './tail.ts'
import { UsageError } from './client-options.ts'
import { CLIENT_USAGE } from './usage.ts'

export { CLIENT_USAGE }

/** The client commands (`tail`, `push`): a device on a running hub, built on the SDK. */
export const CLIENT_COMMANDS: Record<string, (argv: string[]) => Promise<number>> = { tail: runTail, push: runPush }

export async function runClientCommand(command: string, argv: string[]): Promise<number> {
  try {
    return await CLIENT_COMMANDS[command]!(argv)
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`synchub ${command}: ${err.message}\n\n${CLIENT_USAGE}`)
    return 2
  }
}
