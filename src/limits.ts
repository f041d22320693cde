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
  /** Body of one POST /replicate (a batch of entries). */
  replicateBodyBytesMax: 64 * MiB,
  /** Entries in one incoming POST /replicate batch. */
  replicateEntriesMax: 20_000,
  /** Body of a sync control request (digest groups, bucket lists). */
  syncBodyBytesMax: 1 * MiB,
  /** Mutations waiting for the writer; past this, writes get 503. */
  writeQueueMutationsMax: 100_000,
  /** Mutations committed in one SQLite transaction before yielding. */
  commitMutationsMax: 2_000,
  /** GET /kv listing: default and maximum page length, and bytes per page. */
  listLimitDefault: 100,
  listLimitMax: 1_000,
  listBytesMax: 16 * MiB,
  /** HTTP server: time to receive request headers, and the whole request. */
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  /** Longest pause between two chunks of a request body. */
  bodyIdleTimeoutMs: 10_000,
  keepAliveTimeoutMs: 5_000,
  /** Default for --max-connections. */
  connectionsMaxDefault: 1_024,
  /** In-flight requests waiting for shutdown, at most. */
  shutdownGraceMs: 10_000,
} as const;
