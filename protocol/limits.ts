/** Default limits; the hub's configuration may change them and announces nothing else. */
export const DEFAULT_LIMITS = {
  /** Largest frame accepted or sent, in bytes (1 MiB). */
  maxFrameBytes: 1024 * 1024,
  /** Most ops in one push. */
  maxOpsPerPush: 500,
  /** Largest encoded `data` of one record, in bytes (256 KiB). */
  maxRecordBytes: 256 * 1024,
} as const

export type Limits = { maxFrameBytes: number; maxOpsPerPush: number; maxRecordBytes: number }
