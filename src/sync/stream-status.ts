import type { SyncStore } from '../store/sync-store.ts'

export interface StreamStatus {
  cursor: number
  epoch: string
  collections: Record<string, { count: number; last_updated: number | null }>
  trash: number
}

/** Where the user's stream stands (`GET /v1/sync/status`): its head and epoch, live records per collection, the bin's size. */
export async function streamStatus(store: SyncStore, userId: string): Promise<StreamStatus> {
  const [state, status] = await Promise.all([store.userState(userId), store.status(userId)])
  return { cursor: state?.seq ?? 0, epoch: state?.epoch ?? '', ...status }
}
