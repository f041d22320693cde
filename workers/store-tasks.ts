/**
 * Pool tasks over a node's SQLite file, opened read-only (WAL lets them read
 * beside the writer): the O(N) work that must not run on the event loop.
 * Each task opens its own connection, reads one consistent snapshot, and
 * returns plain data; nothing is shared between tasks. The one task that
 * writes is the WAL checkpoint (src/store/checkpointer.ts): it copies pages
 * the WAL gathered into the database file, which changes no row.
 */
import Database from 'better-sqlite3';
import { type CheckpointResult, checkpointWal } from '../src/store/checkpointer.ts';
import { addHash, BUCKETS, entryHash } from '../src/store/digest.ts';
import { rowJson } from '../src/store/wire.ts';
import { formatVersion } from '../src/version.ts';

export type StoreTask =
  | { readonly kind: 'scan-digest'; readonly dbPath: string }
  | { readonly kind: 'checkpoint'; readonly dbPath: string }
  | {
      readonly kind: 'bucket-rows';
      readonly dbPath: string;
      readonly buckets: readonly number[];
      readonly after: BucketCursor | null;
      readonly withValues: boolean;
      readonly rowsMax: number;
      readonly bytesMax: number;
    }
  | {
      readonly kind: 'change-range';
      readonly dbPath: string;
      readonly afterSeq: number;
      /** The node's sequence when it asked: every change up to it is committed. */
      readonly throughSeq: number;
      /** Sequence numbers scanned at most (others' changes are skipped by SQLite). */
      readonly scanSeqsMax: number;
      /** Only changes from this source (the node's own writes) are included. */
      readonly originNodeId: string;
      readonly rowsMax: number;
      readonly bytesMax: number;
    };

export type { CheckpointResult };

export interface BucketCursor {
  readonly bucket: number;
  readonly key: string;
}

/** Bucket sums and counts recomputed from the rows, and as persisted, in one snapshot. */
export interface ScanDigestResult {
  readonly computedSums: Float64Array;
  readonly computedCounts: Float64Array;
  readonly storedSums: Float64Array;
  readonly storedCounts: Float64Array;
  readonly rows: number;
  /** Rows holding a value (not tombstones), and the highest change sequence, in the same snapshot. */
  readonly liveRows: number;
  readonly maxSeq: number;
}

/**
 * Rows as wire JSON (`{"key","value"|"deleted","version"}` joined by commas),
 * how many, their bytes, and where to continue (null when done).
 */
export interface RowsResult {
  readonly json: string;
  readonly count: number;
  readonly bytes: number;
  readonly nextBucket: BucketCursor | null;
  readonly nextSeq: number | null;
  readonly lastSeq: number;
}

export default function run(task: StoreTask): ScanDigestResult | RowsResult | CheckpointResult {
  if (task.kind === 'checkpoint') {
    // Read-write (a checkpoint writes the database file), and FULL so the WAL is
    // fsynced before its pages are copied and the file after: no lock wait at all.
    const db = new Database(task.dbPath, { fileMustExist: true, timeout: 0 });
    try {
      db.pragma('synchronous = FULL');
      return checkpointWal(db);
    } finally {
      db.close();
    }
  }
  const db = new Database(task.dbPath, { readonly: true, fileMustExist: true });
  try {
    db.pragma('query_only = ON');
    return db.transaction(() => {
      if (task.kind === 'scan-digest') return scanDigest(db);
      if (task.kind === 'bucket-rows') return bucketRows(db, task);
      return changeRange(db, task);
    })();
  } finally {
    db.close();
  }
}

interface Row {
  key: string;
  value: string | null;
  ts: number;
  node: string;
  expires: number | null;
  vhash: string | null;
  hash?: number;
}
interface ChangeRow extends Row {
  seq: number;
  src: string;
  bend: number | null;
}

const ROW = 'key, value, ts, node, expires, vhash';

