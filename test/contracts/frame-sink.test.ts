import t, { type Test } from 'tap'
import WebSocket from 'ws'
import { decodeFrame } from '../../protocol/codec.ts'
import type { Change } from '../../protocol/records.ts'
import { CollectionFilters } from '../../src/sync/collection-filter.ts'
import { CollectionRegistry } from '../../src/sync/collections.ts'
import type { FrameSink } from '../../src/sync/frame-sink.ts'
import type { SocketSession } from '../../src/transport/connection.ts'
import { LiveFrames } from '../../src/transport/live-frames.ts'
import { SocketSink } from '../../src/transport/socket-sink.ts'
import { startTransport } from '../../src/transport/start.ts'
import { waitUntil } from '../helpers/wait.ts'
import { RecordingSink } from '../sync/recording-sink.ts'

/** What the contract needs to drive a sink and watch its client. */
interface SinkDriver {
  sink: FrameSink
  /** Frames the client received so far, decoded, in order. */
  received: Array<Record<string, any>>
  /** The client stops reading / reads again. */
  stopReading(): void
  startReading(): void
  /** Ends the connection and resolves once the sink knows. */
  end(): Promise<void>
  /** True once the sink closed the connection for a retry. */
  retried(): boolean
  close(): Promise<void>
}

const MAX_FRAME = 64 * 1024
const change = (seq: number, collection = 'settings', size = 10): Change => ({
  seq,
  rev: seq,
  collection,
  id: `${collection}-${seq}`,
  data: { value: 'x'.repeat(size) },
  created_at: seq,
  updated_at: seq,
})
const filters = new CollectionFilters(new CollectionRegistry())
const settleSoon = <T>(p: Promise<T>) => Promise.race([p.then(() => true), new Promise<false>((r) => setTimeout(() => r(false), 50))])

/** The FrameSink port's behaviour, run against every adapter. */
function frameSinkContract(t: Test, open: () => Promise<SinkDriver>): void {
  t.test('notices arrive as sent, in order', async (t) => {
    const d = await open()
    t.teardown(() => d.close())
    d.sink.send({ t: 'synced', ref: 1, cursor: 0 })
    d.sink.send({ t: 'scope', scope: ['chat.history'], added: [], removed: ['settings'] })
    d.sink.send({ t: 'reset', reason: 'epoch_changed', epoch: 'e2' })
    await waitUntil(() => d.received.length === 3)
    t.same(d.received, [
      { t: 'synced', ref: 1, cursor: 0 },
      { t: 'scope', scope: ['chat.history'], added: [], removed: ['settings'] },
      { t: 'reset', reason: 'epoch_changed', epoch: 'e2' },
    ])
  })

  t.test('a live batch arrives as one changes frame, its items narrowed by the filter', async (t) => {
    const d = await open()
    t.teardown(() => d.close())
    const batch = { user: 'u', from: 4, to: 7, changes: [change(5), change(6, 'conversations'), change(7)] }
    d.sink.sendLive(batch, filters.of(['chat.history']))
    d.sink.sendLive({ ...batch, from: 7, to: 8, changes: [change(8)] }, filters.of(null))
    await waitUntil(() => d.received.length === 2)
    t.same(d.received, [
      { t: 'changes', from: 4, to: 7, items: [change(6, 'conversations')] },
      { t: 'changes', from: 7, to: 8, items: [change(8)] },
    ])
  })

  t.test('a paced frame arrives whole: parts, if any, chain from → to and carry every item', async (t) => {
    const d = await open()
    t.teardown(() => d.close())
    const items = Array.from({ length: 12 }, (_, i) => change(i + 1, 'settings', 20_000)) // over the frame limit
    t.equal(await d.sink.sendPaced(() => ({ t: 'changes', from: 0, to: 15, items }), () => true), true)
    t.equal(await d.sink.sendPaced(() => ({ t: 'backfill', collections: ['settings'], items: [change(3)] }), () => true), true)
    await waitUntil(() => d.received.at(-1)?.t === 'backfill')
    const parts = d.received.slice(0, -1)
    t.same([parts[0]!.from, parts.at(-1)!.to], [0, 15])
    t.ok(parts.every((p, i) => i === 0 || p.from === parts[i - 1]!.to), 'each part starts where the previous ended')
    t.same(parts.flatMap((p) => p.items), items)
    t.ok(parts.slice(0, -1).every((p) => p.more === true) && parts.at(-1)!.more === undefined, 'all parts but the last say more')
    t.same(d.received.at(-1), { t: 'backfill', collections: ['settings'], items: [change(3)] })
  })

  t.test('a paced frame that is no longer current is not sent', async (t) => {
    const d = await open()
    t.teardown(() => d.close())
    t.equal(await d.sink.sendPaced(() => ({ t: 'changes', from: 0, to: 1, items: [change(1)] }), () => false), false)
    d.sink.send({ t: 'synced', ref: 9, cursor: 0 })
    await waitUntil(() => d.received.length > 0)
    t.same(d.received, [{ t: 'synced', ref: 9, cursor: 0 }], 'only the notice after it arrived')
  })

  t.test('paced frames wait for a reader that stopped, and go on when it reads', async (t) => {
    const d = await open()
    t.teardown(() => d.close())
    d.stopReading()
    let sent = 0
    let waiting: Promise<boolean> | undefined
    // A stopped reader's buffers fill; the sink then holds the next frame back.
    while (!waiting && sent < 400) {
      const p = d.sink.sendPaced(() => ({ t: 'changes', from: sent, to: sent + 1, items: [change(sent + 1, 'settings', 60_000)] }), () => true)
      if (await settleSoon(p)) sent++
      else waiting = p
    }
    t.ok(waiting, `a send waited once the reader stopped (after ${sent} frames)`)
    // The waiting frame is made when it goes, not when it was handed over.
    let built = false
    const after = d.sink.sendPaced(() => ((built = true), { t: 'changes', from: sent + 1, to: sent + 2, items: [] }), () => true)
    t.equal(built, false, 'a frame waiting for the reader is not built yet')
    d.startReading()
    t.equal(await waiting, true, 'it is sent when the reader reads again')
    t.equal(await after, true)
    t.equal(built, true)
    await waitUntil(() => d.received.length === sent + 2, 20_000)
    t.same(d.received.map((f) => f.to), Array.from({ length: sent + 2 }, (_, i) => i + 1), 'everything arrived, in order')
  })

  t.test('once the connection ended nothing is sent; a waiting paced send gives up', async (t) => {
    const d = await open()
    t.teardown(() => d.close())
    d.stopReading()
    let waiting: Promise<boolean> | undefined
    for (let i = 0; !waiting && i < 400; i++) {
      const p = d.sink.sendPaced(() => ({ t: 'changes', from: i, to: i + 1, items: [change(i + 1, 'settings', 60_000)] }), () => true)
      if (!(await settleSoon(p))) waiting = p
    }
    t.ok(waiting, 'a send is waiting')
    await d.end()
    t.equal(await waiting, false, 'the waiting send gives up')
    t.equal(await d.sink.sendPaced(() => ({ t: 'changes', from: 0, to: 1, items: [] }), () => true), false)
    d.sink.send({ t: 'synced', ref: 1, cursor: 0 })
    d.sink.sendLive({ user: 'u', from: 0, to: 1, changes: [change(1)] }, filters.of(null))
    t.pass('sends on an ended connection are dropped quietly')
  })

  t.test('closing for a retry reaches the connection', async (t) => {
    const d = await open()
    t.teardown(() => d.close())
    d.sink.closeForRetry()
    await waitUntil(() => d.retried())
    t.pass('closed for a retry')
  })
}

