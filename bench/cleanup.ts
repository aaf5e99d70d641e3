/**
 * Everything the run must undo however it ends: children to kill, schemas to drop.
 * Sync steps also run on 'exit' (a crash or process.exit); async steps run on Ctrl-C,
 * SIGTERM and the watchdog, bounded in time.
 */
type Step = { sync?: () => void; async?: () => Promise<void> }
const steps = new Set<Step>()
let installed = false
let exiting = false

export function onCleanup(step: Step): () => void {
  install()
  steps.add(step)
  return () => void steps.delete(step)
}

/** Runs every pending step (async ones for at most `budgetMs`), then exits with `code`. */
export async function cleanupAndExit(code: number, budgetMs = 5000): Promise<never> {
  if (!exiting) {
    exiting = true
    const pending = [...steps]
    steps.clear()
    for (const s of pending) safe(s.sync)
    const asyncs = Promise.allSettled(pending.map((s) => (s.async ? s.async() : undefined)))
    await Promise.race([asyncs, new Promise((r) => setTimeout(r, budgetMs).unref())])
  }
  process.exit(code)
}

/** Stops the whole run after `ms` whatever it is doing. */
export function startWatchdog(ms: number): void {
  setTimeout(() => {
    console.error(`bench: watchdog fired after ${Math.round(ms / 1000)} s, stopping`)
    void cleanupAndExit(2)
  }, ms).unref()
}

function install(): void {
  if (installed) return
  installed = true
  process.on('exit', () => {
    for (const s of steps) safe(s.sync)
  })
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      console.error(`bench: ${sig}, stopping children`)
      void cleanupAndExit(130)
    })
  }
}

function safe(fn: (() => void) | undefined): void {
  try {
    fn?.()
  } catch {
    // best effort: the process may already be gone
  }
}
