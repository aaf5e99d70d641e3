/**
 * Milliseconds on the process-wide monotonic clock. performance.now() counts from each thread's
 * own start, so generator threads and the main thread could not compare stamps; hrtime is one
 * clock for all of them. The offset is taken once per thread; the hot path stays performance.now().
 */
const offset = Number(process.hrtime.bigint()) / 1e6 - performance.now()

export function now(): number {
  return offset + performance.now()
}
