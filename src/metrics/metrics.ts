/**
 * The node's Prometheus metrics (prom-client, through ./prom-core.ts), one registry per node, made in
 * the wiring (src/node.ts) and handed to components as the small interfaces
 * below — never a module-level singleton. Event counts are pushed by the
 * components (requests, commits, lag, resyncs, pool tasks, rejections); state
 * (keys, file size, peers) is sampled from a probe when Prometheus scrapes.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from './prom-core.ts';

/**
 * Why a request was refused, for `peerkv_rejected_requests_total{reason}`.
 * `auth`: no or wrong credentials; `limits`: a size bound; `overload`: a full
 * queue; `timeout`: too slow; `invalid`: malformed; `connections`: the
 * connection bound; `unavailable`: shutting down or not ready.
 */
export type RejectReason =
  | 'auth'
  | 'limits'
  | 'overload'
  | 'timeout'
  | 'invalid'
  | 'connections'
  | 'unavailable';

/** What the HTTP layer reports. */
export interface HttpMetrics {
  observeRequest(route: string, method: string, status: number, seconds: number): void;
  rejected(reason: RejectReason): void;
}

/** Why a resync ran (the supervisor's triggers) and how it ended. */
const RESYNC_TRIGGERS = ['new-peer', 'recovered', 'anti-entropy', 'refused'] as const;
const RESYNC_RESULTS = ['equal', 'synced', 'deferred', 'failed'] as const;
/** The worker-pool task kinds (workers/store-tasks.ts), exported at zero from the start. */
const POOL_TASKS = ['scan-digest', 'bucket-rows', 'change-range', 'checkpoint'] as const;

/** One resync's outcome, for the resync metrics. */
export interface ResyncOutcome {
  readonly trigger: string;
  readonly result: string;
  readonly seconds: number;
  readonly entriesSent: number;
  readonly entriesReceived: number;
  readonly bytesSent: number;
  readonly bytesReceived: number;
}

/** A peer's state when scraped; the counters are the sender's running totals. */
export interface PeerSample {
  readonly peer: string;
  readonly up: boolean;
  readonly clockOffsetMs: number | null;
  readonly pendingChanges: number;
  readonly oldestPendingAgeMs: number | null;
  readonly entriesSent: number;
  readonly bytesSent: number;
  readonly batchesSent: number;
  readonly failures: number;
  /** Entries the peer refused (skipped by the sender). */
  readonly refusedEntries: number;
}

/** The node's state, read at each scrape (each call cheap: no scan of the store). */
export interface NodeProbe {
  liveKeys(): number;
  tombstones(): number;
  /** Wall time of the tombstone horizon, in ms (0: none yet). */
  tombstoneHorizonMs(): number;
  databaseBytes(): number;
  writeQueueMutations(): number;
  poolQueuedTasks(): number;
  poolThreads(): number;
  ready(): boolean;
  /** How far the node's hybrid clock runs ahead of its wall clock, in ms. */
  clockAheadMs(): number;
  /** False while the disk is full (writes answered 507). */
  storageWritable(): boolean;
  /** True while another process answers with this node's id. */
  nodeIdConflict(): boolean;
  /** Point reads the store answered from its cache (hits) and from SQLite (misses), so far. */
  readCacheLookups(): { readonly hits: number; readonly misses: number };
  peers(): readonly PeerSample[];
}

const GAUGES_NAMED_TOTAL = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];
const SECONDS_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];
const LAG_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
const RESYNC_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800];
const COMMIT_SIZE_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000];

export class Metrics implements HttpMetrics {
  readonly registry = new Registry();
  readonly #requests: Histogram<'route' | 'method' | 'status'>;
  readonly #rejections: Counter<'reason'>;
  readonly #commitMutations: Histogram;
  readonly #commitSeconds: Histogram;
  readonly #lagSeconds: Histogram<'peer'>;
  readonly #resyncs: Counter<'trigger' | 'result'>;
  readonly #tombstonesRemoved: Counter;
  readonly #behindHorizon: Counter;
  readonly #resyncEntries: Counter<'direction'>;
  readonly #resyncBytes: Counter<'direction'>;
  readonly #resyncSeconds: Histogram<'result'>;
  readonly #poolTaskSeconds: Histogram<'task'>;
  readonly #checkpointSeconds: Histogram<'thread'>;
  readonly #walFrames: Gauge;

