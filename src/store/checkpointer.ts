/**
 * WAL checkpoints off the event loop. A checkpoint copies the pages the WAL
 * gathered into the database file and fsyncs both. Left to SQLite, the commit
 * that takes the WAL past 1,000 pages does it, on the event loop: about a
 * third of a write's SQLite time under load (bench/ANALYSIS.md). The node's
 * connection opens with SQLite's automatic checkpoint off, and this runs them:
 *
 * - After the node committed anything, a PASSIVE checkpoint in the pool, on a
 *   connection of its own, at most one at a time and one per `intervalMs`.
 *   PASSIVE takes no lock the node's writer or readers wait for; it copies
 *   what was committed when it began.
 * - SQLite writes the WAL from its start again (rewinds it) only when a write
 *   begins with every frame copied, and under steady writes a checkpoint on
 *   another thread never catches up with the last commit. So once the WAL
 *   holds `tailFrames` frames, the next checkpoint holds the write queue's
 *   commits while it runs (writes wait a few ms; the event loop goes on), so
 *   it copies every frame and the next write rewinds the WAL. What a commit
 *   outside the queue wrote meanwhile, the node's own connection copies right
 *   after (without a hold to use, it copies what the pool's checkpoint left).
 * - When the pool cannot take the task, the node checkpoints on its own
 *   connection: the WAL must not grow without bound.
 * - When at most `inlineChangesMax` rows changed since a checkpoint that
 *   copied everything (an idle node's tombstone horizon, a write now and
 *   then), the node copies those few pages itself: 0.2-1.2 ms here, about a
 *   round trip to a worker, and the pool's threads can then end. A worker
 *   kept alive for them was ~9 MiB of an idle node's RSS (bench/ANALYSIS.md,
 *   "Idle memory").
 *
 * Checkpoints change no row and no durability: a commit is durable in the
 * WAL (`--sync full` fsyncs it at every commit), and SQLite's checkpoint
 * fsyncs the WAL before it copies and the database file after.
 */
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { nodeRuntime, type Runtime, type TimerHandle } from '../runtime.ts';

/** What `PRAGMA wal_checkpoint` reports: frames in the WAL, and how many of them are in the file. */
export interface CheckpointResult {
  /** Another checkpoint held the lock: nothing was copied. */
  readonly busy: boolean;
  readonly walFrames: number;
  readonly checkpointedFrames: number;
}

/** One PASSIVE checkpoint on `db`: it never waits for a lock. */
export function checkpointWal(db: Database.Database): CheckpointResult {
  const [result] = db.pragma('wal_checkpoint(PASSIVE)') as {
    busy: number;
    log: number;
    checkpointed: number;
  }[];
  return {
    busy: result!.busy !== 0,
    // -1 when the file is not in WAL mode: nothing to copy.
    walFrames: Math.max(0, result!.log),
    checkpointedFrames: Math.max(0, result!.checkpointed),
  };
}

export interface CheckpointStore {
  readonly dbPath: string;
  /** Moves with every committed change (SQLite's total_changes()). */
  changesMade(): number;
  /** A PASSIVE checkpoint on the store's own connection, on this thread. */
  checkpoint(): CheckpointResult;
}

export interface CheckpointPool {
  checkpoint(dbPath: string): Promise<CheckpointResult>;
}

export type CheckpointThread = 'pool' | 'node';

export interface CheckpointerOptions {
  readonly intervalMs: number;
  /** From this many WAL frames on, the node's connection copies the tail (see above). */
  readonly tailFrames: number;
  /**
   * Holds the node's write commits until the returned release is called (the
   * write queue's hold()): a checkpoint during it sees no new frame, so it
   * copies every one and the next write rewinds the WAL.
   */
  readonly holdWrites?: () => () => void;
  /** The longest a hold lasts; a checkpoint still running then may leave frames to the node. */
  readonly holdMsMax: number;
  /** Up to this many changed rows since a settled checkpoint, the node checkpoints itself (see above). */
  readonly inlineChangesMax?: number;
  /** After each checkpoint: where it ran, what it reported, how long it took. */
  readonly onCheckpoint?: (thread: CheckpointThread, result: CheckpointResult, ms: number) => void;
  readonly log?: Logger;
  readonly runtime?: Runtime;
}

export class Checkpointer {
  readonly #store: CheckpointStore;
  readonly #pool: CheckpointPool;
  readonly #options: CheckpointerOptions;
  readonly #runtime: Runtime;
  #timer: TimerHandle | undefined;
  #running: Promise<void> | null = null;
  #closed = false;
  /** changesMade() when the last checkpoint began (-1: none yet). */
  #changesSeen = -1;
  /** Frames in the WAL at the last checkpoint. */
  #walFrames = 0;
  /**
   * The WAL length the next hold waits for: tailFrames, or more after a hold that
   * could not copy everything (a reader's snapshot pins frames): holding again at
   * once would only stall writes until it ends.
   */
  #holdAtFrames: number;
  /** The last checkpoint copied every frame the WAL held. */
  #settled = false;
  #poolFailed = false;
  /** The last checkpoint failed (logged once per run of failures). */
  #failing = false;

