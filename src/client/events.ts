/** A small typed event emitter that runs in browsers and Node alike (no node:events). */
export class Emitter<Events extends Record<string, unknown>> {
  private readonly listeners = new Map<keyof Events, Set<(value: never) => void>>()

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, fn: (value: Events[K]) => void): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(fn as (value: never) => void)
    return () => void set.delete(fn as (value: never) => void)
  }

  /** Like on(), removed after the first call. */
  once<K extends keyof Events>(event: K, fn: (value: Events[K]) => void): () => void {
    const off = this.on(event, (v) => {
      off()
      fn(v)
    })
    return off
  }

  emit<K extends keyof Events>(event: K, value: Events[K]): void {
    const set = this.listeners.get(event)
    if (!set) return
    for (const fn of [...set]) {
      // A listener's bug must not break the client's own bookkeeping.
      try {
        ;(fn as (v: Events[K]) => void)(value)
      } catch (err) {
        queueMicrotask(() => {
          throw err
        })
      }
    }
  }

  listenerCount(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0
  }
}
