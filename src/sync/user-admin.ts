import { HubError } from '../../protocol/errors.ts'
import type { AdminUser, AuthService } from '../auth/service.ts'
import type { Role } from '../auth/roles.ts'
import type { Bus } from '../bus/port.ts'

/** An admin's changes to users (`PATCH /v1/admin/users/{id}`), and what they set off across the cluster. */
export class UserAdmin {
  constructor(private readonly deps: { auth: Pick<AuthService, 'updateUser'>; bus: Pick<Bus, 'publishControl'> }) {}

  /**
   * Disables, re-enables, promotes or demotes a user. Disabling revokes the user's refresh
   * tokens and closes their sockets on every node, each of which stops trusting its cached status.
   */
  async update(actorId: string, userId: string, patch: { disabled?: boolean; role?: Role }): Promise<AdminUser> {
    // An admin locking themselves out (or demoting the last admin by accident) is never intended.
    if (userId === actorId && (patch.disabled === true || patch.role === 'user')) {
      throw new HubError('invalid', 'admins cannot disable or demote themselves')
    }
    const user = await this.deps.auth.updateUser(userId, patch)
    if (patch.disabled === true) this.deps.bus.publishControl({ type: 'user_disabled', user: userId })
    return user
  }
}
