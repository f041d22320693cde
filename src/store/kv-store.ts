/**
 * The node's store: the only main-thread code that touches SQLite. Reads are
 * prepared point or range queries; writes go through `applyMutations`, which
 * merges a whole group of mutations in one transaction (group commit is driven
 * by src/store/write-queue.ts) and keeps the bucket digest and the change
 * sequence up to date in the same transaction.
 */
import assert from 'node:assert/strict';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { type HybridClock, timestampToMs } from '../clock.ts';
import { isStorageFull, storageFull } from '../errors.ts';
import { formatVersion, type Version } from '../version.ts';
import { BucketDigest, bucketOf, entryHash } from './digest.ts';
import { compareMergeOrder } from './merge-order.ts';
import { databasePath, openDatabase, type SyncLevel } from './open-database.ts';
import type { Change, Entry, Mutation, MutationResult } from './types.ts';

interface StoredRow {
  key: string;
  value: string | null;
  ts: number;
  node: string;
}
interface MergeRow {
  ts: number;
  node: string;
  hash: number;
  bucket: number;
  live: number;
}
interface ChangeRow extends StoredRow {
  seq: number;
  src: string;
}

export interface PeerCursor {
  readonly nodeId: string | null;
  readonly cursor: number;
}

export class KvStore {
  readonly nodeId: string;
  readonly dbPath: string;
  readonly digest: BucketDigest;
  readonly #db: Database.Database;
  readonly #clock: HybridClock;
  readonly #statements;
  #seq: number;
  #storageError: { code: string; sinceWallMs: number } | null = null;
  readonly #log: Logger | undefined;

