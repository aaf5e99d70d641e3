import { PUSH_DIGITS } from './messages.ts'

/**
 * Reads just what the generator needs from the two hot frames, `changes` and `ack`, straight
 * from the msgpack bytes: no objects, no strings. Decoding every item in full cost the generator
 * about a fifth of its CPU, which capped the rate it could measure. Anything unexpected
 * (another frame type, an unknown encoding) returns false and the caller decodes it normally.
 */
export interface Scanned {
  t: 'changes' | 'ack'
  ref: number
  from: number
  to: number
  /** ack: results[0].ok */
  ok: boolean
  /** changes: push numbers of the `messages` items, in order (see messageId in messages.ts). */
  pushNumbers: number[]
  /** changes: items of other collections */
  otherItems: number
}

const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0))
const K = { t: enc('t'), ref: enc('ref'), from: enc('from'), to: enc('to'), items: enc('items'), results: enc('results'), collection: enc('collection'), id: enc('id'), ok: enc('ok') }
const V = { changes: enc('changes'), ack: enc('ack'), messages: enc('messages') }

class Malformed extends Error {}
/** Thrown, never constructed per frame: building an Error (and its stack) per frame is costly. */
const MALFORMED = new Malformed('malformed frame')
const fail = (): never => {
  throw MALFORMED
}

