/**
 * The fsync of `--sync full`, off the event loop. With SQLite's
 * `synchronous = FULL` every commit fsyncs the WAL on the thread that commits:
 * the node's event loop, which then parses no request for the length of a
 * disk flush (about half of a write's commit time at 50 writes per commit,
 * bench/ANALYSIS.md). The write queue's commits run at `synchronous = NORMAL`
 * instead, which writes the WAL without flushing it, and their writes are
 * answered only after this fdatasync of the WAL file, on libuv's thread pool,
 * has returned: the same writes reach the disk in the same order before the
 * same answer, only the loop goes on meanwhile.
 *
 * Flushes are coalesced: one at a time, and every commit that asks while one
 * runs waits for the next one, which covers them all.
 *
 * A failed flush is final (fsync's error state is not to be retried: the
 * pages it could not write may be dropped, and a later flush can succeed
 * without them). Every later `flushed()` rejects, and the node refuses writes
 * until it is restarted.
 */
import { open } from 'node:fs/promises';
import { PeerkvError } from '../errors.ts';

/** Flushes a file's data to disk. */
export type FileFlush = (path: string) => Promise<void>;

export const flushFile: FileFlush = async (path) => {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    // No WAL: the last connection's close checkpointed it into the file and removed it.
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    await handle.datasync();
  } finally {
    await handle.close();
  }
};

export class WalSync {
  readonly #walPath: string;
  readonly #flush: FileFlush;
  #running: Promise<void> | null = null;
  #next: Promise<void> | null = null;
  #failure: PeerkvError | null = null;
  #flushes = 0;

  readonly #onFailure: (error: PeerkvError) => void;

  /** `onFailure` hears of the failure once. */
  constructor(
    walPath: string,
    flush: FileFlush = flushFile,
    onFailure: (error: PeerkvError) => void = () => {},
  ) {
    this.#walPath = walPath;
    this.#flush = flush;
    this.#onFailure = onFailure;
  }

  /** Flushes started so far. */
  get flushes(): number {
    return this.#flushes;
  }

  /** The failure that ended flushing, if one did. */
  get failure(): PeerkvError | null {
    return this.#failure;
  }

  /** Resolves once everything written to the WAL before the call is on disk. */
  flushed(): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#running === null) return this.#start();
    // The running flush may have begun before the caller's commit: the next one covers it.
    this.#next ??= this.#running
      .catch(() => {})
      .then(() => {
        this.#next = null;
        return this.#failure ? Promise.reject(this.#failure) : this.#start();
      });
    return this.#next;
  }

  #start(): Promise<void> {
    this.#flushes += 1;
    const run = this.#flush(this.#walPath)
      .catch((error: unknown) => {
        const code = (error as NodeJS.ErrnoException).code ?? 'EIO';
        if (!this.#failure) {
          this.#failure = new PeerkvError(
            'STORAGE_FAILED',
            `the disk failed to save writes (${code}); restart the node`,
            { cause: error },
          );
          this.#onFailure(this.#failure);
        }
        throw this.#failure;
      })
      .finally(() => {
        if (this.#running === run) this.#running = null;
      });
    this.#running = run;
    return run;
  }
}
