/**
 * A progress line on stderr for the command line: a bar redrawn in place on a terminal, a
 * plain line about once a second otherwise (logs, CI), so a long export or import is never
 * silent. stdout stays free for the data.
 */
export class ProgressBar {
  private started = performance.now()
  /** The first line waits one interval too: a short run shows only its final line. */
  private lastDraw = performance.now()
  private drawn = false
  private readonly tty: boolean

  constructor(
    private label: string,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.tty = Boolean(out.isTTY)
  }

  /** Starts a new phase (its rate counts from now). */
  phase(label: string): void {
    this.end()
    this.label = label
    this.started = performance.now()
    this.lastDraw = this.started
  }

  update(done: number, total?: number): void {
    const now = performance.now()
    if (now - this.lastDraw < (this.tty ? 100 : 1000)) return
    this.lastDraw = now
    this.draw(done, total)
  }

  /** The phase's last line, always drawn. */
  done(done: number, total?: number): void {
    this.draw(done, total)
    this.end()
  }

  private draw(done: number, total?: number): void {
    const seconds = (performance.now() - this.started) / 1000
    const rate = seconds > 0 ? Math.round(done / seconds) : 0
    const of = total !== undefined ? `/${total}` : ''
    let bar = ''
    if (total && total > 0) {
      const width = 24
      const filled = Math.min(width, Math.round((done / total) * width))
      bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] `
    }
    const line = `${this.label} ${bar}${done}${of} records  ${rate}/s  ${seconds.toFixed(1)} s`
    if (this.tty) this.out.write(`\r${line}\u001b[K`)
    else this.out.write(line + '\n')
    this.drawn = true
  }

  private end(): void {
    if (this.tty && this.drawn) this.out.write('\n')
    this.drawn = false
  }
}
