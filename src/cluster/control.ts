import type { ControlMessage } from '../bus/port.ts'
import type { SessionRegistry } from '../transport/session-registry.ts'

/** Applies a cluster-wide control event to this node's sockets. */
export function applyControl(message: ControlMessage, sessions: SessionRegistry, forgetUser: (user: string) => void): void {
  // Another node disabled the user: stop trusting this node's cached status at once.
  if (message.type === 'user_disabled') forgetUser(message.user)
  if (message.type === 'user_reset') {
    for (const s of sessions.forUser(message.user)) s.reset?.(message.reason, message.epoch)
    return
  }
  if (message.type === 'scope_changed') {
    for (const s of sessions.forUser(message.user)) s.scopeChanged(message.scope)
    return
  }
  for (const s of sessions.forUser(message.user)) {
    if (message.type === 'user_disabled' || (message.type === 'device_revoked' && s.deviceId === message.device)) s.bye('revoked')
  }
}
