import { encodeFrame, type Encoding } from '../../protocol/codec.ts'
import type { WireChange } from '../sync/changes.ts'

const byteLength = (x: Uint8Array | string) => (typeof x === 'string' ? Buffer.byteLength(x) : x.byteLength)
/** Room for the frame's own fields around the items. */
const FRAME_OVERHEAD = 96

/**
 * Encodes `changes` frames for one commit (or one backlog page). It travels as one frame;
 * only when that frame would exceed the limit is it split, each part but the last `more: true`,
 * the parts' from/to chained so the cursor rule holds.
 */
export function encodeChanges(from: number, to: number, items: WireChange[], encoding: Encoding, maxFrameBytes: number): Array<Uint8Array | string> {
  const whole = encodeFrame({ t: 'changes', from, to, items }, encoding)
  if (byteLength(whole) <= maxFrameBytes || items.length <= 1) return [whole]
  const frames: Array<Uint8Array | string> = []
  let part: WireChange[] = []
  let partBytes = FRAME_OVERHEAD
  let partFrom = from
  for (const item of items) {
    const size = byteLength(encodeFrame(item, encoding))
    if (part.length > 0 && partBytes + size > maxFrameBytes) {
      const partTo = part.at(-1)!.seq
      frames.push(encodeFrame({ t: 'changes', from: partFrom, to: partTo, items: part, more: true }, encoding))
      partFrom = partTo
      part = []
      partBytes = FRAME_OVERHEAD
    }
    part.push(item)
    partBytes += size
  }
  frames.push(encodeFrame({ t: 'changes', from: partFrom, to, items: part }, encoding))
  return frames
}
