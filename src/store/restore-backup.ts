/**
 * `peerkv restore FILE --data-dir DIR`: turns a backup (GET /backup) into the
 * data dir of a new node. The file is copied into DIR under a temp name and
 * checked there (a SQLite database, `PRAGMA integrity_check` ok, a peerkv
 * schema this version reads); the copy then gets a new node id, loses the
 * peer cursors and the record of versions its old node issued, and only then
 * replaces DIR's database, so a refused file leaves DIR as it was.
 *
 * Why a new id: the node the backup came from may still run, or may have
 * written under its id after the backup was taken; a restored node with the
 * same id could issue a version (timestamp, id) it already issued for another
 * write. Under a new id every version it issues is its own, its peers see a
 * new node (they reset their cursors toward it and resync), and the entries
 * keep the versions they were written with, so an old value never beats a
 * newer write or a tombstone of the same key (see README, "Backups").
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../errors.ts';
import { makeDataDir } from './data-dir.ts';
import { BUCKETS } from './digest.ts';
import { databasePath } from './open-database.ts';
import { TEMP_FILE_PATTERN, tempFileName } from './snapshots.ts';

export interface RestoreRequest {
  readonly file: string;
  readonly dataDir: string;
  /** Replace the database of a non-empty data dir (never one a running node holds). */
  readonly force: boolean;
}

export interface RestoreReport {
  readonly bytes: number;
  /** Rows of the backup, tombstones included, and its last change sequence. */
  readonly entries: number;
  readonly seq: number;
  readonly schemaVersion: string;
  readonly nodeIdBefore: string;
  readonly nodeIdAfter: string;
  /** Whether a database the data dir held was replaced. */
  readonly replaced: boolean;
}

const SQLITE_MAGIC = 'SQLite format 3\u0000';
const SCHEMAS_READ = ['1', '2'];
const TABLES = ['meta', 'kv', 'buckets', 'peers'];
/** The kv columns of schema 1 (schema 2 adds expires, vhash and bend). */
const KV_COLUMNS = ['key', 'value', 'ts', 'node', 'seq', 'src', 'bucket', 'hash'];
const NODE_ID = /^[0-9a-f]{16}$/;
const PROBLEM_CHARS_MAX = 200;

export function restoreBackup(request: RestoreRequest): RestoreReport {
  const file = resolve(request.file);
  const bytes = checkBackupFile(request.file, file);
  const dataDir = resolve(request.dataDir);
  const replaced = prepareDataDir(request.dataDir, dataDir, request.force);
  const temp = join(dataDir, tempFileName('restore'));
  try {
    copyInto(file, temp, request.dataDir);
    const report = adoptCopy(temp, request.file);
    syncPath(temp);
    replaceDatabase(dataDir, temp);
    return { ...report, bytes, replaced };
  } finally {
    removeTemp(temp);
  }
}

function copyInto(file: string, temp: string, given: string): void {
  try {
    copyFileSync(file, temp);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`the backup cannot be copied into --data-dir ${given} (${code})`);
  }
}

/** The file exists, is a regular file and starts like a SQLite database; returns its size. */
function checkBackupFile(given: string, file: string): number {
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) throw new ConfigError(`${given} is not a file`);
    size = stat.size;
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    throw new ConfigError(`${given} cannot be read (${code})`);
  }
  const head = Buffer.alloc(SQLITE_MAGIC.length);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  if (head.toString('latin1') !== SQLITE_MAGIC) {
    throw new ConfigError(`${given} is not a SQLite database (not a peerkv backup)`);
  }
  return size;
}

/**
 * Makes the data dir (it may not exist yet). A dir with anything in it is
 * refused unless `force`; with `force` its database is replaced, but never
 * one a running node holds. Returns whether a database will be replaced.
 */
function prepareDataDir(given: string, dataDir: string, force: boolean): boolean {
  makeDataDir(dataDir, given);
  // What an interrupted backup or restore left is ours to remove.
  for (const name of readdirSync(dataDir).filter((entry) => TEMP_FILE_PATTERN.test(entry))) {
    rmSync(join(dataDir, name), { force: true });
  }
  const entries = readdirSync(dataDir);
  if (entries.length > 0 && !force) {
    throw new ConfigError(
      `--data-dir ${given} is not empty (it holds ${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}); give --force to replace its database`,
    );
  }
  const existing = databasePath(dataDir);
  if (!existsSync(existing)) return false;
  assertNotInUse(existing, given);
  return true;
}

/** A running node holds its database's WAL lock: an exclusive lock is refused then. */
function assertNotInUse(path: string, given: string): void {
  let db: Database.Database | undefined;
  try {
    db = new Database(path, { timeout: 0 });
    db.pragma('locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE; ROLLBACK;');
  } catch (error) {
    if ((error as { code?: unknown }).code === 'SQLITE_BUSY') {
      throw new ConfigError(
        `the database in --data-dir ${given} is in use (is a node running on it?); stop it first`,
      );
    }
    // A damaged database that is not in use is what --force replaces: nothing to keep of it.
  } finally {
    db?.close();
  }
}

