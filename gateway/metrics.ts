import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { WORKER_ROLES, type ClusterEventRecord } from '../schema';
import type { Orchestrator } from './orchestrator';

/**
 * The gateway's Prometheus metrics (`GET /metrics`). Worker state comes through the
 * gateway: roles and applied seqs are in ZooKeeper, so lag is computed here.
 */
export class Metrics {
  readonly registry = new Registry();
  /** Set by the server once the subscription stream exists. */
  openSubscriptions: () => number = () => 0;
  /** Set by the server once the websocket server exists. */
  openConnections: () => number = () => 0;
  /** The last seq the live feed read from the log (set by the gateway's wiring). */
  liveHeadSeq: () => number = () => 0;
  /** What the read cache holds (set by the gateway's wiring when the cache is on). */
  readCacheSize: () => { answers: number; bytes: number } = () => ({ answers: 0, bytes: 0 });

  readonly requests = new Counter({
    name: 'ridedb_requests_total',
    help: 'API requests by interface, operation and outcome (ok or an error code).',
    labelNames: ['api', 'operation', 'outcome'] as const,
    registers: [this.registry],
  });

  readonly rpcSeconds = new Histogram({
    name: 'ridedb_rpc_duration_seconds',
    help: 'Time from publishing a read or write RPC to its answer.',
    labelNames: ['kind', 'op'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly connectionsRefused = new Counter({
    name: 'ridedb_connections_refused_total',
    help: 'TCP connections closed as they opened: their address had MAX_CONNECTIONS_PER_ADDRESS open (address), or the gateway as many as its open-file limit allows (total).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly connectionsClosed = new Counter({
    name: 'ridedb_connections_closed_total',
    help: 'HTTP connections the gateway closed for answers their clients left unread: a request past MAX_PIPELINED_REQUESTS (pipelined), or the most unsent answers when all together passed MAX_UNSENT_ANSWER_BYTES (unsent).',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly rpcTimeouts = new Counter({
    name: 'ridedb_rpc_timeouts_total',
    help: 'RPCs answered UNAVAILABLE because no worker answered in time.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  readonly rpcBatchSize = new Histogram({
    name: 'ridedb_rpc_batch_size',
    help: 'Requests per RPC message the gateway sent (one message per queue per event-loop turn).',
    labelNames: ['kind'] as const,
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256],
    registers: [this.registry],
  });

  readonly readCache = new Counter({
    name: 'ridedb_read_cache_lookups_total',
    help: 'Compiled reads the read cache answered (hit) or passed to a replica: absent (no answer kept), behind (the log reader had not reached the position in time), expired (by time), stopped (not reading the log).',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly readCacheInvalidations = new Counter({
    name: 'ridedb_read_cache_invalidations_total',
    help: 'Cached answers dropped because a write in the log changed what they depend on (or everything).',
    registers: [this.registry],
  });

  readonly elections = new Counter({
    name: 'ridedb_elections_total',
    help: 'Masters elected since the gateway started.',
    registers: [this.registry],
  });

  readonly scalingEvents = new Counter({
    name: 'ridedb_scaling_events_total',
    help: 'Changes of the slave target, by direction.',
    labelNames: ['direction'] as const,
    registers: [this.registry],
  });

  constructor(orchestrator: Orchestrator) {
    collectDefaultMetrics({ register: this.registry, prefix: 'ridedb_gateway_' });
    new Gauge({
      name: 'ridedb_workers',
      help: 'Live workers by role.',
      labelNames: ['role'] as const,
      registers: [this.registry],
      collect() {
        const workers = orchestrator.workers();
        for (const role of WORKER_ROLES) this.set({ role }, workers.filter((w) => w.role === role).length);
      },
    });
    new Gauge({
      name: 'ridedb_replication_lag_entries',
      help: "Log entries a worker is behind the master's applied seq.",
      labelNames: ['worker', 'role'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        const head = orchestrator.master()?.appliedSeq ?? 0;
        for (const w of orchestrator.workers()) this.set({ worker: w.id, role: w.role }, Math.max(0, head - w.appliedSeq));
      },
    });
    new Gauge({
      name: 'ridedb_epoch',
      help: 'Current cluster epoch (one per election).',
      registers: [this.registry],
      collect() {
        this.set(orchestrator.epoch);
      },
    });
    const openSubscriptions: Gauge = new Gauge({
      name: 'ridedb_subscriptions_open',
      help: 'Open subscriptions (graphql-ws): clusterEvents and live rides.',
      registers: [this.registry],
      collect: () => openSubscriptions.set(this.openSubscriptions()),
    });
    const openConnections: Gauge = new Gauge({
      name: 'ridedb_websocket_connections_open',
      help: 'Open websocket connections (graphql-ws), subscribing or not.',
      registers: [this.registry],
      collect: () => openConnections.set(this.openConnections()),
    });
    const liveHead: Gauge = new Gauge({
      name: 'ridedb_live_head_seq',
      help: "The last log seq this gateway's live feed has read: behind the master's appliedSeq, live subscribers hear late.",
      registers: [this.registry],
      collect: () => liveHead.set(this.liveHeadSeq()),
    });
    const cacheBytes: Gauge = new Gauge({
      name: 'ridedb_read_cache_bytes',
      help: 'Bytes of answers the read cache holds (bounded by READ_CACHE_BYTES).',
      registers: [this.registry],
      collect: () => cacheBytes.set(this.readCacheSize().bytes),
    });
    const cacheAnswers: Gauge = new Gauge({
      name: 'ridedb_read_cache_answers',
      help: 'Answers the read cache holds.',
      registers: [this.registry],
      collect: () => cacheAnswers.set(this.readCacheSize().answers),
    });
    orchestrator.on('event', (event: ClusterEventRecord) => {
      if (event.type === 'LEADER_ELECTED') this.elections.inc();
      if (event.type === 'SCALED_UP') this.scalingEvents.inc({ direction: 'up' });
      if (event.type === 'SCALED_DOWN') this.scalingEvents.inc({ direction: 'down' });
    });
  }
}
