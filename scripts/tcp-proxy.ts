/**
 * A TCP proxy between clients and a hub, for fault injection over real sockets (the SDK's tests
 * and its benchmark): it can cut every connection in the middle of a frame, refuse WebSocket
 * upgrades while passing plain HTTP (as a proxy or firewall that does not speak WebSocket), and
 * go down entirely.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

export interface TcpProxy {
  /** The proxy's base URL (http://127.0.0.1:port): give it to clients instead of the hub's. */
  url: string
  port: number
  /** Answer upgrade requests `HTTP/1.1 <status>` and close; plain requests still pass. */
  refuseUpgrades: boolean
  refuseStatus: number
  /** Cuts every open connection: with `midFrame`, after passing half of the next chunk from the hub. */
  cut(opts?: { midFrame?: boolean }): void
  /** Stops listening and drops every connection (connects are refused until up()). */
  down(): Promise<void>
  up(): Promise<void>
  /** Connections cut so far, and upgrades refused. */
  readonly stats: { cuts: number; refusedUpgrades: number; connections: number }
  close(): Promise<void>
}

interface Pair {
  client: Socket
  upstream: Socket
  cutMidFrame: boolean
}

export async function startTcpProxy(target: { host?: string; port: number }, port = 0): Promise<TcpProxy> {
  const host = target.host ?? '127.0.0.1'
  const pairs = new Set<Pair>()
  /** Every accepted connection, paired or not yet (down() must close them all, or close() waits). */
  const accepted = new Set<Socket>()
  const stats = { cuts: 0, refusedUpgrades: 0, connections: 0 }
  let server: Server | undefined
  let boundPort = port

  const drop = (p: Pair) => {
    p.client.destroy()
    p.upstream.destroy()
    pairs.delete(p)
  }

  const onConnection = (client: Socket) => {
    stats.connections++
    accepted.add(client)
    client.once('close', () => accepted.delete(client))
    client.setNoDelay(true)
    client.once('data', (first: Buffer) => {
      const head = first.toString('latin1', 0, Math.min(first.length, 4096))
      if (proxy.refuseUpgrades && /^upgrade:\s*websocket/im.test(head)) {
        stats.refusedUpgrades++
        client.end(`HTTP/1.1 ${proxy.refuseStatus} Refused\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`)
        return
      }
      const upstream = connect(target.port, host)
      upstream.setNoDelay(true)
      const pair: Pair = { client, upstream, cutMidFrame: false }
      pairs.add(pair)
      upstream.write(first)
      client.on('data', (d) => upstream.write(d))
      upstream.on('data', (d: Buffer) => {
        if (pair.cutMidFrame && d.length > 1) {
          // Half a frame reaches the client, then the line goes dead.
          client.write(d.subarray(0, Math.floor(d.length / 2)), () => drop(pair))
          pair.cutMidFrame = false
          return
        }
        client.write(d)
      })
      const end = () => drop(pair)
      client.on('close', end)
      upstream.on('close', end)
      client.on('error', end)
      upstream.on('error', end)
    })
    client.on('error', () => client.destroy())
  }

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server = createServer(onConnection)
      server.once('error', reject)
      server.listen(boundPort, '127.0.0.1', () => {
        boundPort = (server!.address() as { port: number }).port
        resolve()
      })
    })

  const proxy: TcpProxy = {
    get url() {
      return `http://127.0.0.1:${boundPort}`
    },
    get port() {
      return boundPort
    },
    refuseUpgrades: false,
    refuseStatus: 403,
    stats,
    cut(opts = {}) {
      for (const p of [...pairs]) {
        stats.cuts++
        if (!opts.midFrame) {
          drop(p)
          continue
        }
        p.cutMidFrame = true
        // A line with nothing flowing (an idle socket, a long poll) is cut all the same.
        setTimeout(() => pairs.has(p) && drop(p), 250).unref()
      }
    },
    async down() {
      const s = server
      server = undefined
      for (const p of [...pairs]) drop(p)
      for (const sock of [...accepted]) sock.destroy()
      if (s) await new Promise<void>((r) => s.close(() => r()))
    },
    async up() {
      if (!server) await listen()
    },
    async close() {
      await proxy.down()
    },
  }
  await listen()
  return proxy
}
