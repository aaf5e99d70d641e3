import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

const LATENCY_BUCKETS_S = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5]

/** The live state the gauges read at scrape time. */
export interface LiveState {
  sockets(): number
  usersOnline(): number
  feeds(): number
  pendingPushes(): number
}

/**
 * The hub's Prometheus metrics, one registry per hub (tests run several hubs in one process).
 * Gauges that mirror live state read it at scrape time instead of being updated on every event;
 * `watch` registers them once the state exists (the counters are needed before it does).
 */
export function createMetrics() {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'synchub_process_' })
  const gauge = (name: string, help: string, read: () => number) =>
    new Gauge({ name, help, registers: [registry], collect() { this.set(read()) } })
  return {
    registry,
    watch(live: LiveState): void {
      gauge('synchub_sockets', 'Authenticated sockets on this node', live.sockets)
      gauge('synchub_users_online', 'Users with at least one socket on this node', live.usersOnline)
      gauge('synchub_feeds', 'Users whose change stream this node follows (sockets and long-polls)', live.feeds)
      gauge('synchub_pushes_pending', 'Pushes queued or committing', live.pendingPushes)
    },
    pushes: new Counter({ name: 'synchub_pushes_total', help: 'Pushes committed (socket and REST)', registers: [registry] }),
    ops: new Counter({ name: 'synchub_ops_total', help: 'Ops in committed pushes', registers: [registry] }),
    commits: new Counter({ name: 'synchub_commits_total', help: 'Database transactions that committed pushes (group commits)', registers: [registry] }),
    commitSeconds: new Histogram({ name: 'synchub_commit_seconds', help: 'Time to plan and commit one group of pushes', buckets: LATENCY_BUCKETS_S, registers: [registry] }),
    deliverSeconds: new Histogram({
      name: 'synchub_publish_deliver_seconds',
      help: 'From a commit published on another node to its arrival here',
      buckets: LATENCY_BUCKETS_S,
      registers: [registry],
    }),
    framesSent: new Counter({ name: 'synchub_change_frames_sent_total', help: 'changes frames sent to sockets', registers: [registry] }),
    gapFills: new Counter({ name: 'synchub_gap_fills_total', help: 'Reads of the database that filled a hole in a live stream', labelNames: ['cause'], registers: [registry] }),
    redisReconnects: new Counter({ name: 'synchub_redis_reconnects_total', help: 'Times the Redis subscriber connection came back', registers: [registry] }),
    byes: new Counter({ name: 'synchub_byes_total', help: 'Sockets ended by the hub, by reason', labelNames: ['reason'], registers: [registry] }),
    badFrames: new Counter({ name: 'synchub_bad_frames_total', help: 'Frames refused, by error code', labelNames: ['code'], registers: [registry] }),
    backupRecords: new Counter({ name: 'synchub_backup_records_total', help: 'Records exported and imported, by direction', labelNames: ['direction'], registers: [registry] }),
    pruned: new Counter({ name: 'synchub_pruned_total', help: 'Rows removed by the periodic purge: expired recycle-bin records, replay answers past the window', labelNames: ['what'], registers: [registry] }),
    httpRequests: new Counter({ name: 'synchub_http_requests_total', help: 'REST requests, by method and status', labelNames: ['method', 'status'], registers: [registry] }),
  }
}

export type Metrics = ReturnType<typeof createMetrics>
