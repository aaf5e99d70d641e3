import { decodeFrame } from '../../protocol/codec.ts'
import { HubError } from '../../protocol/errors.ts'
import type { ClientFrame } from '../../protocol/frames.ts'
import type { Limits } from '../../protocol/limits.ts'
import { parseClientFrame, refOf } from '../../protocol/validate.ts'

/** A received frame: valid, or refused with the error to answer and the `ref` to echo. */
export type Inbound = { frame: ClientFrame } | { refused: unknown; ref?: number }

/**
 * Decodes and validates one client frame within the limits: size first, then the ops count
 * (before the schema walks them all), then the frame's schema.
 */
export function readClientFrame(data: Uint8Array, isBinary: boolean, limits: Limits): Inbound {
  if (data.byteLength > limits.maxFrameBytes) {
    // Frames reach here only below the server's hard cap, so reading the ref is affordable
    // and lets the client match the refusal to its request.
    let ref: number | undefined
    try {
      ref = refOf(decodeFrame(data, isBinary, false))
    } catch {}
    return { refused: new HubError('too_large', `frame is ${data.byteLength} bytes, over the ${limits.maxFrameBytes} limit`), ref }
  }
  let raw: Record<string, unknown> | undefined
  try {
    raw = decodeFrame(data, isBinary)
    if (raw.t === 'push' && Array.isArray(raw.ops) && raw.ops.length > limits.maxOpsPerPush) {
      throw new HubError('too_large', `${raw.ops.length} ops in one push, over the ${limits.maxOpsPerPush} limit`)
    }
    return { frame: parseClientFrame(raw) }
  } catch (err) {
    return { refused: err, ref: refOf(raw) }
  }
}

/** Error codes that mean the client sent a bad frame (as opposed to a request that failed). */
export const isBadFrameCode = (code: string): boolean => code === 'bad_frame' || code === 'invalid' || code === 'too_large'

/**
 * Counts a socket's bad frames over a sliding window: past `limit` within `windowMs` the
 * client is broken or hostile, and the socket is closed.
 */
export class BadFrameWindow {
  private times: number[] = []

  constructor(
    private readonly limit: number,
    private readonly windowMs: number,
    private readonly clock: { now(): number },
  ) {}

  /** Records one bad frame; true when the socket has now sent more than the limit within the window. */
  record(): boolean {
    const now = this.clock.now()
    this.times = this.times.filter((t) => now - t < this.windowMs)
    this.times.push(now)
    return this.times.length > this.limit
  }
}
