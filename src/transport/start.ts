import type { TransportOptions, TransportServer } from './connection.ts'
import { loadUws, startUwsServer } from './uws-server.ts'
import { startWsServer } from './ws-server.ts'

/**
 * Starts the socket server: `auto` takes uWebSockets.js when its binary loads on this machine
 * and falls back to `ws`; `uws` and `ws` pin one (a pinned uws that cannot load is an error).
 */
export async function startTransport(kind: 'auto' | 'uws' | 'ws', opts: TransportOptions, warn: (message: string) => void): Promise<TransportServer> {
  if (kind === 'ws') return startWsServer(opts)
  const uws = await loadUws()
  if (uws instanceof Error) {
    if (kind === 'uws') throw new Error(`SYNCHUB_TRANSPORT=uws but uWebSockets.js does not load here: ${uws.message}`)
    warn(`uWebSockets.js does not load here (${uws.message.split('\n')[0]}); serving with ws`)
    return startWsServer(opts)
  }
  return startUwsServer(uws, opts)
}
