/**
 * The node's store: the only main-thread code that touches SQLite. Reads are
 * prepared point or range queries; writes go through `applyMutations`, which
 * merges a whole group of mutations in one transaction (group commit is driven
 * by src/store/write-queue.ts) and keeps the bucket digest and the change
 * sequence up to date in the same transaction. Conditions of local writes are
 * checked inside that transaction, so check and write are one step; an atomic
 * group (a client's batch) is checked whole before any of it is written.
 */
import assert from 'node:assert/strict';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { type HybridClock, timestampToMs } from '../clock.ts';
import { isStorageFull, storageFull } from '../errors.ts';
import { limits } from '../limits.ts';
import { compareVersions, formatVersion, type Version } from '../version.ts';
import { type CheckpointResult, checkpointWal } from './checkpointer.ts';
import { BucketDigest, bucketOf, entryHash, valueDigest } from './digest.ts';
import { isLive } from './expiry.ts';
import { compareMergeOrder } from './merge-order.ts';
import { databasePath, type OpenOptions, openDatabase, type SyncLevel } from './open-database.ts';
import { ReadCache } from './read-cache.ts';
import type {
  AtomicGroup,
  Change,
  Condition,
  Entry,
  MemberRow,
  Mutation,
  MutationResult,
} from './types.ts';
import { WalSync } from './wal-sync.ts';

interface StoredRow {
  key: string;
  value: string | null;
  ts: number;
  node: string;
  expires: number | null;
  vhash: string | null;
}
interface MergeRow {
  ts: number;
  node: string;
  hash: number;
  bucket: number;
  live: number;
  expires: number | null;
}
interface DeadRow {
  key: string;
  bucket: number;
  hash: number;
}
interface ChangeRow extends StoredRow {
  seq: number;
  src: string;
  bend: number | null;
}

/** The version reported for a key that has none (a refused write to an absent key). */
const NO_VERSION: Version = { timestamp: 0, nodeId: '0000000000000000' };

export interface PeerCursor {
  readonly nodeId: string | null;
  readonly cursor: number;
  /** False while the cursor jumped over changes a resync has not yet brought the peer. */
  readonly level: boolean;
  /** The lowest version timestamp the peer refused, not yet delivered by a resync (none: +Infinity). */
  readonly refusedLowest: number;
}

export class KvStore {
  readonly nodeId: string;
  readonly dbPath: string;
  readonly digest: BucketDigest;
  readonly #db: Database.Database;
  readonly #clock: HybridClock;
  readonly #statements;
  #seq: number;
  /** Tombstones and expired entries older than this were removed (see src/tombstones/). */
  #horizon: number;
  /** Rows without a value (tombstones and swept expired entries). */
  #deadRows: number;
  #rowsRemoved = 0;
  /** The last clock floor persisted (see clockFloor()). */
  #floor = 0;
  #storageError: { code: string; sinceWallMs: number } | null = null;
  /** Whether a remote write by `origin`, delivered by `source`, may win a merge (removed members). */
  #admits: (origin: string, source: string) => boolean = () => true;
  readonly #log: Logger | undefined;
  /** Entries point reads found lately; every statement that changes a row forgets its key. */
  readonly #cache = new ReadCache(limits.readCache);
  /** Set when the write queue's commits are flushed off the event loop (see flushed()). */
  #walSync: WalSync | null = null;

