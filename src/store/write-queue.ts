/**
 * Group commit. Writers submit mutations and get a promise that settles after
 * the transaction holding them has committed. Everything submitted while the
 * event loop is busy is committed together on the next turn, in transactions
 * of about `commitMutationsMax` mutations, yielding to the event loop between
 * them. A job is never split: its mutations commit in one transaction or not
 * at all, so a request that fails changes nothing (a job larger than
 * `commitMutationsMax` gets a transaction of its own; the request limits keep
 * it short). An atomic job (a client's batch) is also one group for the store:
 * its conditions are all checked before any of it is written.
 */
import assert from 'node:assert/strict';
import { PeerkvError } from '../errors.ts';
import { nodeRuntime, type Runtime } from '../runtime.ts';
import type { AtomicGroup, Mutation, MutationResult } from './types.ts';

export interface MutationApplier {
  applyMutations(mutations: readonly Mutation[], groups?: readonly AtomicGroup[]): MutationResult[];
  /** After a commit: resolves when it is on disk; null when it already is (see KvStore.flushed). */
  flushed?(): Promise<void> | null;
}

export interface SubmitOptions {
  /** All or nothing also for conditions: one failed condition refuses every mutation. */
  readonly atomic?: boolean;
}

interface Job {
  readonly mutations: readonly Mutation[];
  readonly atomic: boolean;
  resolve(results: MutationResult[]): void;
  reject(error: unknown): void;
}

export interface WriteQueueOptions {
  readonly commitMutationsMax: number;
  readonly queuedMutationsMax: number;
  /** After each commit: its mutations, their results, and how long the transaction took. */
  readonly onCommit?: (
    results: readonly MutationResult[],
    mutations: readonly Mutation[],
    commitMs: number,
  ) => void;
  /** Turns and the monotonic clock (default: Node's); the simulator passes virtual ones. */
  readonly runtime?: Runtime;
}

export class WriteQueue {
  readonly #store: MutationApplier;
  readonly #options: WriteQueueOptions;
  readonly #runtime: Runtime;
  readonly #jobs: Job[] = [];
  #queued = 0;
  #scheduled = false;
  #closed = false;
  #commits = 0;
  /** Holds on commits (see hold()). */
  #holds = 0;
  /** The last commit still waiting for its flush (resolves, never rejects). */
  #flushing: Promise<void> | null = null;

  constructor(store: MutationApplier, options: WriteQueueOptions) {
    this.#store = store;
    this.#options = options;
    this.#runtime = options.runtime ?? nodeRuntime;
  }

  /** Mutations waiting for a transaction. */
  get queued(): number {
    return this.#queued;
  }

  /** Mutations that may still be queued before writes get 503. */
  get room(): number {
    return this.#options.queuedMutationsMax - this.#queued;
  }

  get commits(): number {
    return this.#commits;
  }

  submit(mutations: readonly Mutation[], options: SubmitOptions = {}): Promise<MutationResult[]> {
    if (this.#closed) {
      return Promise.reject(new PeerkvError('SHUTTING_DOWN', 'node is shutting down'));
    }
    if (mutations.length === 0) return Promise.resolve([]);
    if (this.#queued + mutations.length > this.#options.queuedMutationsMax) {
      return Promise.reject(
        new PeerkvError('OVERLOADED', 'write queue is full, retry later', {
          headers: { 'Retry-After': '1' },
        }),
      );
    }
    return new Promise((resolve, reject) => {
      this.#jobs.push({ mutations, atomic: options.atomic === true, resolve, reject });
      this.#queued += mutations.length;
      this.#schedule();
    });
  }

  /**
   * Commits nothing until the returned release is called; writes queue up
   * meanwhile (within queuedMutationsMax) and commit together after. For a
   * checkpoint that must see the WAL still (src/store/checkpointer.ts).
   */
  hold(): () => void {
    this.#holds += 1;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#holds -= 1;
      if (this.#holds === 0 && this.#jobs.length > 0) this.#schedule();
    };
  }

  /** Commits everything still queued, then refuses new work. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#jobs.length > 0) this.#flush();
    await this.#flushing;
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#runtime.setImmediate(() => {
      this.#scheduled = false;
      if (this.#holds > 0) return;
      this.#flush();
      if (this.#jobs.length > 0) this.#schedule();
    });
  }

  /** Commits one transaction's worth of the queue: whole jobs, at least one. */
  #flush(): void {
    let count = 0;
    let taken = 0;
    for (const job of this.#jobs) {
      if (taken > 0 && count + job.mutations.length > this.#options.commitMutationsMax) break;
      count += job.mutations.length;
      taken += 1;
    }
    if (taken === 0) return;
    const owners = this.#jobs.splice(0, taken);
    const batch =
      owners.length === 1 ? owners[0]!.mutations : owners.flatMap((job) => job.mutations);
    this.#queued -= batch.length;
    assert.ok(this.#queued >= 0, 'the queue count never goes negative');
    const groups: AtomicGroup[] = [];
    let start = 0;
    for (const job of owners) {
      if (job.atomic) groups.push({ start, count: job.mutations.length });
      start += job.mutations.length;
    }
    let results: MutationResult[];
    const startedMonoMs = this.#runtime.monoMs();
    try {
      results = this.#store.applyMutations(batch, groups);
    } catch (error) {
      for (const job of owners) job.reject(error);
      return;
    }
    assert.equal(results.length, batch.length, 'one result per mutation');
    this.#commits += 1;
    const answer = (error?: unknown): void => {
      let offset = 0;
      for (const job of owners) {
        if (error === undefined) job.resolve(results.slice(offset, offset + job.mutations.length));
        else job.reject(error);
        offset += job.mutations.length;
      }
      // The rows are committed either way: what counts and tells about them goes on.
      this.#options.onCommit?.(results, batch, this.#runtime.monoMs() - startedMonoMs);
    };
    const flushed = this.#store.flushed?.() ?? null;
    if (flushed === null) {
      answer();
      return;
    }
    // Answered when on disk; flushes settle in commit order, so answers keep it too.
    const settled = flushed.then(() => answer(), answer);
    this.#flushing = settled;
    void settled.then(() => {
      if (this.#flushing === settled) this.#flushing = null;
    });
  }
}
