/**
 * Opens (or creates) a node's SQLite file: WAL journal, the chosen
 * synchronous level, and the schema. The schema is laid out for replication
 * and resync: one row per key with its version, tombstone (value NULL), the
 * local change sequence, the node it came from, and its digest bucket and hash.
 * Schema 2 adds the expiry of an entry and the seq range of atomic batches; a
 * schema-1 file is migrated in place when opened.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { BUCKETS } from './digest.ts';

export type SyncLevel = 'full' | 'normal';

export const DATABASE_FILE = 'peerkv.db';
const SCHEMA_VERSION = '2';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS kv (
  key    TEXT PRIMARY KEY,
  value  TEXT,              -- JSON text; NULL marks a tombstone
  ts     INTEGER NOT NULL,  -- HLC timestamp of the version
  node   TEXT NOT NULL,     -- id of the node that wrote the version
  seq    INTEGER NOT NULL,  -- local change sequence of the last change
  src    TEXT NOT NULL,     -- node id this change came from (ours when local)
  bucket INTEGER NOT NULL,  -- digest bucket of the key
  hash   INTEGER NOT NULL,  -- 48-bit digest hash of the entry
  expires INTEGER,          -- wall-clock ms after which the entry reads as absent (NULL: never)
  vhash  TEXT,              -- digest of the value an expired entry had, once the sweep dropped it
  bend   INTEGER            -- last seq of the atomic batch this change belongs to (NULL: none)
);
CREATE UNIQUE INDEX IF NOT EXISTS kv_seq ON kv (seq);
CREATE INDEX IF NOT EXISTS kv_bucket ON kv (bucket, key);
-- Live keys only, for listings: tombstones are kept until stable and must not be walked.
CREATE INDEX IF NOT EXISTS kv_live ON kv (key) WHERE value IS NOT NULL;

CREATE TABLE IF NOT EXISTS buckets (
  id    INTEGER PRIMARY KEY,
  sum   INTEGER NOT NULL,
  count INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS peers (
  url     TEXT PRIMARY KEY,
  node_id TEXT,             -- the peer's id when the cursor was last moved
  cursor  INTEGER NOT NULL  -- our change sequence the peer has acknowledged
) WITHOUT ROWID;

-- Runtime membership changes, one row per node id, the higher version winning
-- (src/membership/membership.ts); and the peer addresses a node learnt when it
-- joined (its own, like --peers: never spread).
CREATE TABLE IF NOT EXISTS members (
  node_id TEXT PRIMARY KEY,
  url     TEXT NOT NULL,
  state   TEXT NOT NULL CHECK (state IN ('member', 'removed')),
  version TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS peer_addresses (
  url TEXT PRIMARY KEY
) WITHOUT ROWID;
`;

/** Indexes over columns a migration may have added. */
const INDEXES = `
CREATE INDEX IF NOT EXISTS kv_expiring ON kv (expires) WHERE expires IS NOT NULL AND value IS NOT NULL;
-- Tombstones and swept expired entries by version, for their removal past the horizon.
CREATE INDEX IF NOT EXISTS kv_dead ON kv (ts) WHERE value IS NULL;
`;

/** Schema 1 -> 2: the expiry and atomic-batch columns. */
function migrate(db: Database.Database): void {
  const version = db.prepare("SELECT value FROM meta WHERE name = 'schema_version'").pluck().get();
  if (version !== '1') return;
  db.transaction(() => {
    db.exec('ALTER TABLE kv ADD COLUMN expires INTEGER');
    db.exec('ALTER TABLE kv ADD COLUMN vhash TEXT');
    db.exec('ALTER TABLE kv ADD COLUMN bend INTEGER');
    db.prepare("UPDATE meta SET value = ? WHERE name = 'schema_version'").run(SCHEMA_VERSION);
  })();
}

export function databasePath(dataDir: string): string {
  return join(dataDir, DATABASE_FILE);
}

export interface OpenOptions {
  /**
   * False: this connection never checkpoints the WAL by itself (SQLite's
   * automatic checkpoint after a commit is off); the caller does, off the event
   * loop (src/store/checkpointer.ts). Default true.
   */
  readonly autoCheckpoint?: boolean;
  /**
   * With `--sync full`: the write queue's commits do not fsync on the calling
   * thread; `KvStore.flushed()` flushes the WAL on libuv's pool before their
   * writes are answered (src/store/wal-sync.ts). Every other transaction still
   * fsyncs as it commits. Default false.
   */
  readonly flushOffThread?: boolean;
}

export function openDatabase(
  dataDir: string,
  sync: SyncLevel,
  options: OpenOptions = {},
): Database.Database {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(databasePath(dataDir));
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${sync === 'full' ? 'FULL' : 'NORMAL'}`);
  db.pragma('busy_timeout = 5000');
  if (options.autoCheckpoint === false) db.pragma('wal_autocheckpoint = 0');
  db.pragma('cache_size = -32768');
  db.exec(SCHEMA);
  migrate(db);
  db.exec(INDEXES);
  initialiseMeta(db);
  return db;
}

function initialiseMeta(db: Database.Database): void {
  const insert = db.prepare('INSERT OR IGNORE INTO meta (name, value) VALUES (?, ?)');
  const insertBucket = db.prepare(
    'INSERT OR IGNORE INTO buckets (id, sum, count) VALUES (?, 0, 0)',
  );
  const bucketRows = db.prepare('SELECT count(*) FROM buckets').pluck();
  db.transaction(() => {
    insert.run('schema_version', SCHEMA_VERSION);
    insert.run('node_id', randomBytes(8).toString('hex'));
    insert.run('clock', '0');
    // Every bucket has its row from the first open on; a reopen need not insert 4,096 again.
    if (bucketRows.get() !== BUCKETS) {
      for (let bucket = 0; bucket < BUCKETS; bucket += 1) insertBucket.run(bucket);
    }
  })();
  const version = db.prepare("SELECT value FROM meta WHERE name = 'schema_version'").pluck().get();
  if (version !== SCHEMA_VERSION) {
    throw new Error(`unsupported schema version ${String(version)} (expected ${SCHEMA_VERSION})`);
  }
}
