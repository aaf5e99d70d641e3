import type { ResetReason } from '../../protocol/frames.ts'
import type { ControlMessage } from '../bus/port.ts'

/** What a control event needs of one of this node's sockets. */
export interface ControlledSocket {
  readonly deviceId: string
  bye(reason: 'revoked'): void
  /** The user's sync scope changed (on any node): re-filter, and backfill what it now covers. */
  scopeChanged(scope: string[]): void
  /** The user's history was replaced: the socket is told `reset` and its subscription ends. */
  reset?(reason: ResetReason, epoch?: string): void
}

/** This node's side of the cluster's control events: its sockets by user, and its cached user status. */
export interface ControlTarget {
  forUser(user: string): Iterable<ControlledSocket>
  /** Drops this node's cached status of the user (auth), so the next request reads it again. */
  forgetUser(user: string): void
}

/** Applies a cluster-wide control event to this node's sockets. */
export function applyControl(message: ControlMessage, target: ControlTarget): void {
  // Another node disabled the user: stop trusting this node's cached status at once.
  if (message.type === 'user_disabled') target.forgetUser(message.user)
  for (const s of target.forUser(message.user)) {
    if (message.type === 'user_reset') s.reset?.(message.reason, message.epoch)
    else if (message.type === 'scope_changed') s.scopeChanged(message.scope)
    else if (message.type === 'user_disabled' || s.deviceId === message.device) s.bye('revoked')
  }
}
