/**
 * A latency-against-rate chart as hand-written SVG (no plotting dependency): per series, p99 as a
 * solid line and p50 as a dashed one, on a log latency axis (a broken step's p99 is often 100×
 * a healthy one). Filled markers: steps that passed; hollow: steps that broke.
 */

export interface PlotPoint {
  rate: number
  p50: number
  p99: number
  ok: boolean
}

export interface PlotSeries {
  name: string
  color: string
  points: PlotPoint[]
}

export interface PlotOptions {
  title: string
  series: PlotSeries[]
  /** Drawn as a horizontal dashed line: the break limit. */
  limitMs?: number
  width?: number
  height?: number
}

/** The legend sits in the right margin, where no data can hide under it. */
const MARGIN = { left: 64, right: 190, top: 44, bottom: 52 }

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
}

/** Round tick values from 0 to at least `max`: steps of 1, 2 or 5 × 10^k, about `count` of them. */
export function linearTicks(max: number, count = 6): number[] {
  if (!(max > 0)) return [0, 1]
  const raw = max / count
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!
  // Multiples rather than repeated sums, and rounded: 3 × 0.2 must print as 0.6.
  return Array.from({ length: Math.ceil(max / step) + 1 }, (_, i) => Number((i * step).toPrecision(12)))
}

/** Decades (…, 0.1, 1, 10, 100, …) covering [min, max], min and max > 0. */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(min))
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)))
  return Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i))
}

const fmtMs = (v: number) => (v >= 1 ? String(Math.round(v)) : String(Number(v.toPrecision(1))))
const finitePos = (v: number) => Number.isFinite(v) && v > 0

export function latencySvg(opts: PlotOptions): string {
  const width = opts.width ?? 900
  const height = opts.height ?? 440
  const plotW = width - MARGIN.left - MARGIN.right
  const plotH = height - MARGIN.top - MARGIN.bottom
  const points = opts.series.flatMap((s) => s.points)
  const values = points.flatMap((p) => [p.p50, p.p99]).filter(finitePos)
  if (opts.limitMs) values.push(opts.limitMs)
  const yTicks = logTicks(values.length ? Math.min(...values) : 1, values.length ? Math.max(...values) : 100)
  const xTicks = linearTicks(Math.max(1, ...points.map((p) => p.rate)))
  const [yLo, yHi] = [Math.log10(yTicks[0]!), Math.log10(yTicks.at(-1)!)]
  const xMax = xTicks.at(-1)!
  const x = (rate: number) => MARGIN.left + (rate / xMax) * plotW
  const y = (ms: number) => MARGIN.top + plotH - ((Math.log10(ms) - yLo) / (yHi - yLo)) * plotH
  const r1 = (n: number) => Math.round(n * 10) / 10

  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${width}" height="${height}" fill="white"/>`)
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="22" text-anchor="middle" font-size="15">${escapeXml(opts.title)}</text>`)
  // Grid and axes.
  for (const t of xTicks) {
    out.push(`<line x1="${r1(x(t))}" y1="${MARGIN.top}" x2="${r1(x(t))}" y2="${MARGIN.top + plotH}" stroke="#eee"/>`)
    out.push(`<text x="${r1(x(t))}" y="${MARGIN.top + plotH + 16}" text-anchor="middle">${t}</text>`)
  }
  for (const t of yTicks) {
    out.push(`<line x1="${MARGIN.left}" y1="${r1(y(t))}" x2="${MARGIN.left + plotW}" y2="${r1(y(t))}" stroke="#eee"/>`)
    out.push(`<text x="${MARGIN.left - 6}" y="${r1(y(t)) + 4}" text-anchor="end">${fmtMs(t)}</text>`)
  }
  out.push(`<rect x="${MARGIN.left}" y="${MARGIN.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#888"/>`)
  out.push(`<text x="${MARGIN.left + plotW / 2}" y="${height - 12}" text-anchor="middle">offered rate R (pushes/s)</text>`)
  out.push(`<text transform="translate(16 ${MARGIN.top + plotH / 2}) rotate(-90)" text-anchor="middle">latency, ms (log scale)</text>`)
  if (opts.limitMs) {
    const ly = r1(y(opts.limitMs))
    out.push(`<line x1="${MARGIN.left}" y1="${ly}" x2="${MARGIN.left + plotW}" y2="${ly}" stroke="#c00" stroke-dasharray="2 3"/>`)
  }
  // Series: a line through the steps that have a value, a marker and a tooltip per step.
  for (const s of opts.series) {
    for (const [key, dash] of [['p99', ''], ['p50', ' stroke-dasharray="6 4"']] as const) {
      const pts = s.points.filter((p) => finitePos(p[key])).map((p) => `${r1(x(p.rate))},${r1(y(p[key]))}`)
      if (pts.length) out.push(`<polyline points="${pts.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`)
      for (const p of s.points.filter((q) => finitePos(q[key]))) {
        const tip = `${s.name} R=${p.rate}: ${key} ${p[key].toFixed(2)} ms (${p.ok ? 'ok' : 'broke'})`
        out.push(
          `<circle cx="${r1(x(p.rate))}" cy="${r1(y(p[key]))}" r="3.5" fill="${p.ok ? s.color : 'white'}" stroke="${s.color}" stroke-width="1.5"><title>${escapeXml(tip)}</title></circle>`,
        )
      }
    }
  }
  // Legend, right of the plot.
  const lx = MARGIN.left + plotW + 14
  opts.series.forEach((s, i) => {
    const ly = MARGIN.top + 16 + i * 36
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 28}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`)
    out.push(`<text x="${lx + 34}" y="${ly + 4}">${escapeXml(s.name)} p99</text>`)
    out.push(`<line x1="${lx}" y1="${ly + 16}" x2="${lx + 28}" y2="${ly + 16}" stroke="${s.color}" stroke-width="2" stroke-dasharray="6 4"/>`)
    out.push(`<text x="${lx + 34}" y="${ly + 20}">${escapeXml(s.name)} p50</text>`)
  })
  if (opts.limitMs) {
    const ly = MARGIN.top + 16 + opts.series.length * 36
    out.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 28}" y2="${ly}" stroke="#c00" stroke-dasharray="2 3"/>`)
    out.push(`<text x="${lx + 34}" y="${ly + 4}" fill="#c00">break limit ${opts.limitMs} ms</text>`)
  }
  out.push(`<text x="${lx}" y="${MARGIN.top + plotH - 22}" fill="#666">filled: step passed</text>`)
  out.push(`<text x="${lx}" y="${MARGIN.top + plotH - 6}" fill="#666">hollow: step broke</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}
