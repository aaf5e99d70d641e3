/** Polls until `pred` holds; fails the caller when it does not within `ms` (a liveness bound, not a measurement). */
export async function waitUntil(pred: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 5))
  }
}
