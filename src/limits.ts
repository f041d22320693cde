/**
 * Every bound peerkv keeps, in one place. Flags override the ones users tune
 * (see src/cli.ts); the rest are fixed so that nothing grows without end.
 */
export const KiB = 1024;
export const MiB = 1024 * KiB;

export const limits = {
  /** A key is a non-empty string of at most this many UTF-8 bytes. */
  keyBytesMax: 1024,
  /** Default for --max-value-bytes: the JSON text of one value. */
  valueBytesMaxDefault: 1 * MiB,
  /** A client request body may exceed the value limit by this much (key, JSON framing). */
  bodyOverheadBytes: 16 * KiB,
  /**
   * Request-body bytes being read and parsed at once, node-wide (every route):
   * past it, a body gets 503 with Retry-After before (or while) it is read.
   */
  bodyBytesInFlightMax: 64 * MiB,
  /** POST /replicate requests being read, parsed or applied at once; more get 503. */
  replicateConcurrentMax: 4,
  /**
   * Entries in one incoming POST /replicate batch. A batch commits in one
   * transaction (all or nothing), so this also bounds how long it holds the
   * writer; our own senders send at most resyncRowsPerRequest.
   */
  replicateEntriesMax: 5_000,
  /** Body of a sync control request (digest groups, bucket lists). */
  syncBodyBytesMax: 1 * MiB,
  /**
   * GET /watch: default of --max-watchers; changes read per page; how far a
   * watcher may fall behind while its socket does not drain, and how long a
   * stalled socket is given; default of --watch-heartbeat.
   */
  watchersMaxDefault: 256,
  watchPageRows: 500,
  watchLagChangesMax: 10_000,
  watchDrainTimeoutMs: 10_000,
  watchHeartbeatMsDefault: 15_000,
  /** The longest TTL a write may ask for (ten years), in seconds. */
  ttlSecondsMax: 315_360_000,
  /** Expiry sweep: default of --expiry-sweep, entries per round, pause between full rounds. */
  sweepIntervalMsDefault: 1_000,
  sweepEntriesMax: 1_000,
  sweepCatchUpMs: 20,
  /**
   * POST /batch: ops per batch, and its body (or one largest value and framing,
   * if that is more; see clientBatchBodyBytes). A batch travels to peers whole
   * inside one replication request, so it must fit beside a full batch there.
   */
  clientBatchOpsMax: 1_000,
  clientBatchBodyBytesMax: 3 * MiB,
  /** What the wire form of an entry may add over the op a client sent (version, expiry). */
  entryWireFramingBytes: 128,
  /**
   * The store's cache of point reads (src/store/read-cache.ts): entries, value characters
   * of all of them, and the longest value held (a larger one is always read from SQLite).
   */
  readCache: { entriesMax: 16_384, valueCharsMax: 8 * MiB, entryValueCharsMax: 64 * KiB },
  /**
   * WAL checkpoints (src/store/checkpointer.ts): at most one per this many ms, in the pool;
   * from this many WAL pages on, one holds the write queue's commits (for at most
   * checkpointHoldMsMax) so the WAL can rewind.
   */
  checkpointIntervalMs: 100,
  checkpointTailFrames: 4_096,
  checkpointHoldMsMax: 50,
  /** Rows changed since a settled checkpoint that the node copies itself (src/store/checkpointer.ts). */
  checkpointInlineChangesMax: 16,
  /** Mutations waiting for the writer; past this, writes get 503. */
  writeQueueMutationsMax: 100_000,
  /** Mutations committed in one SQLite transaction before yielding. */
  commitMutationsMax: 2_000,
  /** GET /kv listing: default and maximum page length, and bytes per page. */
  listLimitDefault: 100,
  listLimitMax: 1_000,
  listBytesMax: 16 * MiB,
  /** A listing is written in chunks of about this many characters, with backpressure. */
  listChunkChars: 64 * KiB,
  /**
   * Rows a listing reads from the store at a time, as the client drains the
   * answer: about a chunk's worth (few for large values, many for small ones).
   */
  listFetchRowsMin: 2,
  listFetchRowsMax: 256,
  /** HTTP server: time to receive request headers, and the whole request (body included). */
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  /** Default for --max-connections. */
  connectionsMaxDefault: 1_024,
  /** Connection slots kept for peers' addresses (a quarter of the bound, at most this). */
  peerConnectionSlotsMax: 16,
  /** The worker pool: threads, queued tasks, and the share of the queue peers' requests may hold. */
  poolThreadsMax: 2,
  poolQueueMax: 256,
  poolPeerTasksMax: 16,
  /** A pool thread with no task for this long ends (threads start again on demand). */
  poolIdleTimeoutMs: 30_000,
  /**
   * A pool thread's V8 young generation, MiB (V8's own bound is 48). Page reads churn through
   * it; at V8's bound two busy threads held 40-60 MiB more of a node's RSS through a bulk load,
   * and the cap costs ~3% of a change-range scan (bench/ANALYSIS.md, "Memory, measured again").
   */
  poolYoungGenerationMb: 12,
  /** After an answer that leaves a body unread: how long the connection drains before it closes. */
  lingerCloseMs: 1_000,
  /** GET /cluster/nodes: the longest wait for a peer's /cluster, and how long an answer is reused. */
  overviewFetchTimeoutMs: 2_000,
  overviewCacheMs: 500,
  /**
   * POST /cluster/members: the longest wait for the member lists of the members it can reach
   * before the add decides (a member that drops packets would otherwise hold it for --timeout).
   */
  memberAddRefreshMsMax: 2_000,
  /** How long shutdown waits for in-flight requests before closing their connections. */
  shutdownGraceMs: 5_000,
  /**
   * GET /backup: the chunk size the copy is streamed in, and the Retry-After
   * of a second backup while one runs (one at a time: each holds a copy of
   * the database on disk until it is sent).
   */
  backupChunkBytes: 1 * MiB,
  backupRetryAfterSeconds: 10,
} as const;