/** Checks the copy and makes it a new node's database; every refusal is one clear line. */
function adoptCopy(temp: string, given: string): Omit<RestoreReport, 'bytes' | 'replaced'> {
  let db: Database.Database | undefined;
  try {
    db = new Database(temp, { timeout: 0 });
    // One self-contained file before anything is written (a raw WAL-mode copy would make side files).
    db.pragma('journal_mode = DELETE');
    checkIntegrity(db, given);
    const schemaVersion = checkSchema(db, given);
    const meta = db.prepare('SELECT value FROM meta WHERE name = ?').pluck();
    const nodeIdBefore = String(meta.get('node_id'));
    if (!NODE_ID.test(nodeIdBefore)) {
      throw new ConfigError(`${given} is not a peerkv backup (bad node id in its meta table)`);
    }
    const seq = (db.prepare('SELECT max(seq) FROM kv').pluck().get() as number | null) ?? 0;
    const entries = Number(db.prepare('SELECT total(count) FROM buckets').pluck().get());
    const nodeIdAfter = randomBytes(8).toString('hex');
    const set = db.prepare('INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)');
    db.transaction(() => {
      set.run('node_id', nodeIdAfter);
      // The new id has issued nothing yet; the old id's record must not drive its clock.
      set.run('clock_issued', '0');
      set.run('restored_from', JSON.stringify({ nodeId: nodeIdBefore, seq }));
      // Cursors over this file's change sequence toward the old node's peers mean nothing now.
      db!.prepare('DELETE FROM peers').run();
    })();
    return { entries, seq, schemaVersion, nodeIdBefore, nodeIdAfter };
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError(`${given} cannot be restored: ${describeSqliteError(error)}`);
  } finally {
    db?.close();
  }
}

function checkIntegrity(db: Database.Database, given: string): void {
  const first = String(db.pragma('integrity_check(1)', { simple: true }));
  if (first === 'ok') return;
  throw new ConfigError(
    `${given} fails PRAGMA integrity_check (a damaged or cut-short backup): ${first.slice(0, PROBLEM_CHARS_MAX)}`,
  );
}

/** The tables and columns a peerkv database has; returns its schema version. */
function checkSchema(db: Database.Database, given: string): string {
  const tables = new Set(
    db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as string[],
  );
  const missing = TABLES.find((table) => !tables.has(table));
  if (missing !== undefined) {
    throw new ConfigError(
      `${given} is a SQLite database but not a peerkv backup (no ${missing} table)`,
    );
  }
  const columns = new Set(
    (db.pragma('table_info(kv)') as { name: string }[]).map((column) => column.name),
  );
  const column = KV_COLUMNS.find((name) => !columns.has(name));
  if (column !== undefined) {
    throw new ConfigError(`${given} is not a peerkv backup (its kv table has no ${column} column)`);
  }
  const version = db.prepare("SELECT value FROM meta WHERE name = 'schema_version'").pluck().get();
  if (typeof version !== 'string' || !SCHEMAS_READ.includes(version)) {
    throw new ConfigError(
      `${given} has peerkv schema ${String(version)}; this peerkv reads schemas ${SCHEMAS_READ.join(' and ')} (restore it with the peerkv that made it)`,
    );
  }
  const buckets = db.prepare('SELECT count(*) FROM buckets').pluck().get();
  if (buckets !== BUCKETS) {
    throw new ConfigError(
      `${given} is not a peerkv backup (${String(buckets)} digest buckets, expected ${BUCKETS})`,
    );
  }
  return version;
}

/** The old database's WAL must go before the new file takes its name: it would be replayed into it. */
function replaceDatabase(dataDir: string, temp: string): void {
  const target = databasePath(dataDir);
  for (const suffix of ['-wal', '-shm', '-journal']) rmSync(`${target}${suffix}`, { force: true });
  renameSync(temp, target);
  syncPath(dataDir);
}

function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function removeTemp(temp: string): void {
  for (const suffix of ['', '-journal', '-wal', '-shm'])
    rmSync(`${temp}${suffix}`, { force: true });
}

function describeSqliteError(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  if (code === 'SQLITE_NOTADB') return 'not a SQLite database (SQLITE_NOTADB)';
  if (typeof code === 'string' && code.startsWith('SQLITE_CORRUPT')) {
    return `damaged or cut short (${code}: ${message.slice(0, PROBLEM_CHARS_MAX)})`;
  }
  return typeof code === 'string' ? `${code}: ${message.slice(0, PROBLEM_CHARS_MAX)}` : message;
}
