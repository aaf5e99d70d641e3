import { ackMaxByWindow, Samples } from './stats.ts'

/** Delivery bits per push: the two measured devices, and the pusher's own echo. */
const DEV1 = 1
const DEV2 = 2
const ECHO = 4
const ALL = DEV1 | DEV2 | ECHO

export interface StepCounts {
  /** Pushes the schedule gave this generator (all threads: the step's total), and how many were handed to the socket. */
  scheduled: number
  sent: number
  acked: number
  /** Pushes answered with `error` or a refused result. */
  failed: number
  /** Sent, and neither acked nor refused before the drain ended. */
  unacked: number
  /** (push, device) pairs acked but not delivered, at device 1 and device 2. */
  missingDev1: number
  missingDev2: number
  /** Acked pushes that missed device 1 or device 2 (or both). */
  lostPushes: number
  /** Acked pushes whose echo never reached the pusher. */
  missingEcho: number
  duplicates: number
  /** Items delivered to a socket of another user. */
  misrouted: number
  /** changes frames whose `from` was not the socket's previous `to`. */
  cursorGaps: number
  /** Frames that belong to an earlier step (arrived after its drain). */
  late: number
}

/**
 * What happened to each push of one step, in flat typed arrays indexed by push number - base.
 * A generator thread owns some of the step's pushes (its users'); the others stay unsent here.
 * Latency is taken from the push's *scheduled* time, so a generator or server that falls behind
 * cannot hide its queueing delay (coordinated omission).
 */
export class StepTracker {
  readonly scheduledAt: Float64Array
  private readonly ackedAt: Float64Array
  private readonly state: Uint8Array
  private readonly failedFlag: Uint8Array
  readonly latency = new Samples(1 << 16)
  readonly ackLatency = new Samples(1 << 15)
  readonly sendLag = new Samples(1 << 15)
  /** Pushes of this step that belong to this generator thread. */
  assigned = 0
  sent = 0
  acked = 0
  failed = 0
  delivered = 0
  ackedInWindow = 0
  duplicates = 0
  misrouted = 0
  cursorGaps = 0
  late = 0
  firstError: string | undefined

  constructor(
    /** Push number of the step's first push. */
    readonly base: number,
    readonly total: number,
    /** Scheduled times at or after this are measured; earlier ones are warm-up. */
    readonly measureFrom: number,
    readonly measureUntil: number,
    private readonly users: number,
  ) {
    this.scheduledAt = new Float64Array(total)
    this.ackedAt = new Float64Array(total)
    this.state = new Uint8Array(total)
    this.failedFlag = new Uint8Array(total)
  }

  onSent(g: number, scheduled: number, now: number): void {
    const i = g - this.base
    this.scheduledAt[i] = scheduled
    this.sent++
    if (scheduled >= this.measureFrom) this.sendLag.add(now - scheduled)
  }

  onAck(g: number, ok: boolean, now: number, error?: string): void {
    const i = g - this.base
    if (i < 0 || i >= this.total) return void this.late++
    if (this.ackedAt[i] !== 0 || this.failedFlag[i] !== 0) return void this.duplicates++
    if (!ok) {
      this.failedFlag[i] = 1
      this.failed++
      this.firstError ??= error
      return
    }
    this.ackedAt[i] = now
    this.acked++
    if (now >= this.measureFrom && now < this.measureUntil) this.ackedInWindow++
    const s = this.scheduledAt[i]!
    if (s >= this.measureFrom) this.ackLatency.add(now - s)
  }

  /** A `messages` item reached device `device` (0 = the pusher) of user `user`. */
  onDelivered(g: number, user: number, device: number, now: number): void {
    const i = g - this.base
    if (i < 0 || i >= this.total) return void this.late++
    if (g % this.users !== user) return void this.misrouted++
    const bit = device === 1 ? DEV1 : device === 2 ? DEV2 : ECHO
    if (this.state[i]! & bit) return void this.duplicates++
    this.state[i]! |= bit
    this.delivered++
    const s = this.scheduledAt[i]!
    if (device !== 0 && s >= this.measureFrom) this.latency.add(now - s)
  }

  /** True when every sent push is answered and every acked push reached all three devices. */
  settled(): boolean {
    return this.acked + this.failed === this.sent && this.delivered === this.acked * 3
  }

  counts(): StepCounts {
    let unacked = 0
    let m1 = 0
    let m2 = 0
    let lost = 0
    let echo = 0
    for (let i = 0; i < this.total; i++) {
      if (this.scheduledAt[i] === 0 || this.failedFlag[i]) continue // not this thread's, or refused
      if (this.ackedAt[i] === 0) {
        unacked++
        continue
      }
      const s = this.state[i]!
      if (s === ALL) continue
      if (!(s & DEV1)) m1++
      if (!(s & DEV2)) m2++
      if ((s & (DEV1 | DEV2)) !== (DEV1 | DEV2)) lost++
      if (!(s & ECHO)) echo++
    }
    return {
      scheduled: this.assigned,
      sent: this.sent,
      acked: this.acked,
      failed: this.failed,
      unacked,
      missingDev1: m1,
      missingDev2: m2,
      lostPushes: lost,
      missingEcho: echo,
      duplicates: this.duplicates,
      misrouted: this.misrouted,
      cursorGaps: this.cursorGaps,
      late: this.late,
    }
  }

  samples(): { latency: Float64Array; ackLatency: Float64Array; sendLag: Float64Array; ackMaxByWindow: Float64Array } {
    return {
      latency: this.latency.values(),
      ackLatency: this.ackLatency.values(),
      sendLag: this.sendLag.values(),
      ackMaxByWindow: ackMaxByWindow(this.scheduledAt, this.ackedAt, this.measureFrom, this.measureUntil),
    }
  }
}