  constructor(nodeId: string) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 20 });
    // Gauges named like counters (promtool refuses them); nodejs_active_* without _total stay.
    for (const name of GAUGES_NAMED_TOTAL) this.registry.removeSingleMetric(name);
    new Gauge({
      name: 'peerkv_node_info',
      help: 'Always 1; the node id is a label',
      labelNames: ['node_id'],
      registers,
    }).set({ node_id: nodeId }, 1);
    this.#requests = new Histogram({
      name: 'peerkv_http_request_duration_seconds',
      help: 'HTTP requests by route pattern, method and status, and how long they took',
      labelNames: ['route', 'method', 'status'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.#rejections = new Counter({
      name: 'peerkv_rejected_requests_total',
      help: 'Requests refused, by reason (auth, limits, overload, timeout, invalid, connections, unavailable)',
      labelNames: ['reason'],
      registers,
    });
    this.#commitMutations = new Histogram({
      name: 'peerkv_commit_mutations',
      help: 'Mutations per group commit (one SQLite transaction)',
      buckets: COMMIT_SIZE_BUCKETS,
      registers,
    });
    this.#commitSeconds = new Histogram({
      name: 'peerkv_commit_duration_seconds',
      help: 'Time of one group commit, fsync included',
      buckets: SECONDS_BUCKETS,
      registers,
    });
    this.#lagSeconds = new Histogram({
      name: 'peerkv_replication_lag_seconds',
      help: 'Age of the oldest change of a batch when the peer acknowledged it',
      labelNames: ['peer'],
      buckets: LAG_BUCKETS,
      registers,
    });
    this.#tombstonesRemoved = new Counter({
      name: 'peerkv_tombstones_removed_total',
      help: 'Tombstones and expired entries removed once every member held them and the grace passed',
      registers: [this.registry],
    });
    this.#behindHorizon = new Counter({
      name: 'peerkv_entries_behind_horizon_total',
      help: 'Live entries from peers refused as older than the tombstone horizon (their node must be rebuilt)',
      registers: [this.registry],
    });
    this.#resyncs = new Counter({
      name: 'peerkv_resyncs_total',
      help: 'Digest resyncs run by this node, by trigger and result',
      labelNames: ['trigger', 'result'],
      registers,
    });
    this.#resyncEntries = new Counter({
      name: 'peerkv_resync_entries_total',
      help: 'Entries moved by resyncs, by direction (sent, received)',
      labelNames: ['direction'],
      registers,
    });
    this.#resyncBytes = new Counter({
      name: 'peerkv_resync_bytes_total',
      help: 'Bytes moved by resyncs, by direction (sent, received)',
      labelNames: ['direction'],
      registers,
    });
    this.#resyncSeconds = new Histogram({
      name: 'peerkv_resync_duration_seconds',
      help: 'Time of one resync, by result',
      labelNames: ['result'],
      buckets: RESYNC_BUCKETS,
      registers,
    });
    // Every known trigger and result is exported at zero from the start, so a dashboard or an
    // alert on a rate sees the series before the first resync, not only after it.
    for (const trigger of RESYNC_TRIGGERS) {
      for (const result of RESYNC_RESULTS) this.#resyncs.inc({ trigger, result }, 0);
    }
    for (const result of RESYNC_RESULTS) this.#resyncSeconds.zero({ result });
    for (const direction of ['sent', 'received']) {
      this.#resyncEntries.inc({ direction }, 0);
      this.#resyncBytes.inc({ direction }, 0);
    }
    this.#poolTaskSeconds = new Histogram({
      name: 'peerkv_pool_task_duration_seconds',
      help: 'Time of one worker-pool task, queueing included, by task',
      labelNames: ['task'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    for (const task of POOL_TASKS) this.#poolTaskSeconds.zero({ task });
    this.#checkpointSeconds = new Histogram({
      name: 'peerkv_wal_checkpoint_duration_seconds',
      help: "WAL checkpoints by the thread they ran on: a pool worker, or the node's own (its event loop)",
      labelNames: ['thread'],
      buckets: SECONDS_BUCKETS,
      registers,
    });
    for (const thread of ['pool', 'node']) this.#checkpointSeconds.zero({ thread });
    this.#walFrames = new Gauge({
      name: 'peerkv_wal_frames',
      help: 'Pages in the write-ahead log at the last checkpoint',
      registers,
    });
  }

  observeCheckpoint(thread: 'pool' | 'node', walFrames: number, seconds: number): void {
    this.#checkpointSeconds.observe({ thread }, seconds);
    this.#walFrames.set(walFrames);
  }

  observeRequest(route: string, method: string, status: number, seconds: number): void {
    this.#requests.observe({ route, method, status: String(status) }, seconds);
  }

  rejected(reason: RejectReason): void {
    this.#rejections.inc({ reason });
  }

  observeCommit(mutations: number, seconds: number): void {
    this.#commitMutations.observe(mutations);
    this.#commitSeconds.observe(seconds);
  }

  observeReplicationLag(peer: string, seconds: number): void {
    this.#lagSeconds.observe({ peer }, seconds);
  }

  observeResync(outcome: ResyncOutcome): void {
    this.#resyncs.inc({ trigger: outcome.trigger, result: outcome.result });
    this.#resyncSeconds.observe({ result: outcome.result }, outcome.seconds);
    this.#resyncEntries.inc({ direction: 'sent' }, outcome.entriesSent);
    this.#resyncEntries.inc({ direction: 'received' }, outcome.entriesReceived);
    this.#resyncBytes.inc({ direction: 'sent' }, outcome.bytesSent);
    this.#resyncBytes.inc({ direction: 'received' }, outcome.bytesReceived);
  }

  observeTombstonesRemoved(count: number): void {
    this.#tombstonesRemoved.inc(count);
  }

  observeBehindHorizon(count: number): void {
    this.#behindHorizon.inc(count);
  }

  observePoolTask(task: string, seconds: number): void {
    this.#poolTaskSeconds.observe({ task }, seconds);
  }

  /** Registers the gauges and counters sampled from `probe` at each scrape. */
  sample(probe: NodeProbe): void {
    sampleNode(this.registry, probe);
    samplePeers(this.registry, probe);
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

function gauge(registry: Registry, name: string, help: string, read: () => number): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

function sampleNode(registry: Registry, probe: NodeProbe): void {
  gauge(registry, 'peerkv_keys', 'Live keys stored', () => probe.liveKeys());
  gauge(registry, 'peerkv_tombstones', 'Deleted keys kept as versioned tombstones', () =>
    probe.tombstones(),
  );
  gauge(
    registry,
    'peerkv_tombstone_horizon_seconds',
    'Tombstones and expired entries older than this (Unix time) were removed; 0 before the first removal',
    () => probe.tombstoneHorizonMs() / 1000,
  );
  gauge(registry, 'peerkv_database_bytes', 'Size of the SQLite file and its WAL', () =>
    probe.databaseBytes(),
  );
  gauge(registry, 'peerkv_write_queue_mutations', 'Mutations waiting for the writer', () =>
    probe.writeQueueMutations(),
  );
  gauge(registry, 'peerkv_pool_queued_tasks', 'Worker-pool tasks waiting for a thread', () =>
    probe.poolQueuedTasks(),
  );
  gauge(registry, 'peerkv_pool_threads', 'Worker-pool threads running', () => probe.poolThreads());
  gauge(registry, 'peerkv_ready', '1 when /readyz answers 200', () => (probe.ready() ? 1 : 0));
  gauge(
    registry,
    'peerkv_clock_ahead_seconds',
    "How far this node's hybrid clock runs ahead of its wall clock",
    () => probe.clockAheadMs() / 1000,
  );
  gauge(registry, 'peerkv_storage_writable', '0 while the disk is full (writes get 507)', () =>
    probe.storageWritable() ? 1 : 0,
  );
  gauge(
    registry,
    'peerkv_node_id_conflict',
    '1 while another process answers with this node id (writes refused)',
    () => (probe.nodeIdConflict() ? 1 : 0),
  );
  const seen = { hit: 0, miss: 0 };
  new Counter({
    name: 'peerkv_read_cache_lookups_total',
    help: "Point reads answered from the store's cache (result hit) and from SQLite (result miss)",
    labelNames: ['result'],
    registers: [registry],
    collect() {
      const { hits, misses } = probe.readCacheLookups();
      this.inc({ result: 'hit' }, hits - seen.hit);
      this.inc({ result: 'miss' }, misses - seen.miss);
      seen.hit = hits;
      seen.miss = misses;
    },
  });
}

type PeerGaugeRead = (sample: PeerSample) => number | null;

function samplePeers(registry: Registry, probe: NodeProbe): void {
  const gauges: [string, string, PeerGaugeRead][] = [
    ['peerkv_peer_up', '1 when the last ping of the peer succeeded', (s) => (s.up ? 1 : 0)],
    [
      'peerkv_peer_clock_offset_seconds',
      "The peer's clock minus ours, from the last ping",
      (s) => (s.clockOffsetMs === null ? null : s.clockOffsetMs / 1000),
    ],
    [
      'peerkv_peer_pending_changes',
      'Changes the peer has not acknowledged',
      (s) => s.pendingChanges,
    ],
    [
      'peerkv_peer_oldest_pending_age_seconds',
      'Age of the oldest change the peer has not acknowledged',
      (s) => (s.oldestPendingAgeMs === null ? 0 : s.oldestPendingAgeMs / 1000),
    ],
  ];
  for (const [name, help, read] of gauges) {
    new Gauge({
      name,
      help,
      labelNames: ['peer'],
      registers: [registry],
      collect() {
        this.reset();
        for (const sample of probe.peers()) {
          const value = read(sample);
          if (value !== null) this.set({ peer: sample.peer }, value);
        }
      },
    });
  }
  const counters: [string, string, (s: PeerSample) => number][] = [
    [
      'peerkv_replication_sent_entries_total',
      'Entries the peer acknowledged',
      (s) => s.entriesSent,
    ],
    [
      'peerkv_replication_sent_bytes_total',
      'Bytes of batches the peer acknowledged',
      (s) => s.bytesSent,
    ],
    ['peerkv_replication_batches_total', 'Batches the peer acknowledged', (s) => s.batchesSent],
    ['peerkv_replication_failures_total', 'Failed pushes to the peer', (s) => s.failures],
    [
      'peerkv_replication_refused_entries_total',
      'Entries the peer refused (skipped, not retried by the sender)',
      (s) => s.refusedEntries,
    ],
  ];
  for (const [name, help, read] of counters) peerCounter(registry, probe, name, help, read);
}

/** A counter mirrored from a running total: each scrape adds what the total grew by. */
function peerCounter(
  registry: Registry,
  probe: NodeProbe,
  name: string,
  help: string,
  read: (sample: PeerSample) => number,
): void {
  const seen = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: ['peer'],
    registers: [registry],
    collect() {
      for (const sample of probe.peers()) {
        const total = read(sample);
        const delta = total - (seen.get(sample.peer) ?? 0);
        seen.set(sample.peer, total);
        if (delta > 0) this.inc({ peer: sample.peer }, delta);
        else if (delta === 0) this.inc({ peer: sample.peer }, 0);
      }
    },
  });
}
