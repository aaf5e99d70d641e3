import { z } from 'zod'
import { Change, CollectionName, Millis, Seq } from './records.ts'
import { Op, Result } from './ops.ts'
import { Epoch, ResetReason } from './frames.ts'
import { ERROR_CODES } from './errors.ts'
import { storedText } from './text-rules.ts'

export const Username = z.string().min(3).max(64).regex(/^[A-Za-z0-9_.@-]+$/, 'letters, digits and _ . @ - only')
export const Password = z.string().min(8).max(1024)
export const Role = z.enum(['admin', 'user'])

export const RegisterBody = z.object({ username: Username, password: Password, invite: storedText(z.string().max(200)).optional() })
export const LoginBody = z.object({ username: storedText(z.string().min(1).max(64)), password: z.string().min(1).max(1024) })
export const RefreshBody = z.object({ refresh_token: z.string().min(1).max(1024) })
export const LogoutBody = RefreshBody

export const UserView = z.object({ id: z.string(), username: z.string(), role: Role })
export const RegisterResponse = z.object({ user: UserView })
export const TokenResponse = z.object({
  access_token: z.string(),
  refresh_token: z.string(),
  token_type: z.literal('bearer'),
  expires_in: z.int().positive(),
})
export const MeResponse = UserView.extend({ created_at: Millis })

/** A `collections=a,b` query parameter: absent or empty means no filter. */
export const CollectionList = z
  .string()
  .optional()
  .transform((s) => (s ? s.split(',').filter(Boolean) : undefined))
  .pipe(z.array(CollectionName).optional())

/** Query of GET /v1/sync/pull; all values arrive as strings. */
export const PullQuery = z.object({
  since: z.coerce.number().pipe(Seq).default(0),
  limit: z.coerce.number().pipe(z.int().min(1).max(10_000)).default(1000),
  collections: CollectionList,
  wait: z.coerce.number().pipe(z.number().min(0).max(30)).default(0),
  epoch: Epoch.optional(),
})
export const PullResponse = z.union([
  z.object({ items: z.array(Change), cursor: Seq, more: z.boolean(), epoch: Epoch }),
  z.object({ reset: ResetReason, epoch: Epoch.optional() }),
])
export const PushBody = z.object({ ops: z.array(Op).min(1) })
export const PushResponse = z.object({ cursor: Seq, results: z.array(Result) })
export const StatusResponse = z.object({
  cursor: Seq,
  epoch: Epoch,
  collections: z.record(z.string(), z.object({ count: z.int().nonnegative(), last_updated: Millis.nullable() })),
  trash: z.int().nonnegative(),
})
export const ErrorBody = z.object({ error: z.object({ code: z.enum(ERROR_CODES), message: z.string() }) })
export const CreateInviteBody = z.object({
  role: Role.default('user'),
  expires_in: z.int().positive().max(365 * 24 * 3600).default(7 * 24 * 3600),
})
export const InviteView = z.object({ code: z.string(), role: Role, expires_at: Millis })

// --- auth and admin (appended) ---

/** The OAuth2 password grant (RFC 6749 §4.3) as `application/x-www-form-urlencoded`; extra fields such as scope are ignored. */
export const PasswordGrantForm = LoginBody.extend({ grant_type: z.literal('password') })
export const AdminUserView = UserView.extend({ disabled: z.boolean(), created_at: Millis })
/** Query of GET /v1/admin/users: users ordered by lowercase username; `after` is the last username of the previous page. */
export const AdminUserListQuery = z.object({
  limit: z.coerce.number().pipe(z.int().min(1).max(1000)).default(100),
  after: storedText(z.string().max(64)).optional(),
})
export const AdminUserList = z.object({ items: z.array(AdminUserView), next: z.string().optional() })
export const AdminUserPatch = z
  .object({ disabled: z.boolean().optional(), role: Role.optional() })
  .refine((p) => p.disabled !== undefined || p.role !== undefined, 'give disabled or role')
export const AdminInviteView = InviteView.extend({
  created_at: Millis,
  created_by: z.string().nullable(),
  used_by: z.string().nullable(),
  used_at: Millis.nullable(),
})
export const AdminInviteList = z.object({ items: z.array(AdminInviteView) })

/** PUT /v1/sync/scope, and its answer (GET too): the scope keys every device of the user syncs. */
export const ScopeBody = z.object({ scope: z.array(z.string().min(1).max(100)).max(100) })
