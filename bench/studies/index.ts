import { runColdStart } from '../cold-start.ts'
import { coldMarkdown, coldTargets } from '../cold-report.ts'
import { receivePathMarkdown, runReceivePath } from '../receive-path.ts'
import { runSdkResilience } from '../sdk-resilience.ts'
import { sdkResilienceMarkdown, sdkResilienceTargets } from '../sdk-report.ts'
import { study, type Study } from './types.ts'

/** Every study, by the name `--only` takes, in the order a full run runs them. */
export const STUDIES: Readonly<Record<string, Study>> = {
  cold: study({
    name: 'cold',
    describe: 'a new device pulling a long history, then export and import (--messages, --conversations)',
    inFullRun: true,
    run: ({ root, opts, log }) => runColdStart({ root, messages: opts.coldMessages, conversations: opts.coldConversations, log }),
    markdown: coldMarkdown,
    targets: (r) => coldTargets(r),
  }),
  'sdk-fallback': study({
    name: 'sdk-fallback',
    describe: "the client SDK's REST fallback when its socket is blocked, and its offline queue flushed",
    inFullRun: true,
    run: ({ root, opts, log }) => runSdkResilience({ root, rounds: opts.quick ? 3 : 5, offlineOps: 10_000, log }),
    markdown: sdkResilienceMarkdown,
    targets: (r) => sdkResilienceTargets(r),
  }),
  receive: study({
    name: 'receive',
    describe: 'decoding and validating one client frame here against an older revision (--baseline REV)',
    inFullRun: false,
    run: ({ root, opts, log }) => runReceivePath({ root, ...(opts.receiveBaseline ? { baseline: opts.receiveBaseline } : {}), log }),
    markdown: receivePathMarkdown,
    targets: () => [],
  }),
}