t.test('the recording sink', async (t) => {
  frameSinkContract(t, async () => {
    const sink = new RecordingSink()
    return {
      sink,
      get received() {
        return sink.frames() as Array<Record<string, any>>
      },
      stopReading: () => sink.stall(),
      startReading: () => sink.drain(),
      end: async () => sink.end(),
      retried: () => sink.sent.some((s) => s.via === 'retry'),
      close: async () => {},
    }
  })
})

for (const kind of ['uws', 'ws'] as const) {
  t.test(`the socket sink on ${kind}`, async (t) => {
    const opened: Array<(sink: SocketSink, ended: Promise<void>) => void> = []
    const server = await startTransport(
      kind,
      {
        host: '127.0.0.1',
        port: 0,
        wsPath: '/v1/ws',
        maxPayloadBytes: 4 * MAX_FRAME,
        idleTimeoutSec: 60,
        fetch: async () => new Response('', { status: 404 }),
        sockets: {
          open(conn): SocketSession {
            const sink = new SocketSink(
              conn,
              { limits: { maxFrameBytes: MAX_FRAME }, sendBufferBytes: 256 * 1024, liveFrames: new LiveFrames(MAX_FRAME) },
              { slowConsumer: () => conn.close(1013, 'slow_consumer'), retryLater: () => conn.close(1013, 'unavailable') },
            )
            let ended!: () => void
            const endedP = new Promise<void>((r) => (ended = r))
            opened.shift()!(sink, endedP)
            return { message() {}, drain: () => sink.writable(), closed: () => (sink.end(), ended()) }
          },
        },
      },
      () => {},
    )
    t.teardown(() => server.close())
    frameSinkContract(t, async () => {
      const ready = new Promise<{ sink: SocketSink; ended: Promise<void> }>((resolve) => opened.push((sink, ended) => resolve({ sink, ended })))
      const ws = new WebSocket(`ws://127.0.0.1:${server.port}/v1/ws`, { perMessageDeflate: false })
      const received: Array<Record<string, any>> = []
      let closeCode: number | undefined
      ws.on('message', (data: Buffer, isBinary: boolean) => received.push(decodeFrame(isBinary ? data : data.toString(), isBinary)))
      ws.on('close', (code) => (closeCode = code))
      await new Promise((r) => ws.once('open', r))
      const { sink, ended } = await ready
      const tcp = (ws as unknown as { _socket: { pause(): void; resume(): void } })._socket
      return {
        sink,
        received,
        stopReading: () => tcp.pause(),
        startReading: () => tcp.resume(),
        end: async () => {
          ws.terminate()
          await ended
        },
        retried: () => closeCode === 1013,
        close: async () => {
          tcp.resume()
          ws.terminate()
          await ended
        },
      }
    })
  })
}
