import { HubError } from '../../protocol/errors.ts'
import type { Bus } from '../bus/port.ts'
import type { Presence } from '../cluster/presence.ts'
import type { DeviceStore } from '../store/device-store.ts'
import type { Clock } from '../time/clock.ts'

/** A device as `GET /v1/devices` lists it: what the store knows, and where it is online now. */
export interface DeviceView {
  id: string
  name?: string
  platform?: string
  created_at: number
  last_seen: number
  acked_cursor: number
  last_mid: number
  revoked: boolean
  online: boolean
  node?: string
  nodes?: string[]
  online_since?: number
}

/** A user's devices with where they are online now (any node), and revoking one. */
export class Devices {
  constructor(private readonly deps: { store: DeviceStore; presence: Pick<Presence, 'list'>; bus: Pick<Bus, 'publishControl'>; clock: Clock }) {}

  async list(userId: string): Promise<DeviceView[]> {
    const [rows, online] = await Promise.all([this.deps.store.list(userId), this.deps.presence.list(userId)])
    const where = new Map(online.map((p) => [p.device, p]))
    return rows.map((d) => {
      const p = where.get(d.id)
      return {
        id: d.id,
        ...(d.name !== null ? { name: d.name } : {}),
        ...(d.platform !== null ? { platform: d.platform } : {}),
        created_at: d.created_at,
        last_seen: d.last_seen,
        acked_cursor: d.acked_cursor,
        last_mid: d.last_mid,
        revoked: d.revoked_at !== null,
        online: p !== undefined,
        ...(p ? { node: p.nodes[0], nodes: p.nodes, online_since: p.since } : {}),
      }
    })
  }

  /**
   * Revokes the device for good, with the refresh tokens issued to it, and closes its sockets on
   * every node (`bye` revoked, 4403). `not_found` when the user has no such device.
   */
  async revoke(userId: string, deviceId: string): Promise<void> {
    if (!(await this.deps.store.revoke(userId, deviceId, this.deps.clock.now()))) throw new HubError('not_found', `no device ${deviceId}`)
    this.deps.bus.publishControl({ type: 'device_revoked', user: userId, device: deviceId })
  }
}