export class FrameScanner {
  private buf: Uint8Array = new Uint8Array(0)
  private view: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0))
  private pos = 0
  /** Start and length of the last string read by str(). */
  private sStart = 0
  private sLen = 0
  readonly out: Scanned = { t: 'ack', ref: -1, from: -1, to: -1, ok: false, pushNumbers: [], otherItems: 0 }

  /** Fills `out` and returns true when the frame is a `changes` or `ack` it could read. */
  scan(buf: Uint8Array): boolean {
    this.buf = buf
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    this.pos = 0
    const o = this.out
    o.ref = o.from = o.to = -1
    o.ok = false
    o.pushNumbers.length = 0
    o.otherItems = 0
    let t: 'changes' | 'ack' | undefined
    try {
      const n = this.mapHeader()
      for (let i = 0; i < n; i++) {
        this.str()
        if (this.keyIs(K.t)) {
          this.str()
          if (this.strIs(V.changes)) t = 'changes'
          else if (this.strIs(V.ack)) t = 'ack'
          else return false
        } else if (this.keyIs(K.ref)) o.ref = this.num()
        else if (this.keyIs(K.from)) o.from = this.num()
        else if (this.keyIs(K.to)) o.to = this.num()
        else if (this.keyIs(K.items)) this.items()
        else if (this.keyIs(K.results)) this.results()
        else this.skip()
      }
    } catch (err) {
      if (err instanceof Malformed || err instanceof RangeError) return false
      throw err
    }
    if (!t || this.pos !== buf.length) return false
    o.t = t
    return true
  }

  private items(): void {
    const n = this.arrayHeader()
    for (let i = 0; i < n; i++) {
      const fields = this.mapHeader()
      let isMessage = false
      let idStart = -1
      let idLen = 0
      for (let f = 0; f < fields; f++) {
        this.str()
        if (this.keyIs(K.collection)) {
          this.str()
          isMessage = this.strIs(V.messages)
        } else if (this.keyIs(K.id)) {
          this.str()
          idStart = this.sStart
          idLen = this.sLen
        } else this.skip()
      }
      if (isMessage && idLen >= PUSH_DIGITS) this.out.pushNumbers.push(this.hex(idStart + idLen - PUSH_DIGITS, PUSH_DIGITS))
      else this.out.otherItems++
    }
  }

  private results(): void {
    const n = this.arrayHeader()
    for (let i = 0; i < n; i++) {
      if (i > 0) {
        this.skip()
        continue
      }
      const fields = this.mapHeader()
      for (let f = 0; f < fields; f++) {
        this.str()
        if (this.keyIs(K.ok)) this.out.ok = this.byte() === 0xc3
        else this.skip()
      }
    }
  }

  // ---- msgpack primitives -------------------------------------------------------------------

  private byte(): number {
    if (this.pos >= this.buf.length) fail()
    return this.buf[this.pos++]!
  }

  private mapHeader(): number {
    const b = this.byte()
    if (b >= 0x80 && b <= 0x8f) return b & 0x0f
    if (b === 0xde) return this.uint(2)
    if (b === 0xdf) return this.uint(4)
    return fail()
  }

  private arrayHeader(): number {
    const b = this.byte()
    if (b >= 0x90 && b <= 0x9f) return b & 0x0f
    if (b === 0xdc) return this.uint(2)
    if (b === 0xdd) return this.uint(4)
    return fail()
  }

  private str(): void {
    const b = this.byte()
    let len: number
    if (b >= 0xa0 && b <= 0xbf) len = b & 0x1f
    else if (b === 0xd9) len = this.uint(1)
    else if (b === 0xda) len = this.uint(2)
    else if (b === 0xdb) len = this.uint(4)
    else return fail()
    if (this.pos + len > this.buf.length) fail()
    this.sStart = this.pos
    this.sLen = len
    this.pos += len
  }

  private keyIs(key: Uint8Array): boolean {
    return this.strIs(key)
  }

  private strIs(s: Uint8Array): boolean {
    if (this.sLen !== s.length) return false
    for (let i = 0; i < s.length; i++) if (this.buf[this.sStart + i] !== s[i]) return false
    return true
  }

  private uint(width: 1 | 2 | 4 | 8): number {
    const p = this.pos
    this.pos += width
    if (this.pos > this.buf.length) fail()
    const v = this.view
    return width === 1 ? v.getUint8(p) : width === 2 ? v.getUint16(p) : width === 4 ? v.getUint32(p) : Number(v.getBigUint64(p))
  }

  private num(): number {
    const b = this.byte()
    if (b <= 0x7f) return b
    if (b >= 0xe0) return b - 0x100
    const p = this.pos
    switch (b) {
      case 0xcc: return this.uint(1)
      case 0xcd: return this.uint(2)
      case 0xce: return this.uint(4)
      case 0xcf: return this.uint(8)
      case 0xd0: this.pos += 1; return this.view.getInt8(p)
      case 0xd1: this.pos += 2; return this.view.getInt16(p)
      case 0xd2: this.pos += 4; return this.view.getInt32(p)
      case 0xd3: this.pos += 8; return Number(this.view.getBigInt64(p))
      case 0xca: this.pos += 4; return this.view.getFloat32(p)
      case 0xcb: this.pos += 8; return this.view.getFloat64(p)
    }
    return fail()
  }

  private hex(start: number, len: number): number {
    let v = 0
    for (let i = start; i < start + len; i++) {
      const c = this.buf[i]!
      const d = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : fail()
      v = v * 16 + d
    }
    return v
  }

  private advance(n: number): void {
    this.pos += n
  }

  /** Skips one value of any type. Extension types are not standard msgpack here: refuse them. */
  private skip(): void {
    let pending = 1
    while (pending > 0) {
      pending--
      const b = this.byte()
      if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) continue
      if (b <= 0x8f) pending += 2 * (b & 0x0f)
      else if (b <= 0x9f) pending += b & 0x0f
      else if (b <= 0xbf) this.pos += b & 0x1f
      // (read the length first: `this.pos += this.uint(n)` would add to pos as it was before uint() moved it)
      else if (b === 0xc4 || b === 0xd9) this.advance(this.uint(1))
      else if (b === 0xc5 || b === 0xda) this.advance(this.uint(2))
      else if (b === 0xc6 || b === 0xdb) this.advance(this.uint(4))
      else if (b === 0xca) this.pos += 4
      else if (b === 0xcb) this.pos += 8
      else if (b >= 0xcc && b <= 0xcf) this.pos += 1 << (b - 0xcc)
      else if (b >= 0xd0 && b <= 0xd3) this.pos += 1 << (b - 0xd0)
      else if (b === 0xdc) pending += this.uint(2)
      else if (b === 0xdd) pending += this.uint(4)
      else if (b === 0xde) pending += 2 * this.uint(2)
      else if (b === 0xdf) pending += 2 * this.uint(4)
      else fail()
      if (this.pos > this.buf.length) fail()
    }
  }
}
