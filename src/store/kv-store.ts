/**
 * The node's store: the only main-thread code that touches SQLite. Reads are
 * prepared point or range queries; writes go through `applyMutations`, which
 * merges a whole group of mutations in one transaction (group commit is driven
 * by src/store/write-queue.ts) and keeps the bucket digest and the change
 * sequence up to date in the same transaction.
 */
import type Database from 'better-sqlite3';
import type { HybridClock } from '../clock.ts';
import { compareVersions, formatVersion, type Version } from '../version.ts';
import { BucketDigest, bucketOf, entryHash } from './digest.ts';
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

  constructor(dataDir: string, sync: SyncLevel, clock: HybridClock) {
    this.#db = openDatabase(dataDir, sync);
    this.dbPath = databasePath(dataDir);
    this.#statements = prepareStatements(this.#db);
    this.nodeId = this.#statements.metaGet.get('node_id') as string;
    this.#seq = (this.#statements.seqMax.get() as number | null) ?? 0;
    this.#clock = clock;
    clock.observe(Number(this.#statements.metaGet.get('clock')));
    this.digest = this.#loadDigest();
  }

  get seq(): number {
    return this.#seq;
  }

  get(key: string): Entry | undefined {
    const row = this.#statements.get.get(key) as StoredRow | undefined;
    return row && toEntry(row);
  }

  /** Live keys in key order, from `after` (exclusive), with a prefix. */
  list(prefix: string, after: string, limit: number): Entry[] {
    const rows = this.#statements.list.all(prefix, after, limit) as StoredRow[];
    const entries: Entry[] = [];
    for (const row of rows) {
      if (!row.key.startsWith(prefix)) break;
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

  setPeerCursor(url: string, nodeId: string | null, cursor: number): void {
    this.#statements.peerSet.run(url, nodeId, cursor);
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
      return run();
    } catch (error) {
      // The transaction rolled back: reload what the in-memory state had moved.
      this.#seq = (this.#statements.seqMax.get() as number | null) ?? 0;
      for (const bucket of touched) {
        const row = this.#statements.bucketGet.get(bucket) as { sum: number; count: number };
        this.digest.setBucket(bucket, row.sum, row.count);
      }
      throw error;
    }
  }

  #applyOne(mutation: Mutation, touched: Set<number>): MutationResult {
    const key = mutation.kind === 'local' ? mutation.key : mutation.entry.key;
    const existing = this.#statements.mergeGet.get(key) as MergeRow | undefined;
    const existingVersion = existing && { timestamp: existing.ts, nodeId: existing.node };
    let version: Version;
    let valueJson: string | null;
    let source: string;
    if (mutation.kind === 'local') {
      if (existingVersion) this.#clock.observe(existingVersion.timestamp);
      version = { timestamp: this.#clock.now(), nodeId: this.nodeId };
      valueJson = mutation.valueJson;
      source = this.nodeId;
    } else {
      this.#clock.observe(mutation.entry.version.timestamp);
      if (existingVersion && compareVersions(existingVersion, mutation.entry.version) >= 0) {
        return { applied: false, version: existingVersion, existed: existing.live === 1 };
      }
      version = mutation.entry.version;
      valueJson = mutation.entry.valueJson;
      source = mutation.sourceNodeId;
    }
    const bucket = existing ? existing.bucket : bucketOf(key);
    const hash = entryHash(key, formatVersion(version), valueJson);
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
    list: db.prepare(
      'SELECT key, value, ts, node FROM kv WHERE key >= ? AND key > ? AND value IS NOT NULL ORDER BY key LIMIT ?',
    ),
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