  constructor(
    dataDir: string,
    sync: SyncLevel,
    clock: HybridClock,
    log?: Logger,
    openOptions?: OpenOptions,
  ) {
    this.#log = log;
    this.#db = openDatabase(dataDir, sync, openOptions);
    this.dbPath = databasePath(dataDir);
    this.#statements = prepareStatements(this.#db);
    if (sync === 'full' && openOptions?.flushOffThread === true) {
      this.#walSync = new WalSync(`${this.dbPath}-wal`, undefined, (error) =>
        this.#log?.error(
          { err: error.cause },
          'the WAL flush failed: writes refused (500) until the node is restarted',
        ),
      );
    }
    this.nodeId = this.#statements.metaGet.get('node_id') as string;
    this.#seq = this.#seqHigh();
    this.#clock = clock;
    const persistedClock = Number(this.#statements.metaGet.get('clock'));
    clock.observe(persistedClock);
    if (persistedClock > clock.last) {
      log?.warn(
        { aheadOfWallMs: timestampToMs(persistedClock) - Math.floor(clock.wallMs()) },
        'persisted clock was far ahead of wall time; not followed',
      );
    }
    // What we issued ourselves is followed whatever the wall clock says now
    // (it may have gone back across the restart): a version is never reused.
    clock.restoreIssued(this.#issuedBeforeOpen());
    clock.restoreBorrowed(this.#statements.metaGet.get('clock_borrowed') as string | undefined);
    // A floor this node announced to its peers: no version of ours goes below it.
    this.#floor = Number(this.#statements.metaGet.get('clock_floor') ?? 0);
    clock.restoreIssued(this.#floor);
    this.#horizon = Number(this.#statements.metaGet.get('tombstone_horizon') ?? 0);
    this.#deadRows = this.#statements.deadCount.get() as number;
    if (clock.aheadOfWallMs() > 1_000) {
      log?.warn(
        { aheadOfWallMs: clock.aheadOfWallMs() },
        'own versions run ahead of wall time; followed so none is reused',
      );
    }
    this.digest = this.#loadDigest();
  }

  /**
   * The last change sequence issued: the highest row's, or higher when the rows
   * that held the last ones were removed past the horizon (a seq is never reused:
   * a peer's cursor may already be past it).
   */
  #seqHigh(): number {
    const rows = (this.#statements.seqMax.get() as number | null) ?? 0;
    return Math.max(rows, Number(this.#statements.metaGet.get('seq_floor') ?? 0));
  }

  /** The highest timestamp this node issued before this open (older files: from its rows). */
  #issuedBeforeOpen(): number {
    const persisted = this.#statements.metaGet.get('clock_issued') as string | undefined;
    if (persisted !== undefined) return Number(persisted);
    const row = this.#db
      .prepare('SELECT MAX(ts) AS ts FROM kv WHERE node = ?')
      .get(this.nodeId) as { ts: number | null };
    return row.ts ?? 0;
  }

  get seq(): number {
    return this.#seq;
  }

  /**
   * The tombstone horizon (an HLC timestamp, 0: none): every member held every
   * write older than it, so tombstones and expired entries older than it may
   * go, and a live entry older than it that this node does not hold is refused.
   */
  get horizon(): number {
    return this.#horizon;
  }

  /** Rows this connection inserted, changed or deleted since it opened: moves with every write. */
  changesMade(): number {
    return this.#statements.totalChanges.get() as number;
  }

  /**
   * After applyMutations: resolves once what it committed is on disk, or null
   * when it already is (its commit fsynced, or `--sync normal` does not wait).
   * Rejects with STORAGE_FAILED, for good, once a flush has failed.
   */
  flushed(): Promise<void> | null {
    return this.#walSync?.flushed() ?? null;
  }

  /** The connection's SQLite synchronous level now (1 NORMAL, 2 FULL). */
  syncLevel(): number {
    return this.#db.pragma('synchronous', { simple: true }) as number;
  }

  /** WAL flushes started off the event loop (0 when commits fsync themselves). */
  get walFlushes(): number {
    return this.#walSync?.flushes ?? 0;
  }

  /** A PASSIVE checkpoint on the node's own connection (see src/store/checkpointer.ts). */
  checkpoint(): CheckpointResult {
    return checkpointWal(this.#db);
  }

  /** Rows holding a value (an expired one not yet swept counts), counted over the live-key index. */
  liveRows(): number {
    return this.#statements.liveCount.get() as number;
  }

  /** Rows removed past the horizon since this store was opened (the only rows ever deleted). */
  get rowsRemoved(): number {
    return this.#rowsRemoved;
  }

  /** Tombstones and swept expired entries held (rows without a value). */
  get deadRows(): number {
    return this.#deadRows;
  }

  /** Raises the horizon (never lowers it); persisted before it takes effect. */
  raiseHorizon(horizon: number): boolean {
    if (horizon <= this.#horizon) return false;
    try {
      this.#statements.metaSet.run('tombstone_horizon', String(horizon));
    } catch (error) {
      if (!isStorageFull(error)) throw error;
      this.#noteStorageError(error);
      return false;
    }
    this.#horizon = horizon;
    return true;
  }

  /**
   * Removes up to `limit` rows past the horizon in one transaction: tombstones
   * and swept expired entries whose version is older than the horizon and whose
   * expiry, if any, is before its wall time. Which rows go depends on the
   * horizon alone (an expired entry the sweep has not reached yet goes once it
   * has, a second later), so nodes at one horizon hold the same rows and their
   * digests agree. Returns how many went.
   */
  removeBelowHorizon(limit: number): number {
    const horizon = this.#horizon;
    if (horizon === 0) return 0;
    const wallMs = timestampToMs(horizon);
    const touched = new Set<number>();
    const run = this.#db.transaction(() => {
      const rows = this.#statements.deadBelow.all(horizon, wallMs, limit) as DeadRow[];
      for (const row of rows) {
        this.#cache.forget(row.key);
        this.#statements.deleteKey.run(row.key);
        this.digest.remove(row.bucket, row.hash);
        touched.add(row.bucket);
        this.#deadRows -= 1;
      }
      if (rows.length > 0) this.#statements.metaSet.run('seq_floor', String(this.#seq));
      for (const bucket of touched) {
        this.#statements.bucketSet.run(
          this.digest.sums[bucket],
          this.digest.counts[bucket],
          bucket,
        );
      }
      return rows.length;
    });
    try {
      const removed = run();
      this.#rowsRemoved += removed;
      return removed;
    } catch (error) {
      this.#reloadAfterRollback(touched);
      if (isStorageFull(error)) {
        this.#noteStorageError(error);
        throw storageFull(error);
      }
      throw error;
    }
  }

  /**
   * The lowest version timestamp among this node's own changes after `cursor`
   * (what a peer at that cursor has not acknowledged), reading at most `limit`
   * changes: null when there are none, undefined when more are pending than
   * that (the caller must not assume anything then).
   */
  ownPendingLowest(cursor: number, limit: number): number | null | undefined {
    const rows = this.#statements.pendingOwn.all(cursor, limit) as { ts: number; src: string }[];
    let lowest: number | null = null;
    for (const row of rows) {
      if (row.src === this.nodeId && (lowest === null || row.ts < lowest)) lowest = row.ts;
    }
    if (rows.length >= limit) return undefined;
    return lowest;
  }

  /**
   * Issues a timestamp every later version of ours orders after, and persists
   * it first (a restart follows it, whatever the wall clock says then).
   */
  clockFloor(): number {
    const floor = this.#clock.now();
    try {
      this.#statements.metaSet.run('clock_floor', String(floor));
    } catch (error) {
      if (!isStorageFull(error)) throw error;
      // Not persisted: announce the last floor that was (a full disk holds the horizon back).
      this.#noteStorageError(error);
      return this.#floor;
    }
    this.#floor = floor;
    return floor;
  }

  /** The key's stored entry (tombstone, expired or live). */
  get(key: string): Entry | undefined {
    const cached = this.#cache.lookup(key);
    if (cached) return cached;
    const row = this.#statements.get.get(key) as StoredRow | undefined;
    if (!row) return undefined;
    const entry = toEntry(row);
    this.#cache.remember(entry);
    return entry;
  }

  /** Point reads answered without SQLite, and with it, since the store opened. */
  get readCacheStats(): { readonly hits: number; readonly misses: number } {
    return this.#cache.stats;
  }

  /** The key's entry if it reads as present now (not deleted, not expired). */
  getLive(key: string): Entry | undefined {
    const entry = this.get(key);
    return isLive(entry, this.#clock.wallMs()) ? entry : undefined;
  }

  /**
   * Live keys in key order, from `after` (exclusive), with a prefix. The range
   * is cut at the prefix's successor and read from the live-key index, so
   * tombstones and keys past the prefix are never walked.
   */
  list(prefix: string, after: string, limit: number): Entry[] {
    const to = prefixSuccessor(prefix);
    const now = this.#clock.wallMs();
    const rows = (
      to === undefined
        ? this.#statements.listOpen.all(prefix, after, now, limit)
        : this.#statements.listBounded.all(prefix, after, to, now, limit)
    ) as StoredRow[];
    const entries: Entry[] = [];
    for (const row of rows) {
      assert.ok(row.key.startsWith(prefix), 'a listed key carries the prefix');
      entries.push(toEntry(row));
    }
    return entries;
  }

  /**
   * Merges mutations in one transaction; results are in the same order. Each
   * atomic group is applied whole or, when one of its conditions fails, not at
   * all (its results say which op was refused and which were aborted).
   */
  applyMutations(
    mutations: readonly Mutation[],
    groups: readonly AtomicGroup[] = [],
  ): MutationResult[] {
    return this.#applyTransaction(mutations, groups);
  }

  /** Changes after `afterSeq` in sequence order, at most `limit` rows scanned. */
  changesSince(afterSeq: number, limit: number): Change[] {
    const rows = this.#statements.changes.all(afterSeq, limit) as ChangeRow[];
    return rows.map(toChange);
  }

  /**
   * Changes from `origin` with `afterSeq < seq <= throughSeq`, in sequence order, at most
   * `limit`: SQLite skips the others' rows without handing them over.
   */
  changesOf(origin: string, afterSeq: number, throughSeq: number, limit: number): Change[] {
    const rows = this.#statements.changesOf.all(afterSeq, throughSeq, origin, limit) as ChangeRow[];
    return rows.map(toChange);
  }

  /** Changes with `afterSeq < seq <= throughSeq` (the rest of an atomic batch). */
  changesThrough(afterSeq: number, throughSeq: number): Change[] {
    const rows = this.#statements.changesThrough.all(afterSeq, throughSeq) as ChangeRow[];
    return rows.map(toChange);
  }

  /** Keys whose expiry has passed and whose value is still stored, oldest expiry first. */
  expiredKeys(nowWallMs: number, limit: number): { key: string; version: Version }[] {
    const rows = this.#statements.expired.all(this.#sweepWallMs(nowWallMs), limit) as StoredRow[];
    return rows.map((row) => ({ key: row.key, version: { timestamp: row.ts, nodeId: row.node } }));
  }

  /** The HLC timestamp of the oldest change after `afterSeq`, if any. */
  oldestChangeAfter(afterSeq: number): number | undefined {
    return (this.#statements.oldestChange.get(afterSeq) as number | undefined) ?? undefined;
  }

  peerCursor(url: string): PeerCursor {
    const row = this.#statements.peerGet.get(url) as { node_id: string | null; cursor: number };
    if (!row) return { nodeId: null, cursor: 0, level: false, refusedLowest: Infinity };
    const level = this.#statements.metaGet.get(`unlevelled:${url}`) === undefined;
    const refused = this.#statements.metaGet.get(`refused_below:${url}`) as string | undefined;
    const refusedLowest = refused === undefined ? Infinity : Number(refused);
    return { nodeId: row.node_id, cursor: row.cursor, level, refusedLowest };
  }

  /**
   * Persists a peer's cursor, with what the peer refused below it (in the same transaction: a
   * cursor on disk past a refused entry never goes without the refusal); throws STORAGE_FULL
   * (retry later) when the disk is full.
   */
  setPeerCursor(
    url: string,
    nodeId: string | null,
    cursor: number,
    level = true,
    refusedLowest = Infinity,
  ): void {
    try {
      this.#db.transaction(() => {
        this.#statements.peerSet.run(url, nodeId, cursor);
        if (level) this.#statements.metaDrop.run(`unlevelled:${url}`);
        else this.#statements.metaSet.run(`unlevelled:${url}`, '1');
        if (refusedLowest === Infinity) this.#statements.metaDrop.run(`refused_below:${url}`);
        else this.#statements.metaSet.run(`refused_below:${url}`, String(refusedLowest));
      })();
    } catch (error) {
      if (!isStorageFull(error)) throw error;
      this.#noteStorageError(error);
      throw storageFull(error);
    }
  }

  /** Forgets a peer's cursor (the peer left the cluster). */
  dropPeerCursor(url: string): void {
    this.#statements.peerDrop.run(url);
    this.#statements.metaDrop.run(`unlevelled:${url}`);
    this.#statements.metaDrop.run(`refused_below:${url}`);
  }

  /** Decides which remote writes of removed members are still taken (src/tombstones/removed-members.ts). */
  set admits(admits: (origin: string, source: string) => boolean) {
    this.#admits = admits;
  }

  /** Addresses that reached a removed node, with its id (src/membership/cluster-members.ts). */
  removedAddresses(): Map<string, string> {
    return this.#metaUnder('removed_url:');
  }

  setRemovedAddress(url: string, nodeId: string | null): void {
    if (nodeId === null) this.#statements.metaDrop.run(`removed_url:${url}`);
    else this.#statements.metaSet.run(`removed_url:${url}`, nodeId);
  }

  /** Removed members whose writes were closed, by node id: the version of the removal released. */
  releasedRemovals(): Map<string, string> {
    return this.#metaUnder('released:');
  }

  /** The meta rows named `prefix` + something, by that something (read rarely: not prepared). */
  #metaUnder(prefix: string): Map<string, string> {
    const rows = this.#db
      .prepare('SELECT name, value FROM meta WHERE substr(name, 1, ?) = ?')
      .all(prefix.length, prefix) as { name: string; value: string }[];
    return new Map(rows.map((row) => [row.name.slice(prefix.length), row.value]));
  }

  releaseRemoval(nodeId: string, version: string): void {
    this.#statements.metaSet.run(`released:${nodeId}`, version);
  }

  /** The member rows this node keeps (see src/membership/membership.ts). */
  members(): MemberRow[] {
    return this.#statements.membersAll.all() as MemberRow[];
  }

  /** Persists member rows in one transaction. */
  saveMembers(rows: readonly MemberRow[]): void {
    this.#db.transaction(() => {
      for (const row of rows) {
        this.#statements.memberSet.run(row.nodeId, row.url, row.state, row.version);
      }
    })();
  }

  /** Peer addresses learnt when this node joined (its own, like --peers). */
  peerAddresses(): string[] {
    return this.#statements.addressesAll.all() as string[];
  }

  addPeerAddresses(urls: readonly string[]): void {
    this.#db.transaction(() => {
      for (const url of urls) this.#statements.addressAdd.run(url);
    })();
  }

  /** Re-reads one bucket from the table (after a scrub found it wrong). */
  repairBucket(bucket: number, sum: number, count: number): void {
    this.#statements.bucketSet.run(sum, count, bucket);
    this.digest.setBucket(bucket, sum, count);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  #loadDigest(): BucketDigest {
    const digest = new BucketDigest();
    const rows = this.#statements.bucketsAll.all() as { id: number; sum: number; count: number }[];
    for (const row of rows) digest.setBucket(row.id, row.sum, row.count);
    return digest;
  }

  #applyTransaction(
    mutations: readonly Mutation[],
    groups: readonly AtomicGroup[],
  ): MutationResult[] {
    const touched = new Set<number>();
    const nowWallMs = this.#clock.wallMs();
    const groupAt = new Map(groups.map((group) => [group.start, group]));
    const run = this.#db.transaction(() => {
      const results: MutationResult[] = [];
      while (results.length < mutations.length) {
        const group = groupAt.get(results.length);
        if (group && group.count > 0) {
          results.push(...this.#applyGroup(mutations, group, touched, nowWallMs));
        } else {
          results.push(this.#applyOne(mutations[results.length]!, touched, nowWallMs, null));
        }
      }
      for (const bucket of touched) {
        this.#statements.bucketSet.run(
          this.digest.sums[bucket],
          this.digest.counts[bucket],
          bucket,
        );
      }
      this.#statements.metaSet.run('clock', String(this.#clock.last));
      this.#statements.metaSet.run('clock_issued', String(this.#clock.issuedMax));
      this.#statements.metaSet.run('clock_borrowed', this.#clock.borrowed);
      return results;
    });
    // Flushed by the caller (flushed()), once a flush failed, not at all: nothing more is written.
    const walSync = this.#walSync;
    if (walSync?.failure) throw walSync.failure;
    // A pragma takes effect when prepared (running a prepared one again does nothing); exec()
    // makes no statement object and reads no result: 0.5 µs a call against 2.2 for pragma().
    if (walSync) this.#db.exec('PRAGMA synchronous = NORMAL');
    try {
      const results = run();
      this.#clearStorageError();
      return results;
    } catch (error) {
      this.#reloadAfterRollback(touched);
      if (isStorageFull(error)) {
        this.#noteStorageError(error);
        throw storageFull(error);
      }
      throw error;
    } finally {
      if (walSync) this.#db.exec('PRAGMA synchronous = FULL');
    }
  }

  /** A transaction rolled back: reload what the in-memory state had moved. */
  #reloadAfterRollback(touched: ReadonlySet<number>): void {
    // A read inside the transaction may have cached a row that was never committed.
    this.#cache.clear();
    this.#seq = this.#seqHigh();
    this.#deadRows = this.#statements.deadCount.get() as number;
    for (const bucket of touched) {
      const row = this.#statements.bucketGet.get(bucket) as { sum: number; count: number };
      this.digest.setBucket(bucket, row.sum, row.count);
    }
  }

  /** The last write that failed for want of space, until a write succeeds again. */
  get storageError(): { readonly code: string; readonly sinceWallMs: number } | null {
    return this.#storageError;
  }

  #noteStorageError(error: unknown): void {
    if (this.#storageError) return;
    const code = String((error as { code?: unknown }).code);
    this.#storageError = { code, sinceWallMs: Date.now() };
    this.#log?.error({ code }, 'disk full: writes refused (507) until space returns');
  }

  #clearStorageError(): void {
    if (!this.#storageError) return;
    this.#storageError = null;
    this.#log?.info('disk has room again: writes accepted');
  }

  /** Checks every condition of the group first; writes all of it or none. */
  #applyGroup(
    mutations: readonly Mutation[],
    group: AtomicGroup,
    touched: Set<number>,
    nowWallMs: number,
  ): MutationResult[] {
    const slice = mutations.slice(group.start, group.start + group.count);
    const failed = slice.findIndex(
      (m) => m.kind === 'local' && m.condition && !this.#holds(m.key, m.condition, nowWallMs),
    );
    if (failed >= 0) {
      return slice.map((m, index) =>
        this.#refused(keyOf(m), index === failed ? 'condition' : 'aborted', nowWallMs),
      );
    }
    // Every local op of a batch writes exactly one change (a batch never skips a
    // tombstone), so the batch takes the next `count` seqs.
    const local = slice.length > 1 && slice.every((m) => m.kind === 'local');
    const batchEnd = local ? this.#seq + slice.length : null;
    const results = slice.map((m) => this.#applyOne(m, touched, nowWallMs, batchEnd, true));
    assert(batchEnd === null || batchEnd === this.#seq, 'a batch takes consecutive seqs');
    return results;
  }

  #holds(key: string, condition: Condition, nowWallMs: number): boolean {
    const entry = this.get(key);
    const live = isLive(entry, nowWallMs);
    if (condition.kind === 'absent') return !live;
    if (condition.kind === 'exists') return live;
    return live && compareVersions(entry!.version, condition.version) === 0;
  }

  #refused(key: string, reason: 'condition' | 'aborted', nowWallMs: number): MutationResult {
    const entry = this.get(key);
    const existed = isLive(entry, nowWallMs);
    return { applied: false, version: entry?.version ?? NO_VERSION, existed, refused: reason };
  }

  #applyOne(
    mutation: Mutation,
    touched: Set<number>,
    nowWallMs: number,
    batchEnd: number | null,
    conditionChecked = false,
  ): MutationResult {
    if (mutation.kind === 'expire') {
      return this.#expireOne(mutation.key, mutation.version, nowWallMs);
    }
    const key = keyOf(mutation);
    if (mutation.kind === 'local' && mutation.condition && !conditionChecked) {
      if (!this.#holds(key, mutation.condition, nowWallMs)) {
        return this.#refused(key, 'condition', nowWallMs);
      }
    }
    const existing = this.#statements.mergeGet.get(key) as MergeRow | undefined;
    const existingVersion = existing && { timestamp: existing.ts, nodeId: existing.node };
    const existed =
      existing !== undefined &&
      existing.live === 1 &&
      (existing.expires === null || existing.expires > nowWallMs);
    let version: Version;
    let valueJson: string | null;
    let source: string;
    let hash: number;
    let expiresAt: number | null;
    let valueHash: string | null = null;
    if (mutation.kind === 'local') {
      if (
        !existing &&
        mutation.valueJson === null &&
        mutation.tombstoneIfAbsent === false &&
        batchEnd === null
      ) {
        // Nothing to delete and nobody to tell: stamp the answer, store nothing.
        return {
          applied: false,
          version: { timestamp: this.#clock.now(), nodeId: this.nodeId },
          existed: false,
        };
      }
      if (existingVersion) this.#clock.observe(existingVersion.timestamp);
      // The clock may be capped below a far-future version this key holds;
      // the write must still order after it (without dragging the clock
      // there), and its timestamp is still never issued twice (see after()).
      const timestamp = this.#clock.after(existingVersion?.timestamp ?? 0);
      version = { timestamp, nodeId: this.nodeId };
      valueJson = mutation.valueJson;
      source = this.nodeId;
      expiresAt = mutation.expiresAt ?? null;
      hash = entryHash(key, formatVersion(version), valueJson, expiresAt);
    } else {
      const entry = mutation.entry;
      this.#clock.observe(entry.version.timestamp);
      version = entry.version;
      valueJson = entry.valueJson;
      source = mutation.sourceNodeId;
      expiresAt = entry.expiresAt ?? null;
      valueHash = valueJson === null ? (entry.valueHash ?? null) : null;
      hash = entryHash(key, formatVersion(version), valueJson, expiresAt, valueHash);
      const kept = existingVersion && { version: existingVersion, hash: existing.hash };
      if (kept && compareMergeOrder(kept, { version, hash }) >= 0) {
        return { applied: false, version: kept.version, existed };
      }
      if (version.timestamp < this.#horizon) {
        // Every member held every write older than the horizon, and we do not
        // hold this one: a tombstone or expired entry we removed (dropped as
        // applied), or a live value from a node or backup older than what was
        // removed, which must not bring a deleted key back (refused).
        const dead =
          valueJson === null || (expiresAt !== null && expiresAt <= timestampToMs(this.#horizon));
        return {
          applied: false,
          version: kept?.version ?? NO_VERSION,
          existed,
          ...(dead ? {} : { refused: 'behind-horizon' as const }),
        };
      }
      if (version.nodeId !== this.nodeId && !this.#admits(version.nodeId, source)) {
        return {
          applied: false,
          version: kept?.version ?? NO_VERSION,
          existed,
          refused: 'removed-member',
        };
      }
    }
    const bucket = existing ? existing.bucket : bucketOf(key);
    this.#seq += 1;
    this.#cache.forget(key);
    this.#statements.upsert.run(
      key,
      valueJson,
      version.timestamp,
      version.nodeId,
      this.#seq,
      source,
      bucket,
      hash,
      expiresAt,
      valueHash,
      batchEnd,
    );
    this.digest.replace(bucket, existing ? existing.hash : null, hash);
    touched.add(bucket);
    this.#deadRows += (valueJson === null ? 1 : 0) - (existing && existing.live === 0 ? 1 : 0);
    return { applied: true, version, existed, valueBefore: existing?.live === 1 };
  }

  /**
   * The sweep: drops the value of an expired entry but keeps its row, version
   * and expiry (and the value's digest, so its hash is unchanged). The newer
   * version stays, so no older value of the key can come back by a merge. It
   * takes a new change seq, so watchers see the expiry as a delete, and keeps
   * its source, so a peer that has not yet received the entry still does.
   */
  /**
   * The time the sweep expires entries by: the wall clock, or the horizon's wall time when
   * that is later (a peer's horizon taken over may run ahead of a clock that lags). Every
   * member drops an entry that expired below the horizon when it arrives (see #applyOne), so
   * one held here must be swept too, or the nodes would differ until this clock caught up.
   */
  #sweepWallMs(nowWallMs: number): number {
    return Math.max(nowWallMs, this.#horizon === 0 ? 0 : timestampToMs(this.#horizon));
  }

  #expireOne(key: string, version: Version, nowWallMs: number): MutationResult {
    const row = this.#statements.get.get(key) as StoredRow | undefined;
    if (!row) return { applied: false, version, existed: false };
    const current = { timestamp: row.ts, nodeId: row.node };
    const sweepMs = this.#sweepWallMs(nowWallMs);
    const expired = row.value !== null && row.expires !== null && row.expires <= sweepMs;
    if (!expired || compareVersions(current, version) !== 0) {
      return { applied: false, version: current, existed: isLive(toEntry(row), nowWallMs) };
    }
    this.#seq += 1;
    this.#cache.forget(key);
    this.#statements.sweep.run(valueDigest(row.value!), this.#seq, key);
    this.#deadRows += 1;
    return { applied: true, version, existed: false, valueBefore: true };
  }
}