function scanDigest(db: Database.Database): ScanDigestResult {
  const computedSums = new Float64Array(BUCKETS);
  const computedCounts = new Float64Array(BUCKETS);
  let rows = 0;
  let liveRows = 0;
  const scan = db.prepare(`SELECT ${ROW}, bucket FROM kv`);
  for (const row of scan.iterate() as Iterable<Row & { bucket: number }>) {
    const version = formatVersion({ timestamp: row.ts, nodeId: row.node });
    const hash = entryHash(row.key, version, row.value, row.expires, row.vhash);
    computedSums[row.bucket] = addHash(computedSums[row.bucket]!, hash);
    computedCounts[row.bucket]! += 1;
    rows += 1;
    if (row.value !== null) liveRows += 1;
  }
  const maxSeq = (db.prepare('SELECT max(seq) FROM kv').pluck().get() as number | null) ?? 0;
  const storedSums = new Float64Array(BUCKETS);
  const storedCounts = new Float64Array(BUCKETS);
  const stored = db.prepare('SELECT id, sum, count FROM buckets').all() as {
    id: number;
    sum: number;
    count: number;
  }[];
  for (const row of stored) {
    storedSums[row.id] = row.sum;
    storedCounts[row.id] = row.count;
  }
  return { computedSums, computedCounts, storedSums, storedCounts, rows, liveRows, maxSeq };
}

function bucketRows(
  db: Database.Database,
  task: Extract<StoreTask, { kind: 'bucket-rows' }>,
): RowsResult {
  const select = db.prepare(
    `SELECT ${ROW}, hash FROM kv WHERE bucket = ? AND key > ? ORDER BY key LIMIT ?`,
  );
  const parts: string[] = [];
  let bytes = 0;
  const startIndex = task.after ? task.buckets.indexOf(task.after.bucket) : 0;
  for (let index = Math.max(0, startIndex); index < task.buckets.length; index += 1) {
    const bucket = task.buckets[index]!;
    let after = task.after && index === startIndex ? task.after.key : '';
    for (;;) {
      const room = task.rowsMax - parts.length;
      const rows = select.all(bucket, after, Math.min(room, 1000)) as (Row & { hash: number })[];
      for (const row of rows) {
        const json = rowJson(row, task.withValues);
        parts.push(json);
        bytes += Buffer.byteLength(json) + 1;
        after = row.key;
        if (parts.length >= task.rowsMax || bytes >= task.bytesMax) {
          return rowsResult(parts, bytes, { bucket, key: after }, null, 0);
        }
      }
      if (rows.length < Math.min(room, 1000)) break;
    }
  }
  return rowsResult(parts, bytes, null, null, 0);
}

/**
 * Like the sender's inline read: the origin's changes of a window of seqs,
 * and never an end inside an atomic batch (see `bend`). The window ends at
 * `throughSeq` at most: this connection's snapshot holds every change up to
 * it, so the cursor may pass the window even where no row of it was ours.
 */
function changeRange(
  db: Database.Database,
  task: Extract<StoreTask, { kind: 'change-range' }>,
): RowsResult {
  const select = db.prepare(
    `SELECT ${ROW}, seq, src, bend FROM kv WHERE seq > ? AND seq <= ? AND src = ? ORDER BY seq LIMIT ?`,
  );
  const rest = db.prepare(
    `SELECT ${ROW}, seq, src, bend FROM kv WHERE seq > ? AND seq <= ? ORDER BY seq`,
  );
  const parts: string[] = [];
  let bytes = 0;
  let lastSeq = task.afterSeq;
  let openBatchEnd = task.afterSeq;
  const take = (row: ChangeRow): void => {
    lastSeq = row.seq;
    openBatchEnd = Math.max(openBatchEnd, row.bend ?? 0);
    if (row.src !== task.originNodeId) return;
    const json = rowJson(row, true);
    parts.push(json);
    bytes += Buffer.byteLength(json) + 1;
  };
  const windowEnd = Math.min(task.throughSeq, task.afterSeq + task.scanSeqsMax);
  const rows = select.all(task.afterSeq, windowEnd, task.originNodeId, task.rowsMax) as ChangeRow[];
  let cut = false;
  for (const row of rows) {
    take(row);
    cut = bytes >= task.bytesMax && lastSeq >= openBatchEnd;
    if (cut) break;
  }
  // Fewer of ours than asked for: the whole window is read.
  if (!cut && rows.length < task.rowsMax) lastSeq = Math.max(lastSeq, windowEnd);
  if (lastSeq < openBatchEnd) {
    for (const row of rest.all(lastSeq, openBatchEnd) as ChangeRow[]) take(row);
    lastSeq = openBatchEnd;
  }
  return rowsResult(parts, bytes, null, lastSeq < task.throughSeq ? lastSeq : null, lastSeq);
}

function rowsResult(
  parts: string[],
  bytes: number,
  nextBucket: BucketCursor | null,
  nextSeq: number | null,
  lastSeq: number,
): RowsResult {
  return { json: parts.join(','), count: parts.length, bytes, nextBucket, nextSeq, lastSeq };
}
