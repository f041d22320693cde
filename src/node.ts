/**
 * Wires one node together — config -> store -> pool -> replication ->
 * supervisor -> HTTP — and takes it apart in the opposite order on shutdown.
 * Nothing else starts or stops the pieces.
 */
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { type AddressInfo, isIP } from 'node:net';
import type { Logger } from 'pino';
import type { ClusterStatus } from './client/types.ts';
import { HybridClock, timestampToMs } from './clock.ts';
import { ClusterOverviewSource } from './cluster-overview.ts';
import { runsFromSources } from './code-location.ts';
import type { NodeConfig } from './config.ts';
import { ConfigError, PeerkvError } from './errors.ts';
import { createHttpServer, type HttpServer, type Server } from './http/app.ts';
import { backupRoutes } from './http/backup-routes.ts';
import { batchRoutes } from './http/batch-routes.ts';
import { BodyBudget } from './http/body-budget.ts';
import { type KvService, kvRoutes } from './http/kv-routes.ts';
import { memberRoutes } from './http/member-routes.ts';
import { operatorRoutes } from './http/operator-routes.ts';
import { opsRoutes } from './http/ops-routes.ts';
import { bucketRowsFromPool, type SyncService, syncRoutes } from './http/sync-routes.ts';
import { watchRoutes } from './http/watch-routes.ts';
import { assertLimitRelations, limits, replicationLimits } from './limits.ts';
import { ClusterMembers } from './membership/cluster-members.ts';
import { memberVersion } from './membership/membership.ts';
import { LiveKeyCounter } from './metrics/live-keys.ts';
import { Metrics, type NodeProbe } from './metrics/metrics.ts';
import { createStorePool, type StorePool } from './pool.ts';
import { PeerClient } from './replication/peer-client.ts';
import { PeerSender } from './replication/peer-sender.ts';
import { nodeRuntime } from './runtime.ts';
import { Authorizer } from './security/authorizer.ts';
import { loadSecurity } from './security/load-security.ts';
import { loadTls, peerConnector, serverTlsOptions, type TlsMaterial } from './security/tls.ts';
import { Checkpointer } from './store/checkpointer.ts';
import { copyInWorker } from './store/copy-in-worker.ts';
import { makeDataDir } from './store/data-dir.ts';
import { ExpirySweeper } from './store/expiry-sweeper.ts';
import { KvStore } from './store/kv-store.ts';
import { scrubDigest } from './store/scrub.ts';
import { Snapshotter } from './store/snapshots.ts';
import type { MutationResult } from './store/types.ts';
import { WriteQueue } from './store/write-queue.ts';
import { newPeer, type Peer, peerStatus, Supervisor } from './supervisor.ts';
import { Resync } from './sync/resync.ts';
import { TombstoneCollector } from './tombstones/collector.ts';
import { RemovedMembers } from './tombstones/removed-members.ts';
import { formatAcked, formatCovered } from './tombstones/stability.ts';
import { WatchHub } from './watch/watch-hub.ts';

export class PeerkvNode {
  /** A nonce for this process: how the node recognises itself in --peers (not by node id). */
  readonly instanceId = randomBytes(8).toString('hex');
  readonly clock: HybridClock;
  readonly store: KvStore;
  readonly writes: WriteQueue;
  readonly pool: StorePool;
  readonly checkpointer: Checkpointer;
  /** The peers this node replicates with: the other members (changes as members join and leave). */
  readonly peers: Peer[];
  readonly members: ClusterMembers;
  readonly supervisor: Supervisor;
  readonly sweeper: ExpirySweeper;
  readonly tombstones: TombstoneCollector<Peer>;
  readonly #removed: RemovedMembers;
  readonly watchers: WatchHub;
  readonly snapshots: Snapshotter;
  readonly #http: HttpServer;
  readonly #log: Logger;
  readonly #config: NodeConfig;
  readonly #wallMs: () => number;
  readonly #startedMs = Date.now();
  readonly #authorizer: Authorizer;
  readonly #metrics: Metrics;
  readonly #liveKeys = new LiveKeyCounter();
  /** The TLS files in force (reloaded on SIGHUP), and whether the port serves HTTPS. */
  #tls: TlsMaterial;
  readonly #https: boolean;
  #stopping = false;
  /** Why the node is not ready (see /readyz): the start-up digest check failed; else null. */
  #notReady: string | null = null;
  /** When a behind-horizon refusal was last logged, per sending node. */
  readonly #behindHorizonLogged = new Map<string, number>();
  /** IP addresses members connect from (the connection guard keeps slots for them). */
  readonly #peerAddresses: Set<string>;