function keyOf(mutation: Mutation): string {
  return mutation.kind === 'remote' ? mutation.entry.key : mutation.key;
}

function toChange(row: ChangeRow): Change {
  return { ...toEntry(row), seq: row.seq, sourceNodeId: row.src, batchEndSeq: row.bend };
}

const ROW = 'key, value, ts, node, expires, vhash';

/**
 * The listing query; `value IS NOT NULL` lets SQLite use the partial index
 * kv_live. Expired entries not yet swept are filtered out by the expiry.
 */
export const LIST_SQL = `SELECT ${ROW} FROM kv INDEXED BY kv_live WHERE key >= ? AND key > ? %UPPER% AND value IS NOT NULL AND (expires IS NULL OR expires > ?) ORDER BY key LIMIT ?`;

const CODE_POINT_MAX = 0x10ffff;

/**
 * The least string above every string that starts with `prefix`, in code
 * point order (which is UTF-8 byte order, SQLite's BINARY collation): the last
 * code point that can grow grows by one and what follows it is dropped.
 * Undefined when there is none (empty prefix, or only U+10FFFF).
 */
export function prefixSuccessor(prefix: string): string | undefined {
  const points = [...prefix].map((char) => char.codePointAt(0)!);
  while (points.length > 0) {
    const last = points.pop()!;
    if (last === CODE_POINT_MAX) continue;
    // Surrogates are not characters (keys are well-formed): skip over them.
    points.push(last + 1 === 0xd800 ? 0xe000 : last + 1);
    return String.fromCodePoint(...points);
  }
  return undefined;
}