/** Replication and resync bounds. */
export const replicationLimits = {
  /** Rows read for one outgoing batch, and its bytes. */
  batchRowsMax: 1_000,
  batchBytesMax: 4 * MiB,
  /** Batches in flight to one peer at once (pipelined). */
  batchesInFlightMax: 2,
  /** Backlogs longer than this are read by a pool worker, not on the event loop. */
  workerBacklogMin: 5_000,
  /**
   * Sequence numbers one read of a sender's scans, on the event loop and in a
   * worker. SQLite skips other nodes' changes (replicated to us, never sent
   * on) at ~0.25 µs each, where reading them cost ~7 µs (bench/ANALYSIS.md,
   * "The wiped peer's rebuild"): 4,000 is about 1 ms of the event loop.
   */
  scanSeqsInline: 4_000,
  scanSeqsWorker: 100_000,
  /** Retry backoff after a failed push: doubles from min to max, with jitter. */
  backoffMsMin: 100,
  backoffMsMax: 5_000,
  /** How often a moved cursor is written to disk. */
  cursorPersistMs: 1_000,
  /** Lag samples kept per peer for the p50/p99 in /cluster. */
  lagSamplesMax: 2_048,
  /**
   * Answers from a peer, per route: a peer is untrusted input, so each answer is
   * read only up to what that route can honestly hold (see peerResponseBytesMax).
   * A ping answer is not even parsed: only its headers are used.
   */
  pingResponseBytesMax: 4 * KiB,
  digestResponseBytesMax: 64 * KiB,
  bucketsResponseBytesMax: 512 * KiB,
  replicateResponseBytesMax: 1 * MiB,
  /** Any other route (none today): small. */
  otherResponseBytesMax: 64 * KiB,
  /** A peer's GET /cluster, read for GET /cluster/nodes (about 1 KiB per peer). */
  clusterResponseBytesMax: 256 * KiB,
  /** A member list (POST /sync/members): at most 1,000 rows of a URL, a version and an id. */
  membersResponseBytesMax: 3 * MiB,
  /** Room for framing and one row's key around the byte bound of a page. */
  pageFramingBytes: 64 * KiB,
  /** Connections in each peer's pool. */
  peerConnections: 4,
  /** Resync: buckets handled per round, key summaries and entries per request. */
  resyncBucketsPerRound: 64,
  resyncRowsPerRequest: 5_000,
  resyncBytesPerRequest: 8 * MiB,
  /** Keys asked for in one POST /sync/fetch. */
  fetchKeysMax: 2_000,
  /** How many times a resync waits for in-flight replication before diffing anyway. */
  resyncDefersMax: 5,
  /**
   * Looks in a row at a peer that says it is busy resyncing and has moved
   * nothing since the last, before a wanted resync stops yielding to it (and
   * once the peer has moved nothing for --timeout: src/supervisor.ts).
   */
  resyncYieldsMax: 5,
  /**
   * How far past our wall clock a version may be, beyond the largest clock
   * offset measured to a peer: versions further ahead are refused, and
   * observed versions move our clock at most this far ahead.
   */
  versionAheadSlackMs: 10_000,
  /**
   * Resync against an untrusted peer: a round's key summaries are bounded by
   * the rows both sides count in its buckets (at most this many); a paged read
   * may take the rows the peer declared plus a margin (writes arriving
   * meanwhile); and a resync's slot has a deadline of some peer timeouts plus
   * a time per declared row, after which it fails and the slot is free.
   */
  resyncRoundRowsMax: 200_000,
  resyncRowsMarginMin: 1_000,
  resyncRowsMarginFraction: 0.1,
  resyncDeadlineTimeouts: 4,
  resyncDeadlineMinMs: 10_000,
  resyncDeadlineMsPerRow: 0.5,
  /** Resyncs running at once on this node (one: a rebuilt node pulls its data once, not per peer). */
  resyncsConcurrentMax: 1,
  /**
   * The longest wait before retrying a resync that keeps failing with a peer that still answers
   * pings (one that hangs on everything else): see Supervisor's #retryDelayMs.
   */
  resyncRetryMsMax: 30_000,
  /** A resync of at least this many entries logs its progress, at most every resyncProgressLogMs. */
  resyncProgressEntriesMin: 10_000,
  resyncProgressLogMs: 2_000,
} as const;

