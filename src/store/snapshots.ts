/**
 * Backups of a running node (GET /backup): one at a time, each an online
 * copy of the database taken with SQLite's backup API into a temp file of the
 * data dir while the node keeps serving writes (the copy itself runs in a
 * worker thread, see src/store/copy-in-worker.ts). The finished copy is
 * opened for reading and unlinked at once: it takes disk space only while it
 * is being sent, and nothing is left behind whether the client reads it to
 * the end, goes away, or the process dies (a file a crash left mid-copy is
 * removed at the next start, see `removeLeftovers`).
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isStorageFull, PeerkvError, storageFull } from '../errors.ts';
import type { CopyDatabase, CopyJob } from './copy-in-worker.ts';
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

export interface SnapshotterOptions {
  readonly dataDir: string;
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
  readonly #copyDatabase: CopyDatabase;
  readonly #options: SnapshotterOptions;
  /** Settles when the backup in progress (taking or sending) is released; null when none. */
  #current: Promise<void> | null = null;
  /** The copy being made, if one is. */
  #job: CopyJob | null = null;
  #closed = false;

  constructor(copyDatabase: CopyDatabase, options: SnapshotterOptions) {
    assert.ok(options.retryAfterSeconds > 0, 'a positive Retry-After');
    this.#copyDatabase = copyDatabase;
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
   * away) stops the copy; the temp file is removed either way.
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
    void this.#job?.cancel();
  }

  /** Waits until the backup in progress (if any) has been released. */
  async close(): Promise<void> {
    this.abort();
    await this.#current;
  }

  async #copy(signal: AbortSignal, done: () => void): Promise<Snapshot> {
    const path = join(this.#options.dataDir, tempFileName('backup'));
    const startedMonoMs = performance.now();
    const job = this.#copyDatabase(path);
    this.#job = job;
    const cancel = (): void => void job.cancel();
    signal.addEventListener('abort', cancel, { once: true });
    let file: FileHandle | undefined;
    try {
      const facts = await job.done;
      if (this.#closed || signal.aborted) throw new Error('backup abandoned');
      file = await open(path, 'r');
      const bytes = (await file.stat()).size;
      const copyMs = Math.round(performance.now() - startedMonoMs);
      this.#options.log.info(
        { bytes, pages: facts.totalPages, seq: facts.seq, copyMs },
        'backup taken',
      );
      return this.#snapshot(file, bytes, facts, done);
    } catch (error) {
      await file?.close();
      // The worker must be gone before its files are: it could write them again.
      await job.cancel();
      if (this.#closed) throw new PeerkvError('SHUTTING_DOWN', 'node is shutting down');
      if (signal.aborted)
        throw new Error('backup abandoned: the client went away', { cause: error });
      if (isStorageFull(error)) throw storageFull(error);
      throw error;
    } finally {
      signal.removeEventListener('abort', cancel);
      this.#job = null;
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
