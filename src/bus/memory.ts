import type { Bus, ChangeBatch, ControlMessage } from './port.ts'

/** Single-node fan-out: delivery is a synchronous call, in publish order, and never lost. */
export function createMemoryBus(): Bus {
  const users = new Map<string, Set<(batch: ChangeBatch) => void>>()
  const control = new Set<(message: ControlMessage) => void>()
  return {
    kind: 'memory',
    publish(batch) {
      const listeners = users.get(batch.user)
      if (listeners) for (const listener of listeners) listener(batch)
    },
    subscribe(user, onBatch) {
      let listeners = users.get(user)
      if (!listeners) users.set(user, (listeners = new Set()))
      listeners.add(onBatch)
      return () => {
        listeners.delete(onBatch)
        if (listeners.size === 0 && users.get(user) === listeners) users.delete(user)
      }
    },
    publishControl(message) {
      for (const handler of control) handler(message)
    },
    onControl(handler) {
      control.add(handler)
      return () => control.delete(handler)
    },
    ready: async () => {},
    onResync: () => () => {},
    close: async () => {
      users.clear()
      control.clear()
    },
  }
}
