/**
 * Backups of a running node (GET /backup): one at a time, each an online
 * copy of the database taken with SQLite's backup API into a temp file of the
 * data dir while the node keeps serving writes. The finished copy is made a
 * self-contained single file (rollback journal, nothing pending), opened for
 * reading and unlinked at once: it takes disk space only while it is being
 * sent, and nothing is left behind whether the client reads it to the end,
 * goes away, or the process dies (a file a crash left mid-copy is removed at
 * the next start, see `removeLeftovers`).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { isStorageFull, PeerkvError, storageFull } from '../errors.ts';
import { DATABASE_FILE } from './open-database.ts';

export interface Snapshot {
  /** The copy, open for reading (already unlinked from the data dir). */
  readonly file: FileHandle;
  readonly bytes: number;
  /** The node id and the last change sequence the copy holds. */
  readonly nodeId: string;
  readonly seq: number;
  readonly takenWallMs: number;
  /** Closes the copy (its disk space is freed) and lets the next backup start. Idempotent. */
  release(): Promise<void>;
}

/** What a snapshot is taken from: the store's online backup (KvStore.backupTo). */
export interface SnapshotSource {
  backupTo(
    path: string,
    pagesPerStep: number,
    aborted: () => boolean,
    abortError: () => Error,
  ): Promise<{ totalPages: number }>;
}

export interface SnapshotterOptions {
  readonly dataDir: string;
  readonly pagesPerStep: number;
  readonly retryAfterSeconds: number;
  readonly wallMs: () => number;
  readonly log: Logger;
}

/** Temp files of backups and restores in a data dir, with SQLite's side files. */
export const TEMP_FILE_PATTERN = new RegExp(
  `^${DATABASE_FILE.replace('.', '\\.')}\\.(backup|restore)-[0-9a-f]{16}\\.tmp(-journal|-wal|-shm)?$`,
);

export function tempFileName(kind: 'backup' | 'restore'): string {
  return `${DATABASE_FILE}.${kind}-${randomBytes(8).toString('hex')}.tmp`;
}

/** Removes a temp database and the side files SQLite may have made beside it. */
export async function removeTempFile(path: string): Promise<void> {
  await Promise.all(
    ['', '-journal', '-wal', '-shm'].map((suffix) => rm(`${path}${suffix}`, { force: true })),
  );
}

export class Snapshotter {
  readonly #source: SnapshotSource;
  readonly #options: SnapshotterOptions;
  /** Settles when the backup in progress (taking or sending) is released; null when none. */
  #current: Promise<void> | null = null;
  #closed = false;

  constructor(source: SnapshotSource, options: SnapshotterOptions) {
    assert.ok(options.pagesPerStep > 0 && options.retryAfterSeconds > 0, 'positive bounds');
    this.#source = source;
    this.#options = options;
  }

  get running(): boolean {
    return this.#current !== null;
  }

  /** Removes the temp files a crash left in the data dir; returns how many. */
  async removeLeftovers(): Promise<number> {
    const names = (await readdir(this.#options.dataDir)).filter((name) =>
      TEMP_FILE_PATTERN.test(name),
    );
    await Promise.all(names.map((name) => rm(join(this.#options.dataDir, name), { force: true })));
    if (names.length > 0)
      this.#options.log.warn({ files: names.length }, 'removed stale backup files');
    return names.length;
  }

  /**
   * Takes a copy of the database. Refused with BACKUP_RUNNING (503, Retry-After)
   * while another backup is being taken or sent. `signal` (the client went
   * away) stops the copy between steps; the temp file is removed either way.
   */
  async take(signal: AbortSignal): Promise<Snapshot> {
    if (this.#closed) throw new PeerkvError('SHUTTING_DOWN', 'node is shutting down');
    if (this.#current !== null) {
      throw new PeerkvError(
        'BACKUP_RUNNING',
        'a backup of this node is already running; retry when it is done',
        { headers: { 'Retry-After': String(this.#options.retryAfterSeconds) } },
      );
    }
    let release!: () => void;
    this.#current = new Promise<void>((resolve) => {
      release = resolve;
    });
    const done = (): void => {
      this.#current = null;
      release();
    };
    try {
      return await this.#copy(signal, done);
    } catch (error) {
      done();
      throw error;
    }
  }

  /** Refuses new backups and stops one being copied; `close` then waits for it. */
  abort(): void {
    this.#closed = true;
  }

  /** Waits until the backup in progress (if any) has been released. */
  async close(): Promise<void> {
    this.abort();
    await this.#current;
  }

  async #copy(signal: AbortSignal, done: () => void): Promise<Snapshot> {
    const path = join(this.#options.dataDir, tempFileName('backup'));
    const startedMonoMs = performance.now();
    let file: FileHandle | undefined;
    try {
      const { totalPages } = await this.#source.backupTo(
        path,
        this.#options.pagesPerStep,
        () => signal.aborted || this.#closed,
        () =>
          this.#closed
            ? new PeerkvError('SHUTTING_DOWN', 'node is shutting down')
            : new Error('backup abandoned: the client went away', { cause: signal.reason }),
      );
      const facts = sealCopy(path);
      file = await open(path, 'r');
      const bytes = (await file.stat()).size;
      const copyMs = Math.round(performance.now() - startedMonoMs);
      this.#options.log.info({ bytes, pages: totalPages, seq: facts.seq, copyMs }, 'backup taken');
      return this.#snapshot(file, bytes, facts, done);
    } catch (error) {
      await file?.close();
      if (isStorageFull(error)) throw storageFull(error);
      throw error;
    } finally {
      // Open or not, the name goes: an open copy lives on until its handle is closed.
      await removeTempFile(path);
    }
  }

  #snapshot(
    file: FileHandle,
    bytes: number,
    facts: { nodeId: string; seq: number },
    done: () => void,
  ): Snapshot {
    let released = false;
    return {
      file,
      bytes,
      nodeId: facts.nodeId,
      seq: facts.seq,
      takenWallMs: this.#options.wallMs(),
      release: async () => {
        if (released) return;
        released = true;
        try {
          await file.close();
        } finally {
          done();
        }
      },
    };
  }
}

/**
 * Makes the copy one self-contained file (a WAL database's copy says "WAL" in
 * its header; opening it that way would make side files) and reads what it
 * holds: its node id and last change sequence.
 */
function sealCopy(path: string): { nodeId: string; seq: number } {
  const copy = new Database(path, { timeout: 0 });
  try {
    copy.pragma('journal_mode = DELETE');
    const nodeId = copy.prepare("SELECT value FROM meta WHERE name = 'node_id'").pluck().get();
    const seq = copy.prepare('SELECT max(seq) FROM kv').pluck().get();
    assert.equal(typeof nodeId, 'string', 'a backup copy holds a node id');
    return { nodeId: nodeId as string, seq: (seq as number | null) ?? 0 };
  } finally {
    copy.close();
  }
}