  constructor(store: CheckpointStore, pool: CheckpointPool, options: CheckpointerOptions) {
    this.#store = store;
    this.#pool = pool;
    this.#options = options;
    this.#runtime = options.runtime ?? nodeRuntime;
    this.#holdAtFrames = options.tailFrames;
  }

  start(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = this.#runtime.setInterval(
      () => void this.round(),
      this.#options.intervalMs,
      true,
    );
  }

  /** Stops the rounds and waits for the one running (the store closes after it). */
  async close(): Promise<void> {
    this.#closed = true;
    this.#runtime.clearInterval(this.#timer);
    await this.#running;
  }

  /** One round: a checkpoint when something was committed since the last one (the timer's step). */
  round(): Promise<void> {
    if (this.#running) return this.#running;
    if (this.#closed) return Promise.resolve();
    const changes = this.#store.changesMade();
    if (changes === this.#changesSeen && this.#settled) return Promise.resolve();
    const few =
      this.#changesSeen >= 0 &&
      changes - this.#changesSeen <= (this.#options.inlineChangesMax ?? -1);
    this.#changesSeen = changes;
    this.#running = this.#checkpoint(few).finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /** `few`: few rows changed since the last checkpoint (inlineChangesMax). */
  async #checkpoint(few: boolean): Promise<void> {
    const tailFrames = this.#options.tailFrames;
    // A long WAL: hold the node's commits, so this one copies every frame and the next write
    // rewinds the WAL. Writes wait for it (a few ms); the event loop does not.
    const release = this.#walFrames >= this.#holdAtFrames ? this.#holdWrites() : null;
    try {
      // Only after a checkpoint that copied everything: then this one copies just the new frames.
      const small = few && this.#settled && !release;
      let result = small ? this.#inline() : await this.#inPool();
      if (this.#closed) return;
      if (result === null) {
        result = this.#inline();
      } else {
        // Frames left behind in a long WAL (written while the pool copied, without a hold;
        // or by a commit outside the write queue): the node copies them before its next commit.
        const left = release
          ? result.checkpointedFrames < result.walFrames
          : this.#options.holdWrites === undefined;
        if (!result.busy && result.walFrames >= tailFrames && left) result = this.#inline();
      }
      this.#walFrames = result.walFrames;
      this.#settled = !result.busy && result.checkpointedFrames >= result.walFrames;
      if (this.#settled) this.#holdAtFrames = tailFrames;
      else if (release) this.#holdAtFrames = result.walFrames + tailFrames;
      this.#failing = false;
    } catch (error) {
      // A failed checkpoint (a full disk: the file cannot grow) copies part or none of the WAL
      // and loses nothing; the next round tries again.
      this.#settled = false;
      if (release) this.#holdAtFrames = this.#walFrames + tailFrames;
      if (!this.#failing) {
        this.#options.log?.warn({ err: error }, 'checkpoint failed; tried again every round');
      }
      this.#failing = true;
    } finally {
      release?.();
    }
  }

  /** The pool's checkpoint; null when the pool could not run it (the node checkpoints). */
  async #inPool(): Promise<CheckpointResult | null> {
    const startedMonoMs = this.#runtime.monoMs();
    try {
      const result = await this.#pool.checkpoint(this.#store.dbPath);
      this.#options.onCheckpoint?.('pool', result, this.#runtime.monoMs() - startedMonoMs);
      this.#poolFailed = false;
      return result;
    } catch (error) {
      // SQLite's own failure would be the same on the node's connection.
      if (String((error as { code?: unknown }).code).startsWith('SQLITE_')) throw error;
      if (!this.#poolFailed) {
        this.#options.log?.warn(
          { err: error },
          'checkpoint in the pool failed; the node checkpoints',
        );
      }
      this.#poolFailed = true;
      return null;
    }
  }

  /** The write queue's hold, released at the latest after holdMsMax (the pool may be queueing). */
  #holdWrites(): (() => void) | null {
    const hold = this.#options.holdWrites?.();
    if (!hold) return null;
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.#runtime.clearTimeout(timer);
      hold();
    };
    const timer = this.#runtime.setTimeout(release, this.#options.holdMsMax, true);
    return release;
  }

  #inline(): CheckpointResult {
    const startedMonoMs = this.#runtime.monoMs();
    const result = this.#store.checkpoint();
    this.#options.onCheckpoint?.('node', result, this.#runtime.monoMs() - startedMonoMs);
    return result;
  }
}
