/**
 * The receive path of one client frame (decode + validate, what a session does before a push
 * reaches the engine), at this checkout against a baseline revision, side by side in one
 * process: the baseline's protocol/ folder is exported from git and imported next to ours. The
 * default baseline is the commit before the text checks came in (protocol/text-rules.ts), so the
 * ratio is what those checks cost: UTF-8 validation of every MessagePack str, the lone-surrogate
 * walk of JSON frames, the NUL and well-formedness refinements of ids and device fields.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { decodeFrame, decodeMsgpack } from '../protocol/codec.ts'
import { parseClientFrame } from '../protocol/validate.ts'
import { messageContent, pushFrame } from './messages.ts'

export interface ReceivePathCase {
  name: string
  bytes: number
  /** Median over the rounds, nanoseconds per frame. */
  baselineNs: number
  currentNs: number
  ratio: number
}

export interface ReceivePathResult {
  baseline: string
  frames: number
  rounds: number
  cases: ReceivePathCase[]
}

type Receive = (data: Uint8Array | string, binary: boolean) => unknown
interface ProtocolModules {
  decodeFrame: (data: Uint8Array | string, binary: boolean) => Record<string, unknown>
  parseClientFrame: (value: Record<string, unknown>) => unknown
}

/** The newest commit without protocol/text-rules.ts, i.e. the parent of the one that added it. */
function defaultBaseline(root: string): string {
  const added = execFileSync('git', ['log', '--diff-filter=A', '--format=%H', '--', 'protocol/text-rules.ts'], { cwd: root, encoding: 'utf8' }).trim().split('\n').at(-1)
  if (!added) throw new Error('protocol/text-rules.ts is not in git history: pass a baseline revision')
  return execFileSync('git', ['rev-parse', '--short', `${added}^`], { cwd: root, encoding: 'utf8' }).trim()
}

/** protocol/ at `rev`, unpacked under tmp/ (inside the repo, so zod and msgpackr resolve from node_modules). */
async function load(root: string, rev: string): Promise<ProtocolModules> {
  const dir = join(root, 'tmp', `receive-baseline-${rev}`)
  if (!existsSync(join(dir, 'protocol', 'codec.ts'))) {
    mkdirSync(dir, { recursive: true })
    execFileSync('sh', ['-c', `git archive ${rev} protocol | tar -x -C ${JSON.stringify(dir)}`], { cwd: root })
  }
  const codec = await import(pathToFileURL(join(dir, 'protocol', 'codec.ts')).href)
  const validate = await import(pathToFileURL(join(dir, 'protocol', 'validate.ts')).href)
  return { decodeFrame: codec.decodeFrame, parseClientFrame: validate.parseClientFrame }
}

function receiver(m: ProtocolModules): Receive {
  return (data, binary) => m.parseClientFrame(m.decodeFrame(data, binary))
}

/** ns per frame for `n` frames (each case cycles through its own frames). */
function time(receive: Receive, frames: Array<Uint8Array | string>, binary: boolean, n: number): number {
  const t0 = process.hrtime.bigint()
  for (let i = 0; i < n; i++) receive(frames[i % frames.length]!, binary)
  return Number(process.hrtime.bigint() - t0) / n
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export async function runReceivePath(opts: { root: string; baseline?: string; frames?: number; rounds?: number; log(line: string): void }): Promise<ReceivePathResult> {
  const baseline = opts.baseline ?? defaultBaseline(opts.root)
  const frames = opts.frames ?? 50_000
  const rounds = opts.rounds ?? 7
  const before = receiver(await load(opts.root, baseline))
  const current: Receive = (data, binary) => parseClientFrame(decodeFrame(data, binary))
  const conversation = 'c0a80101-0000-4000-8000-000000000001'
  const msgpack = (content: string) => Array.from({ length: 64 }, (_, g) => pushFrame(g, g + 1, conversation, content))
  const json = (content: string) => msgpack(content).map((b) => JSON.stringify(decodeMsgpack(b)))
  const cases: Array<{ name: string; frames: Array<Uint8Array | string>; binary: boolean }> = [
    { name: 'push, msgpack, 120-char ASCII message (the load bench’s frame)', frames: msgpack(messageContent(120)), binary: true },
    { name: 'push, msgpack, 2,000-char message in Chinese and emoji', frames: msgpack('同步的消息😀'.repeat(286).slice(0, 2000)), binary: true },
    { name: 'push, JSON, 120-char ASCII message', frames: json(messageContent(120)), binary: false },
  ]
  const result: ReceivePathResult = { baseline, frames, rounds, cases: [] }
  for (const c of cases) {
    // Warm both up, then alternate, so neither gets the quieter moments of the machine.
    time(before, c.frames, c.binary, frames)
    time(current, c.frames, c.binary, frames)
    const b: number[] = []
    const n: number[] = []
    for (let r = 0; r < rounds; r++) {
      b.push(time(before, c.frames, c.binary, frames))
      n.push(time(current, c.frames, c.binary, frames))
    }
    const row = { name: c.name, bytes: Buffer.byteLength(c.frames[0]!), baselineNs: median(b), currentNs: median(n), ratio: median(n) / median(b) }
    result.cases.push(row)
    opts.log(`[receive] ${row.name}: ${row.bytes} B, ${row.baselineNs.toFixed(0)} ns → ${row.currentNs.toFixed(0)} ns per frame (× ${row.ratio.toFixed(2)})`)
  }
  return result
}

export function receivePathMarkdown(r: ReceivePathResult): string[] {
  return [
    `## Receive path (decode + validate one client frame)`,
    '',
    `This checkout against git ${r.baseline} (before the text checks), side by side in one process: ${r.frames.toLocaleString('en')} frames per round, median of ${r.rounds} alternating rounds.`,
    '',
    '| frame | bytes | baseline ns/frame | now ns/frame | ratio |',
    '|---|---:|---:|---:|---:|',
    ...r.cases.map((c) => `| ${c.name} | ${c.bytes} | ${c.baselineNs.toFixed(0)} | ${c.currentNs.toFixed(0)} | ${c.ratio.toFixed(2)} |`),
  ]
}