  private constructor(config: NodeConfig, log: Logger) {
    this.#config = config;
    this.#log = log;
    this.#authorizer = new Authorizer(loadSecurity(config.security), {
      log: log.child({ component: 'auth' }),
      peerCertificateRequired: config.tls.verifyPeers,
      monoMs: () => performance.now(),
    });
    this.#tls = loadTls(config.tls);
    this.#https = this.#tls.cert !== null;
    this.#wallMs = () => Date.now() + config.clockOffsetMs;
    this.clock = new HybridClock(
      this.#wallMs,
      0,
      () => this.#versionAheadMsMax(),
      () => this.#peerClockHigh(),
    );
    // Only now, with the security and TLS files read: a bad configuration leaves no data dir.
    makeDataDir(config.dataDir);
    this.store = new KvStore(
      config.dataDir,
      config.sync,
      this.clock,
      log.child({ component: 'store' }),
      // Off the event loop: the checkpointer copies the WAL into the file, and the write
      // queue's commits are flushed on libuv's pool before they are answered.
      { autoCheckpoint: false, flushOffThread: true },
    );
    const metrics = new Metrics(this.store.nodeId);
    this.#metrics = metrics;
    const store = this.store;
    // Counted over the live-key index before the first commit (1M keys: tens of ms), so the
    // node is ready without waiting for the digest scrub, which runs on in the pool.
    this.#liveKeys.counted(store.liveRows(), store.seq);
    this.writes = new WriteQueue(this.store, {
      commitMutationsMax: limits.commitMutationsMax,
      queuedMutationsMax: limits.writeQueueMutationsMax,
      runtime: nodeRuntime,
      onCommit: (results, mutations, commitMs) => {
        metrics.observeCommit(mutations.length, commitMs / 1000);
        this.#liveKeys.noteCommit(mutations, results, this.store.seq);
        for (const peer of this.peers) peer.sender.notify();
        this.watchers.notify();
      },
    });
    this.watchers = new WatchHub(
      {
        get seq() {
          return store.seq;
        },
        changesSince: (afterSeq, limit) => store.changesSince(afterSeq, limit),
        wallMs: this.#wallMs,
      },
      {
        watchersMax: config.watchersMax,
        heartbeatMs: config.watchHeartbeatMs,
        log: log.child({ component: 'watch' }),
      },
    );
    this.sweeper = new ExpirySweeper({
      expiredKeys: (nowWallMs, limit) => this.store.expiredKeys(nowWallMs, limit),
      submit: (mutations) => this.writes.submit(mutations),
      wallMs: this.#wallMs,
      intervalMs: config.sweepIntervalMs,
      catchUpMs: limits.sweepCatchUpMs,
      entriesMax: limits.sweepEntriesMax,
      log: log.child({ component: 'expiry' }),
      runtime: nodeRuntime,
    });
    this.snapshots = new Snapshotter(copyInWorker(this.store.dbPath), {
      dataDir: config.dataDir,
      retryAfterSeconds: limits.backupRetryAfterSeconds,
      wallMs: this.#wallMs,
      log: log.child({ component: 'backup' }),
    });
    this.pool = createStorePool(undefined, (kind, ms) => metrics.observePoolTask(kind, ms / 1000));
    this.checkpointer = new Checkpointer(this.store, this.pool, {
      intervalMs: limits.checkpointIntervalMs,
      tailFrames: limits.checkpointTailFrames,
      holdWrites: () => this.writes.hold(),
      holdMsMax: limits.checkpointHoldMsMax,
      inlineChangesMax: limits.checkpointInlineChangesMax,
      onCheckpoint: (thread, result, ms) =>
        metrics.observeCheckpoint(thread, result.walFrames, ms / 1000),
      log: log.child({ component: 'checkpoint' }),
      runtime: nodeRuntime,
    });
    this.peers = [];
    this.members = new ClusterMembers({
      store: this.store,
      selfNodeId: this.store.nodeId,
      selfUrl: config.advertiseUrl,
      configuredPeers: config.peers,
      join: config.join,
      peers: this.peers,
      createPeer: (url) => this.#createPeer(url),
      clientFor: (url) => this.#memberClient(url),
      onPeerUrl: (url) => {
        for (const address of peerAddresses([url])) this.#peerAddresses.add(address);
      },
      newVersion: (above) => memberVersion(this.clock, this.store.nodeId, above),
      wallMs: this.#wallMs,
      gossipIntervalMs: Math.max(250, Math.min(config.pingIntervalMs, 5_000)),
      fullIntervalMs: config.antiEntropyIntervalMs,
      log: log.child({ component: 'membership' }),
      runtime: nodeRuntime,
    });
    this.peers.push(...this.members.initialPeerUrls().map((url) => this.#createPeer(url)));
    const membership = this.members.membership;
    const removed = new RemovedMembers({
      rows: () => membership.rows(),
      revision: () => membership.revision,
      selfNodeId: this.store.nodeId,
      store: this.store,
    });
    this.#removed = removed;
    this.store.admits = (origin, source) => removed.admits(origin, source);
    this.members.isClosed = (nodeId) => removed.isClosed(nodeId);
    this.#peerAddresses = peerAddresses([
      ...this.peers.map((peer) => peer.url),
      ...(config.join === null ? [] : [config.join]),
    ]);
    this.supervisor = new Supervisor({
      selfNodeId: this.store.nodeId,
      selfInstanceId: this.instanceId,
      peers: this.peers,
      pingIntervalMs: config.pingIntervalMs,
      antiEntropyIntervalMs: config.antiEntropyIntervalMs,
      clockSkewMsMax: config.clockSkewMsMax,
      clockAheadMs: () => this.clock.aheadOfWallMs(),
      valueBytesMax: config.valueBytesMax,
      wallMs: this.#wallMs,
      log: log.child({ component: 'supervisor' }),
      runResync: (peer, yieldToBusyPeer) => this.#resync(peer, yieldToBusyPeer),
      random: Math.random,
      runtime: nodeRuntime,
      startupWindowMs: 3 * config.pingIntervalMs,
      busyPeerStallMs: config.timeoutMs,
      admit: (peer, nodeId) => this.members.admit(peer, nodeId),
      onResyncDone: (record) =>
        metrics.observeResync({
          trigger: record.trigger,
          result: record.error === undefined ? (record.result ?? 'unknown') : 'failed',
          seconds: record.durationMs / 1000,
          entriesSent: record.entriesSent ?? 0,
          entriesReceived: record.entriesReceived ?? 0,
          bytesSent: record.bytesSent ?? 0,
          bytesReceived: record.bytesReceived ?? 0,
        }),
    });
    this.tombstones = new TombstoneCollector({
      store: this.store,
      peers: () => this.peers,
      graceMs: config.tombstoneGraceMs,
      intervalMs: config.pingIntervalMs,
      wallMs: this.#wallMs,
      log: log.child({ component: 'tombstones' }),
      runtime: nodeRuntime,
      onRemoved: (count) => metrics.observeTombstonesRemoved(count),
      removed,
      removedMemberHoldMs: config.removedMemberHoldMs,
      wantResync: (peer) => this.supervisor.wantResync(peer, 'removed-member'),
    });
    metrics.sample(this.#probe());
    assertLimitRelations(config.valueBytesMax);
    const bodyBudget = new BodyBudget(limits.bodyBytesInFlightMax);
    const routeOptions = {
      valueBytesMax: config.valueBytesMax,
      wallMs: this.#wallMs,
      timestampMax: () => this.clock.timestampMax(),
      clockHigh: () => this.clock.last,
      ackHeaders: () => {
        const report = this.tombstones.report();
        return {
          horizon: String(report.horizon),
          acked: formatAcked(report.acked),
          covered: report.covered ? formatCovered(report.covered) : '',
        };
      },
      bodyBudget,
    };
    const kvService = this.#kvService();
    const overview = new ClusterOverviewSource({
      selfStatus: () => this.#clusterStatus(),
      fetchStatus: async (url) => {
        const peer = this.peers.find((candidate) => candidate.url === url);
        return (await peer?.client.call('GET', '/cluster'))?.json;
      },
      fetchTimeoutMs: Math.min(config.timeoutMs, limits.overviewFetchTimeoutMs),
      cacheMs: limits.overviewCacheMs,
      monoMs: () => performance.now(),
      wallMs: this.#wallMs,
    });
    const routes = [
      ...kvRoutes(kvService, routeOptions),
      ...batchRoutes(kvService, routeOptions),
      ...watchRoutes({
        nodeId: this.store.nodeId,
        get seq() {
          return store.seq;
        },
        hub: this.watchers,
      }),
      ...syncRoutes(this.#syncService(), routeOptions),
      ...opsRoutes({
        notReadyReason: () => this.#notReadyReason(),
        metricsContentType: metrics.contentType,
        metricsText: () => metrics.text(),
      }),
      ...operatorRoutes({ overview: () => overview.overview() }),
      ...memberRoutes(this.members.service(), bodyBudget),
      ...backupRoutes(this.snapshots, {
        chunkBytes: limits.backupChunkBytes,
        idleMs: config.requestTimeoutMs,
        log: log.child({ component: 'backup' }),
      }),
    ];
    this.#http = createHttpServer(routes, log.child({ component: 'http' }), {
      connectionsMax: config.connectionsMax,
      connectionsPerClientMax:
        config.connectionsPerClientMax || Math.max(1, Math.floor(config.connectionsMax / 4)),
      peerAddresses: this.#peerAddresses,
      requestTimeoutMs: config.requestTimeoutMs,
      authorizer: this.#authorizer,
      metrics,
      tls: this.#https ? serverTlsOptions(this.#tls, config.tls) : null,
    });
  }

  static async start(config: NodeConfig, log: Logger): Promise<PeerkvNode> {
    const node = new PeerkvNode(config, log);
    try {
      await node.snapshots.removeLeftovers();
      await node.#listen();
    } catch (error) {
      await node.pool.close();
      node.store.close();
      throw error;
    }
    node.supervisor.start();
    node.members.start();
    node.sweeper.start();
    node.tombstones.start();
    node.checkpointer.start();
    node.#scrub();
    node.#warnIfOpen();
    log.info(
      {
        nodeId: node.store.nodeId,
        dataDir: config.dataDir,
        peers: config.peers,
        keys: node.store.digest.entryCount(),
        code: runsFromSources ? 'sources' : 'compiled',
      },
      'node started',
    );
    return node;
  }

  get #server(): Server {
    return this.#http.server;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Stops accepting, lets in-flight requests finish, commits, closes. */
  async stop(): Promise<void> {
    this.#stopping = true;
    this.#log.info('node stopping');
    this.snapshots.abort();
    this.watchers.closeAll();
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    this.#http.closeWaitingConnections();
    // A request in flight now leaves its keep-alive connection idle once answered, which
    // close() alone would leave open until the client or keepAliveTimeout (5 s) ends it.
    const idleSweep = setInterval(() => this.#server.closeIdleConnections(), 20);
    const grace = setTimeout(() => this.#server.closeAllConnections(), limits.shutdownGraceMs);
    await this.supervisor.stop();
    await this.members.stop();
    await this.sweeper.stop();
    this.tombstones.stop();
    await closed;
    clearInterval(idleSweep);
    clearTimeout(grace);
    await this.writes.close();
    for (const peer of this.peers) peer.sender.stop();
    await Promise.all(this.peers.map((peer) => peer.client.close()));
    await this.checkpointer.close();
    await this.pool.close();
    await this.snapshots.close();
    this.store.close();
    this.#log.info('node stopped');
  }

  /**
   * Re-reads the secrets and client tokens (SIGHUP). A mistake keeps the
   * ones in force and is logged; the node keeps serving either way.
   */
  reload(): void {
    try {
      const security = loadSecurity(this.#config.security);
      const tls = loadTls(this.#config.tls);
      if (this.#https !== (tls.cert !== null))
        throw new ConfigError('TLS cannot be turned on or off by a reload');
      this.#authorizer.replace(security);
      if (this.#https) this.#http.setTls(serverTlsOptions(tls, this.#config.tls));
      this.#tls = tls;
      this.#log.info({ tls: this.#https }, 'secrets and certificates reloaded');
    } catch (error) {
      const reason = error instanceof ConfigError ? error.message : String(error);
      this.#log.error({ reason }, 'reload failed; the previous secrets stay in force');
    }
  }

  #warnIfOpen(): void {
    const { tokens, clusterSecret } = this.#authorizer.state;
    if (tokens === null && clusterSecret === null) {
      this.#log.warn(
        'node is open: no --auth-file and no cluster secret, anyone who can reach its port can read, write and replicate',
      );
    } else if (tokens === null) {
      this.#log.warn(
        'client routes are open: no --auth-file, anyone who can reach its port can read and write',
      );
    }
  }

  /**
   * How far ahead of our wall clock a version may be: the largest offset
   * measured to a peer (a peer whose clock runs ahead writes ahead) plus a
   * few seconds of slack.
   */
  #versionAheadMsMax(): number {
    let offsetMs = 0;
    for (const peer of this.peers ?? []) offsetMs = Math.max(offsetMs, peer.clockOffsetMs ?? 0);
    return offsetMs + replicationLimits.versionAheadSlackMs;
  }

  /** The highest version timestamp any peer's clock has been seen to reach. */
  #peerClockHigh(): number {
    let high = 0;
    for (const peer of this.peers ?? []) high = Math.max(high, peer.clockHigh);
    return high;
  }

  #memberClient(url: string): PeerClient {
    return new PeerClient(url, {
      timeoutMs: this.#config.timeoutMs,
      valueBytesMax: this.#config.valueBytesMax,
      connections: 1,
      authorization: () => this.#authorizer.peerAuthorization(),
      connect: url.startsWith('https:')
        ? () => peerConnector(this.#tls, this.#config.timeoutMs)
        : undefined,
    });
  }

  #createPeer(url: string): Peer {
    const client = new PeerClient(url, {
      timeoutMs: this.#config.timeoutMs,
      valueBytesMax: this.#config.valueBytesMax,
      connections: replicationLimits.peerConnections,
      authorization: () => this.#authorizer.peerAuthorization(),
      // Built per connection from the files in force, so a reload reaches new connections.
      connect: url.startsWith('https:')
        ? () => peerConnector(this.#tls, this.#config.timeoutMs)
        : undefined,
    });
    const sender = new PeerSender({
      store: this.store,
      pool: this.pool,
      client,
      log: this.#log.child({ component: 'replication', peer: url }),
      wallMs: this.#wallMs,
      random: Math.random,
      runtime: nodeRuntime,
      observeLagMs: (lagMs) => this.#metrics.observeReplicationLag(url, lagMs / 1000),
      onRefused: () => this.supervisor.noteRefused(peer),
    });
    const peer = newPeer(url, client, sender);
    return peer;
  }

  #resync(peer: Peer, yieldToBusyPeer: boolean) {
    const resync = new Resync(
      {
        store: this.store,
        pool: this.pool,
        submit: (mutations) => this.writes.submit(mutations),
        log: this.#log.child({ component: 'resync', peer: peer.url }),
        valueBytesMax: this.#config.valueBytesMax,
        localBacklog: () => peer.sender.pending,
        sleep: (ms) => nodeRuntime.sleep(ms),
        deferMs: Math.min(this.#config.pingIntervalMs, 1_000),
        timestampMax: () => this.clock.timestampMax(),
        yieldToBusyPeer,
        monoMs: () => nodeRuntime.monoMs(),
        deadlineBaseMs: Math.max(
          replicationLimits.resyncDeadlineMinMs,
          replicationLimits.resyncDeadlineTimeouts * this.#config.timeoutMs,
        ),
        behindHorizon: (from, count) => this.#behindHorizon(from, count),
        onMoved: (entries) => this.supervisor.noteResyncMoved(entries),
      },
      peer.client,
      peer.nodeId!,
    );
    return resync.run();
  }

  /** Verifies the persisted bucket digest against the rows, in the pool. */
  #scrub(): void {
    scrubDigest(this.store, this.pool).then(
      (scrub) => {
        const repaired = scrub.repairedBuckets;
        if (repaired > 0) this.#log.warn({ buckets: repaired }, 'digest scrub repaired buckets');
        else this.#log.debug('digest scrub found the digest exact');
      },
      (error: unknown) => {
        // A stop closes the pool under a running scrub; the next start scrubs again.
        if (this.#stopping) this.#log.debug({ err: error }, 'digest scrub cut short by shutdown');
        else this.#log.error({ err: error }, 'digest scrub failed');
        this.#notReady = 'start-up digest check failed (see the log)';
      },
    );
  }

  /** What the metrics sample at each scrape: cheap reads of in-memory state and file sizes. */
  #probe(): NodeProbe {
    const live = () => this.#liveKeys.live ?? 0;
    return {
      liveKeys: live,
      tombstones: () => Math.max(0, this.store.digest.entryCount() - live()),
      tombstoneHorizonMs: () => timestampToMs(this.store.horizon),
      databaseBytes: () => databaseBytes(this.store.dbPath),
      writeQueueMutations: () => this.writes.queued,
      poolQueuedTasks: () => this.pool.queuedTasks,
      poolThreads: () => this.pool.threads,
      ready: () => this.#notReadyReason() === null,
      clockAheadMs: () => this.clock.aheadOfWallMs(),
      storageWritable: () => this.store.storageError === null,
      nodeIdConflict: () => this.supervisor.idConflict,
      readCacheLookups: () => this.store.readCacheStats,
      peers: () =>
        this.peers
          .filter((peer) => peer.state !== 'self')
          .map((peer) => {
            const stats = peer.sender.stats();
            return {
              peer: peer.url,
              up: peer.state === 'up',
              clockOffsetMs: peer.clockOffsetMs,
              pendingChanges: stats.pendingChanges,
              oldestPendingAgeMs: stats.oldestPendingAgeMs,
              entriesSent: stats.entriesSent,
              bytesSent: stats.bytesSent,
              batchesSent: stats.batchesSent,
              failures: stats.failures,
              refusedEntries: stats.refusedEntries,
            };
          }),
    };
  }

  #notReadyReason(): string | null {
    if (this.#stopping) return 'shutting down';
    if (this.members.notReadyReason !== null) return this.members.notReadyReason;
    if (this.supervisor.idConflict) return 'another process runs with this node id';
    return this.#notReady;
  }

  #kvService(): KvService {
    const store = this.store;
    return {
      nodeId: store.nodeId,
      get: (key) => store.getLive(key),
      list: (prefix, after, limit) => store.list(prefix, after, limit),
      instanceId: this.instanceId,
      write: async (mutation): Promise<MutationResult> => {
        this.#refuseWritesOnIdConflict();
        // A lone node need not remember deleting a key it never held (see Mutation).
        const tombstoneIfAbsent = this.peers.length > 0 || this.members.clustered;
        const [result] = await this.writes.submit([{ ...mutation, tombstoneIfAbsent }]);
        return result!;
      },
      writeRoom: () => this.writes.room,
      writeBatch: (mutations) => {
        this.#refuseWritesOnIdConflict();
        return this.writes.submit(mutations, { atomic: true });
      },
      storeHash: () => store.digest.root(),
    };
  }

  /** Two live processes with one node id could issue the same version for different writes. */
  #refuseWritesOnIdConflict(): void {
    if (!this.supervisor.idConflict) return;
    throw new PeerkvError(
      'NODE_ID_CONFLICT',
      'another process runs with this node id (a copied data dir): writes are refused until one of them gets a new id (peerkv new-id --data-dir <dir>)',
    );
  }

  #syncService(): SyncService {
    const store = this.store;
    return {
      nodeId: store.nodeId,
      digest: store.digest,
      submit: (mutations, options) => {
        // The seed's single {"key","value"} is stamped here like a client write.
        if (mutations.some((mutation) => mutation.kind === 'local')) {
          this.#refuseWritesOnIdConflict();
        }
        return this.writes.submit(mutations, options);
      },
      writeRoom: () => this.writes.room,
      get: (key) => store.get(key),
      bucketRows: bucketRowsFromPool(this.pool, store.dbPath),
      backlogFor: (nodeId) =>
        this.peers.find((peer) => (peer.nodeId ?? peer.sender.peerNodeId) === nodeId)?.sender
          .pending ?? 0,
      resyncing: () => this.supervisor.resyncing,
      resyncMoved: () => this.supervisor.resyncMoved,
      clusterStatus: () => this.#clusterStatus(),
      behindHorizon: (from, count) => this.#behindHorizon(from, count),
      refusesSender: (from) => this.members.membership.isRemoved(from),
    };
  }

  /**
   * A peer offered live entries older than our tombstone horizon that we do
   * not hold: it (or the backup it came from) is older than what was removed.
   * They were refused; the log says so once a minute per peer.
   */
  #behindHorizon(from: string, count: number): void {
    this.#metrics.observeBehindHorizon(count);
    const now = this.#wallMs();
    if (now - (this.#behindHorizonLogged.get(from) ?? Number.NEGATIVE_INFINITY) < 60_000) return;
    this.#behindHorizonLogged.set(from, now);
    this.#log.error(
      { from, refused: count, horizon: new Date(timestampToMs(this.store.horizon)).toISOString() },
      'refused entries older than the tombstone horizon from a node that is older than what was removed; that node must be rebuilt from its peers (empty its --data-dir, start it with --join)',
    );
  }

  #clusterStatus(): ClusterStatus {
    const now = this.#wallMs();
    return {
      node: {
        nodeId: this.store.nodeId,
        url: `${this.#https ? 'https' : 'http'}://${this.#config.host}:${this.port}`,
        uptimeMs: Date.now() - this.#startedMs,
        seq: this.store.seq,
        entries: this.store.digest.entryCount(),
        hash: this.store.digest.root(),
        writeQueue: this.writes.queued,
        commits: this.writes.commits,
        storage: storageStatus(this.store.storageError),
        nodeIdConflict: this.supervisor.idConflict,
        clock: {
          aheadOfWallMs: this.clock.aheadOfWallMs(),
          ahead: this.clock.aheadOfWallMs() > this.#config.clockSkewMsMax,
        },
        expiredSwept: this.sweeper.swept,
        tombstones: {
          held: this.store.deadRows,
          horizon:
            this.store.horizon === 0
              ? null
              : new Date(timestampToMs(this.store.horizon)).toISOString(),
          graceMs: this.#config.tombstoneGraceMs,
          /** Why the horizon waits (a removed member not closed yet), or null. */
          paused: this.#removed.pauseReason(),
        },
        watchers: this.watchers.size,
        watchersCutOff: this.watchers.cutOff,
      },
      peers: this.peers
        .filter((peer) => peer.state !== 'self')
        .map((peer) => peerStatus(peer, now)),
    };
  }

  #listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException) => {
        if (error.code === 'EADDRINUSE') {
          reject(
            new ConfigError(
              `--port ${this.#config.port} is already in use on ${this.#config.host}`,
            ),
          );
        } else if (
          error.code === 'EADDRNOTAVAIL' ||
          error.code === 'ENOTFOUND' ||
          error.code === 'EACCES'
        ) {
          reject(
            new ConfigError(
              `cannot listen on ${this.#config.host}:${this.#config.port} (${error.code})`,
            ),
          );
        } else reject(error);
      };
      this.#server.once('error', onError);
      this.#server.listen(this.#config.port, this.#config.host, () => {
        this.#server.off('error', onError);
        resolve();
      });
    });
  }
}

/** Bytes of the SQLite file and its WAL (a file not there counts 0). */
function databaseBytes(dbPath: string): number {
  let bytes = 0;
  for (const path of [dbPath, `${dbPath}-wal`]) {
    try {
      bytes += statSync(path).size;
    } catch (error) {
      // The WAL is absent between checkpoints on some platforms: that is 0 bytes, not a fault.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return bytes;
}

function storageStatus(error: KvStore['storageError']): Record<string, unknown> {
  if (!error) return { writable: true };
  return { writable: false, error: error.code, since: new Date(error.sinceWallMs).toISOString() };
}

/** The IP addresses the peers connect from, as far as their URLs tell (IP literals, localhost). */
function peerAddresses(peers: readonly string[]): Set<string> {
  const addresses = new Set<string>();
  for (const peer of peers) {
    const host = new URL(peer).hostname.replace(/^\[|\]$/g, '');
    if (host === 'localhost') {
      addresses.add('127.0.0.1');
      addresses.add('::1');
    } else if (isIP(host) !== 0) addresses.add(host);
  }
  return addresses;
}
