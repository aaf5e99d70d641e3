/** Anything a start step built that must be released when the hub stops. */
export interface Closable {
  close(): Promise<void> | void
}

/**
 * The closers of a hub's start steps, in the order the steps ran. `closeAll` runs them in
 * reverse, so each part is released while what it uses is still there; a failing closer does not
 * keep the others from running (the first error is rethrown once all ran).
 */
export class Closers {
  private readonly stack: Closable[] = []

  /** Registers a step's result for closing and hands it back. */
  add<T extends Closable>(step: T): T {
    this.stack.push(step)
    return step
  }

  async closeAll(): Promise<void> {
    let failure: { err: unknown } | undefined
    for (const step of this.stack.splice(0).reverse()) {
      try {
        await step.close()
      } catch (err) {
        failure ??= { err }
      }
    }
    if (failure) throw failure.err
  }
}