function toEntry(row: StoredRow): Entry {
  const entry: Entry = {
    key: row.key,
    valueJson: row.value,
    version: { timestamp: row.ts, nodeId: row.node },
  };
  if (row.expires === null) return entry;
  return row.vhash === null
    ? { ...entry, expiresAt: row.expires }
    : { ...entry, expiresAt: row.expires, valueHash: row.vhash };
}

function prepareStatements(db: Database.Database) {
  return {
    metaGet: db.prepare('SELECT value FROM meta WHERE name = ?').pluck(),
    metaSet: db.prepare('INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)'),
    metaDrop: db.prepare('DELETE FROM meta WHERE name = ?'),
    seqMax: db.prepare('SELECT max(seq) FROM kv').pluck(),
    totalChanges: db.prepare('SELECT total_changes()').pluck(),
    get: db.prepare(`SELECT ${ROW} FROM kv WHERE key = ?`),
    mergeGet: db.prepare(
      'SELECT ts, node, hash, bucket, value IS NOT NULL AS live, expires FROM kv WHERE key = ?',
    ),
    listOpen: db.prepare(LIST_SQL.replace('%UPPER%', '')),
    listBounded: db.prepare(LIST_SQL.replace('%UPPER%', 'AND key < ?')),
    upsert: db.prepare(
      `INSERT INTO kv (key, value, ts, node, seq, src, bucket, hash, expires, vhash, bend)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, ts = excluded.ts, node = excluded.node,
         seq = excluded.seq, src = excluded.src, hash = excluded.hash, expires = excluded.expires,
         vhash = excluded.vhash, bend = excluded.bend`,
    ),
    sweep: db.prepare('UPDATE kv SET value = NULL, vhash = ?, seq = ?, bend = NULL WHERE key = ?'),
    expired: db.prepare(
      `SELECT ${ROW} FROM kv WHERE expires IS NOT NULL AND value IS NOT NULL AND expires <= ?
         ORDER BY expires LIMIT ?`,
    ),
    changes: db.prepare(`SELECT ${ROW}, seq, src, bend FROM kv WHERE seq > ? ORDER BY seq LIMIT ?`),
    changesOf: db.prepare(
      `SELECT ${ROW}, seq, src, bend FROM kv WHERE seq > ? AND seq <= ? AND src = ? ORDER BY seq LIMIT ?`,
    ),
    changesThrough: db.prepare(
      `SELECT ${ROW}, seq, src, bend FROM kv WHERE seq > ? AND seq <= ? ORDER BY seq`,
    ),
    oldestChange: db.prepare('SELECT ts FROM kv WHERE seq > ? ORDER BY seq LIMIT 1').pluck(),
    pendingOwn: db.prepare('SELECT ts, src FROM kv WHERE seq > ? ORDER BY seq LIMIT ?'),
    liveCount: db
      .prepare('SELECT count(*) FROM kv INDEXED BY kv_live WHERE value IS NOT NULL')
      .pluck(),
    deadCount: db.prepare('SELECT count(*) FROM kv INDEXED BY kv_dead WHERE value IS NULL').pluck(),
    deadBelow: db.prepare(
      `SELECT key, bucket, hash FROM kv INDEXED BY kv_dead
         WHERE value IS NULL AND ts < ? AND (expires IS NULL OR expires <= ?) LIMIT ?`,
    ),
    deleteKey: db.prepare('DELETE FROM kv WHERE key = ?'),
    // Empty buckets are zero in a fresh digest already: a small store reads only what it holds.
    bucketsAll: db.prepare('SELECT id, sum, count FROM buckets WHERE sum != 0 OR count != 0'),
    bucketGet: db.prepare('SELECT sum, count FROM buckets WHERE id = ?'),
    bucketSet: db.prepare('UPDATE buckets SET sum = ?, count = ? WHERE id = ?'),
    peerGet: db.prepare('SELECT node_id, cursor FROM peers WHERE url = ?'),
    peerSet: db.prepare('INSERT OR REPLACE INTO peers (url, node_id, cursor) VALUES (?, ?, ?)'),
    peerDrop: db.prepare('DELETE FROM peers WHERE url = ?'),
    membersAll: db.prepare('SELECT node_id AS nodeId, url, state, version FROM members'),
    memberSet: db.prepare(
      'INSERT OR REPLACE INTO members (node_id, url, state, version) VALUES (?, ?, ?, ?)',
    ),
    addressesAll: db.prepare('SELECT url FROM peer_addresses ORDER BY url').pluck(),
    addressAdd: db.prepare('INSERT OR IGNORE INTO peer_addresses (url) VALUES (?)'),
  };
}