/**
 * The largest POST /replicate body: what a sender really builds. A resync
 * page of rows (the largest) is cut after it passes resyncBytesPerRequest, so
 * it holds at most that plus one entry (a value and its framing).
 */
export function replicateBodyBytesMax(valueBytesMax: number): number {
  return (
    replicationLimits.resyncBytesPerRequest + valueBytesMax + replicationLimits.pageFramingBytes
  );
}

/** The body limit of POST /batch. */
export function clientBatchBodyBytes(valueBytesMax: number): number {
  return Math.max(limits.clientBatchBodyBytesMax, valueBytesMax + limits.bodyOverheadBytes);
}

/**
 * Limits that depend on each other, checked together at start-up: what a
 * sender builds must fit what the receiving route accepts, and the largest
 * body must fit the body budget.
 */
export function assertLimitRelations(valueBytesMax: number): void {
  const r = replicationLimits;
  const body = replicateBodyBytesMax(valueBytesMax);
  const relations: [boolean, string][] = [
    [
      r.batchBytesMax + valueBytesMax + r.pageFramingBytes <= body,
      'a replication batch fits /replicate',
    ],
    [
      r.resyncBytesPerRequest + valueBytesMax + r.pageFramingBytes <= body,
      'a resync page fits /replicate',
    ],
    [
      // The sender starts an atomic batch only below batchBytesMax, then sends it whole.
      r.batchBytesMax +
        clientBatchBodyBytes(valueBytesMax) +
        limits.clientBatchOpsMax * limits.entryWireFramingBytes <=
        body,
      'a replication batch ending in a whole client batch fits /replicate',
    ],
    [
      clientBatchBodyBytes(valueBytesMax) <= limits.bodyBytesInFlightMax,
      'a client batch fits the body budget',
    ],
    [2 * body <= limits.bodyBytesInFlightMax, 'two /replicate bodies fit the body budget'],
    [
      valueBytesMax + limits.bodyOverheadBytes <= limits.bodyBytesInFlightMax,
      'a client body fits the body budget',
    ],
    [limits.syncBodyBytesMax <= limits.bodyBytesInFlightMax, 'a sync body fits the body budget'],
    [limits.poolPeerTasksMax < limits.poolQueueMax, 'peers leave room in the pool queue'],
    [r.resyncRowsPerRequest <= limits.replicateEntriesMax, 'a resync page fits a batch'],
    [r.fetchKeysMax <= limits.replicateEntriesMax, 'a diff push fits a batch'],
    [
      // A key's JSON is at most 6 bytes per byte (\u0000 escapes), plus quotes and framing.
      6 * limits.keyBytesMax + 64 <= limits.syncBodyBytesMax,
      'one key of a resync fetch fits a sync body',
    ],
    [4 * r.batchRowsMax <= limits.replicateEntriesMax, 'a replication batch fits a batch'],
  ];
  for (const [holds, what] of relations) {
    if (!holds) throw new Error(`limits out of relation: ${what} (value limit ${valueBytesMax})`);
  }
}

/**
 * The largest answer a peer may send to `path`. A page of rows (`/sync/rows`,
 * `/sync/fetch`) is cut by the peer after it passes resyncBytesPerRequest, so
 * it holds at most that plus one row (one value and its framing).
 */
export function peerResponseBytesMax(path: string, valueBytesMax: number): number {
  const route = path.split('?', 1)[0];
  const r = replicationLimits;
  switch (route) {
    case '/ping':
      return r.pingResponseBytesMax;
    case '/sync/digest':
      return r.digestResponseBytesMax;
    case '/sync/buckets':
      return r.bucketsResponseBytesMax;
    case '/sync/rows':
    case '/sync/fetch':
      return replicateBodyBytesMax(valueBytesMax);
    case '/replicate':
      return r.replicateResponseBytesMax;
    case '/cluster':
      return r.clusterResponseBytesMax;
    case '/sync/members':
      return r.membersResponseBytesMax;
    default:
      return r.otherResponseBytesMax;
  }
}

/** Authentication bounds. */
export const securityLimits = {
  /** Tokens in one --auth-file, and key prefixes per token. */
  tokensMax: 10_000,
  prefixesPerTokenMax: 64,
  /** Characters of a token's name. */
  tokenNameCharsMax: 128,
  /** An Authorization header longer than this is refused before it is looked at. */
  authorizationCharsMax: 1_024,
  /** The cluster secret: shortest and longest accepted. */
  clusterSecretCharsMin: 16,
  clusterSecretCharsMax: 1_024,
  /** Bytes of a secret or auth file. */
  secretFileBytesMax: 16 * KiB,
  authFileBytesMax: 16 * MiB,
  /** Random bytes in a token made by `peerkv token create`. */
  tokenRandomBytes: 32,
  /** A refused source is logged at most once per this period. */
  rejectLogIntervalMs: 60_000,
  /** Sources remembered for that; past this the memory is cleared. */
  rejectLogSourcesMax: 1_024,
} as const;
