import type { PurgeStore } from '../store/purge-store.ts'

/**
 * Removes records whose time in the recycle bin is over, user by user, one short transaction
 * each. The user's min_valid_seq moves past the newest seq removed: a device whose cursor is
 * older never saw those deletions, so it can no longer be served a correct stream and is told
 * to reset (`cursor_purged`). Safe to run on every node at once: the counter row is locked.
 */
export async function purgeExpired(store: PurgeStore, now: number, maxUsers = 1000): Promise<{ users: number; records: number }> {
  const users = await store.usersWithExpired(now, maxUsers)
  let records = 0
  for (const user of users) records += await store.purgeUser(user, now)
  return { users: users.length, records }
}