  constructor(dataDir: string, sync: SyncLevel, clock: HybridClock, log?: Logger) {
    this.#log = log;
    this.#db = openDatabase(dataDir, sync);
    this.dbPath = databasePath(dataDir);
    this.#statements = prepareStatements(this.#db);
    this.nodeId = this.#statements.metaGet.get('node_id') as string;
    this.#seq = (this.#statements.seqMax.get() as number | null) ?? 0;
    this.#clock = clock;
    const persistedClock = Number(this.#statements.metaGet.get('clock'));
    clock.observe(persistedClock);
    if (persistedClock > clock.last) {
      log?.warn(
        { aheadOfWallMs: timestampToMs(persistedClock) - Math.floor(clock.wallMs()) },
        'persisted clock was far ahead of wall time; not followed',
      );
    }
    this.digest = this.#loadDigest();
  }

  get seq(): number {
    return this.#seq;
  }

  get(key: string): Entry | undefined {
    const row = this.#statements.get.get(key) as StoredRow | undefined;
    return row && toEntry(row);
  }

  /**
   * Live keys in key order, from `after` (exclusive), with a prefix. The range
   * is cut at the prefix's successor and read from the live-key index, so
   * tombstones and keys past the prefix are never walked.
   */
  list(prefix: string, after: string, limit: number): Entry[] {
    const to = prefixSuccessor(prefix);
    const rows = (
      to === undefined
        ? this.#statements.listOpen.all(prefix, after, limit)
        : this.#statements.listBounded.all(prefix, after, to, limit)
    ) as StoredRow[];
    const entries: Entry[] = [];
    for (const row of rows) {
      assert.ok(row.key.startsWith(prefix), 'a listed key carries the prefix');
      entries.push(toEntry(row));
    }
    return entries;
  }

  /** Merges mutations in one transaction; results are in the same order. */
  applyMutations(mutations: readonly Mutation[]): MutationResult[] {
    return this.#applyTransaction(mutations);
  }

  /** Changes after `afterSeq` in sequence order, at most `limit` rows scanned. */
  changesSince(afterSeq: number, limit: number): Change[] {
    const rows = this.#statements.changes.all(afterSeq, limit) as ChangeRow[];
    return rows.map((row) => ({ ...toEntry(row), seq: row.seq, sourceNodeId: row.src }));
  }

  /** The HLC timestamp of the oldest change after `afterSeq`, if any. */
  oldestChangeAfter(afterSeq: number): number | undefined {
    return (this.#statements.oldestChange.get(afterSeq) as number | undefined) ?? undefined;
  }

  peerCursor(url: string): PeerCursor {
    const row = this.#statements.peerGet.get(url) as { node_id: string | null; cursor: number };
    return row ? { nodeId: row.node_id, cursor: row.cursor } : { nodeId: null, cursor: 0 };
  }

  /** Persists a peer's cursor; throws STORAGE_FULL (retry later) when the disk is full. */
  setPeerCursor(url: string, nodeId: string | null, cursor: number): void {
    try {
      this.#statements.peerSet.run(url, nodeId, cursor);
    } catch (error) {
      if (!isStorageFull(error)) throw error;
      this.#noteStorageError(error);
      throw storageFull(error);
    }
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

  #applyTransaction(mutations: readonly Mutation[]): MutationResult[] {
    const touched = new Set<number>();
    const run = this.#db.transaction(() => {
      const results = mutations.map((mutation) => this.#applyOne(mutation, touched));
      for (const bucket of touched) {
        this.#statements.bucketSet.run(
          this.digest.sums[bucket],
          this.digest.counts[bucket],
          bucket,
        );
      }
      this.#statements.metaSet.run('clock', String(this.#clock.last));
      return results;
    });
    try {
      const results = run();
      this.#clearStorageError();
      return results;
    } catch (error) {
      // The transaction rolled back: reload what the in-memory state had moved.
      this.#seq = (this.#statements.seqMax.get() as number | null) ?? 0;
      for (const bucket of touched) {
        const row = this.#statements.bucketGet.get(bucket) as { sum: number; count: number };
        this.digest.setBucket(bucket, row.sum, row.count);
      }
      if (isStorageFull(error)) {
        this.#noteStorageError(error);
        throw storageFull(error);
      }
      throw error;
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

  #applyOne(mutation: Mutation, touched: Set<number>): MutationResult {
    const key = mutation.kind === 'local' ? mutation.key : mutation.entry.key;
    const existing = this.#statements.mergeGet.get(key) as MergeRow | undefined;
    const existingVersion = existing && { timestamp: existing.ts, nodeId: existing.node };
    let version: Version;
    let valueJson: string | null;
    let source: string;
    let hash: number;
    if (mutation.kind === 'local') {
      if (!existing && mutation.valueJson === null && mutation.tombstoneIfAbsent === false) {
        // Nothing to delete and nobody to tell: stamp the answer, store nothing.
        return {
          applied: false,
          version: { timestamp: this.#clock.now(), nodeId: this.nodeId },
          existed: false,
        };
      }
      if (existingVersion) this.#clock.observe(existingVersion.timestamp);
      // The clock may be capped below a far-future version this key holds;
      // the write must still order after it (without dragging the clock there).
      const timestamp = Math.max(this.#clock.now(), (existingVersion?.timestamp ?? 0) + 1);
      version = { timestamp, nodeId: this.nodeId };
      valueJson = mutation.valueJson;
      source = this.nodeId;
      hash = entryHash(key, formatVersion(version), valueJson);
    } else {
      this.#clock.observe(mutation.entry.version.timestamp);
      version = mutation.entry.version;
      valueJson = mutation.entry.valueJson;
      source = mutation.sourceNodeId;
      hash = entryHash(key, formatVersion(version), valueJson);
      const kept = existingVersion && { version: existingVersion, hash: existing.hash };
      if (kept && compareMergeOrder(kept, { version, hash }) >= 0) {
        return { applied: false, version: kept.version, existed: existing.live === 1 };
      }
    }
    const bucket = existing ? existing.bucket : bucketOf(key);
    this.#seq += 1;
    this.#statements.upsert.run(
      key,
      valueJson,
      version.timestamp,
      version.nodeId,
      this.#seq,
      source,
      bucket,
      hash,
    );
    this.digest.replace(bucket, existing ? existing.hash : null, hash);
    touched.add(bucket);
    return { applied: true, version, existed: existing?.live === 1 };
  }
}

/** The listing query; `value IS NOT NULL` lets SQLite use the partial index kv_live. */
export const LIST_SQL =
  'SELECT key, value, ts, node FROM kv INDEXED BY kv_live WHERE key >= ? AND key > ? %UPPER% AND value IS NOT NULL ORDER BY key LIMIT ?';

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
  return { key: row.key, valueJson: row.value, version: { timestamp: row.ts, nodeId: row.node } };
}

function prepareStatements(db: Database.Database) {
  return {
    metaGet: db.prepare('SELECT value FROM meta WHERE name = ?').pluck(),
    metaSet: db.prepare('INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)'),
    seqMax: db.prepare('SELECT max(seq) FROM kv').pluck(),
    get: db.prepare('SELECT key, value, ts, node FROM kv WHERE key = ?'),
    mergeGet: db.prepare(
      'SELECT ts, node, hash, bucket, value IS NOT NULL AS live FROM kv WHERE key = ?',
    ),
    listOpen: db.prepare(LIST_SQL.replace('%UPPER%', '')),
    listBounded: db.prepare(LIST_SQL.replace('%UPPER%', 'AND key < ?')),
    upsert: db.prepare(
      `INSERT INTO kv (key, value, ts, node, seq, src, bucket, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET value = excluded.value, ts = excluded.ts, node = excluded.node,
         seq = excluded.seq, src = excluded.src, hash = excluded.hash`,
    ),
    changes: db.prepare(
      'SELECT key, value, ts, node, seq, src FROM kv WHERE seq > ? ORDER BY seq LIMIT ?',
    ),
    oldestChange: db.prepare('SELECT ts FROM kv WHERE seq > ? ORDER BY seq LIMIT 1').pluck(),
    bucketsAll: db.prepare('SELECT id, sum, count FROM buckets ORDER BY id'),
    bucketGet: db.prepare('SELECT sum, count FROM buckets WHERE id = ?'),
    bucketSet: db.prepare('UPDATE buckets SET sum = ?, count = ? WHERE id = ?'),
    peerGet: db.prepare('SELECT node_id, cursor FROM peers WHERE url = ?'),
    peerSet: db.prepare('INSERT OR REPLACE INTO peers (url, node_id, cursor) VALUES (?, ?, ?)'),
  };
}
