import type { z } from 'zod'
import type { Role as RoleSchema } from '../../protocol/rest.ts'

export type Role = z.infer<typeof RoleSchema>
