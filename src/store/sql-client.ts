/**
 * The low-level store port: run SQL, run a transaction. Two adapters implement it, Postgres
 * (pg.Pool) and the embedded PGlite, and both run the same SQL: int8 comes back as a number,
 * bytea as a Uint8Array.
 */
export interface SqlQueryable {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: T[] }>
  /** Runs a script of several statements with no parameters (migrations). */
  exec(script: string): Promise<void>
}

export interface SqlClient extends SqlQueryable {
  readonly kind: 'postgres' | 'pglite'
  /** Runs fn in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: SqlQueryable) => Promise<T>): Promise<T>
  /** Runs fn while holding a session-level advisory lock (serialises migrations across nodes). */
  withAdvisoryLock<T>(key: number, fn: (db: SqlQueryable) => Promise<T>): Promise<T>
  /**
   * A client with connections of its own, for a path that must never queue behind others' reads
   * (group commit). Postgres opens a separate pool of `connections`; PGlite, which has one
   * connection, answers itself (closing that view closes nothing).
   */
  reserved(connections: number): SqlClient
  close(): Promise<void>
}
