/**
 * Group commit. Writers submit mutations and get a promise that settles after
 * the transaction holding them has committed. Everything submitted while the
 * event loop is busy is committed together on the next turn, in transactions
 * of at most `commitMutationsMax` mutations, yielding to the event loop between
 * them so a large incoming batch never blocks readers for long.
 */
import { PeerkvError } from '../errors.ts';
import type { Mutation, MutationResult } from './types.ts';

export interface MutationApplier {
  applyMutations(mutations: readonly Mutation[]): MutationResult[];
}

interface Job {
  readonly mutations: readonly Mutation[];
  readonly results: MutationResult[];
  /** How many of this job's mutations were handed to a transaction so far. */
  taken: number;
  resolve(results: MutationResult[]): void;
  reject(error: unknown): void;
}

export interface WriteQueueOptions {
  readonly commitMutationsMax: number;
  readonly queuedMutationsMax: number;
  /** Called after every commit with the mutations' results (replication hook). */
  /** After each commit: its mutations, their results, and how long the transaction took. */
  readonly onCommit?: (
    results: readonly MutationResult[],
    mutations: readonly Mutation[],
    commitMs: number,
  ) => void;
}

export class WriteQueue {
  readonly #store: MutationApplier;
  readonly #options: WriteQueueOptions;
  readonly #jobs: Job[] = [];
  #queued = 0;
  #scheduled = false;
  #closed = false;
  #commits = 0;

  constructor(store: MutationApplier, options: WriteQueueOptions) {
    this.#store = store;
    this.#options = options;
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

  submit(mutations: readonly Mutation[]): Promise<MutationResult[]> {
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
      this.#jobs.push({ mutations, results: [], taken: 0, resolve, reject });
      this.#queued += mutations.length;
      this.#schedule();
    });
  }

  /** Commits everything still queued, then refuses new work. */
  async close(): Promise<void> {
    this.#closed = true;
    while (this.#jobs.length > 0) this.#flush();
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#flush();
      if (this.#jobs.length > 0) this.#schedule();
    });
  }

  /** Commits one transaction's worth of the queue. */
  #flush(): void {
    const batch: Mutation[] = [];
    const owners: Job[] = [];
    for (const job of this.#jobs) {
      const room = this.#options.commitMutationsMax - batch.length;
      if (room <= 0) break;
      const slice = job.mutations.slice(job.taken, job.taken + room);
      job.taken += slice.length;
      batch.push(...slice);
      for (let index = 0; index < slice.length; index += 1) owners.push(job);
    }
    if (batch.length === 0) return;
    this.#queued -= batch.length;
    let results: MutationResult[];
    const startedMonoMs = performance.now();
    try {
      results = this.#store.applyMutations(batch);
    } catch (error) {
      this.#failJobs(new Set(owners), error);
      return;
    }
    this.#commits += 1;
    for (const [index, job] of owners.entries()) job.results.push(results[index]!);
    this.#settleFinished();
    this.#options.onCommit?.(results, batch, performance.now() - startedMonoMs);
  }

  #settleFinished(): void {
    while (this.#jobs.length > 0) {
      const job = this.#jobs[0]!;
      if (job.results.length < job.mutations.length) return;
      this.#jobs.shift();
      job.resolve(job.results);
    }
  }

  #failJobs(failed: Set<Job>, error: unknown): void {
    for (const job of failed) {
      const index = this.#jobs.indexOf(job);
      if (index >= 0) this.#jobs.splice(index, 1);
      this.#queued -= job.mutations.length - job.taken;
      job.reject(error);
    }
  }
}
