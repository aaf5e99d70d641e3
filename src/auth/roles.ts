export type Role = 'admin' | 'user'
