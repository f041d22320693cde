// Runs seeds in child processes, one per job (`npm run sim -- --seeds N --jobs J`), so a run
// uses every core. Each child (test/sim/seed-worker.ts) runs one seed at a time with
// simulate(), exactly as the runner would in its own process: a schedule depends only on its
// seed and options, so which process ran it changes nothing in its result or trace. Seeds are
// handed to whichever child is free; the runner reads the results back in seed order.
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SimViolation } from './invariants.ts';
import type { SimOptions } from './simulate.ts';

/** What the runner needs of a schedule (the trace only comes back when it failed). */
export interface SeedOutcome {
  readonly seed: number;
  readonly violations: readonly SimViolation[];
  readonly trace: readonly string[];
  /** SHA-256 of the whole trace (test/sim/trace.ts traceDigest). */
  readonly traceSha256: string;
  readonly events: number;
  readonly virtualMs: number;
  /** Tombstones and expired entries the nodes removed past their horizons. */
  readonly tombstonesRemoved: number;
}

/** The options every seed of a run shares (each child has its own data directory). */
export type SeedOptions = Omit<SimOptions, 'seed' | 'rootDir'>;

/** A child's answer for one seed. */
export type WorkerAnswer = SeedOutcome | { readonly seed: number; readonly error: string };

interface Job {
  readonly seed: number;
  readonly resolve: (outcome: SeedOutcome) => void;
  readonly reject: (error: Error) => void;
}

interface Worker {
  readonly child: ChildProcess;
  job: Job | null;
}

const WORKER = fileURLToPath(new URL('./seed-worker.ts', import.meta.url));

export class SeedPool {
  readonly #workers: Worker[];
  readonly #queue: Job[] = [];
  #closed = false;

  constructor(jobs: number, options: SeedOptions) {
    this.#workers = Array.from({ length: jobs }, () => this.#spawn(options));
  }

  /** Runs `seed` in the next free child. */
  run(seed: number): Promise<SeedOutcome> {
    return new Promise((resolve, reject) => {
      if (this.#closed) {
        reject(new Error('seed pool is closed'));
        return;
      }
      this.#queue.push({ seed, resolve, reject });
      this.#dispatch();
    });
  }

  /** Seeds not yet handed out are dropped; each child ends after the seed it is running. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#queue.splice(0)) job.reject(new Error('seed pool is closed'));
    await Promise.all(
      this.#workers.map(
        (worker) =>
          new Promise<void>((resolve) => {
            if (worker.child.exitCode !== null || worker.child.signalCode !== null) {
              resolve();
              return;
            }
            worker.child.once('exit', () => resolve());
            if (worker.child.connected) worker.child.disconnect();
          }),
      ),
    );
  }

  #spawn(options: SeedOptions): Worker {
    // The runner's own node flags (tsx's loader) make the child load TypeScript the same way.
    const child = fork(WORKER, [JSON.stringify(options)], { stdio: 'inherit' });
    const worker: Worker = { child, job: null };
    child.on('message', (answer: WorkerAnswer) => {
      const job = worker.job;
      if (job === null || job.seed !== answer.seed) return;
      worker.job = null;
      if ('error' in answer) job.reject(new Error(`seed ${answer.seed}: ${answer.error}`));
      else job.resolve(answer);
      this.#dispatch();
    });
    child.on('exit', (code, signal) => {
      const job = worker.job;
      worker.job = null;
      if (job) job.reject(new Error(`seed ${job.seed}: worker exited (${signal ?? code})`));
      if (this.#workers.every((other) => !other.child.connected)) {
        for (const queued of this.#queue.splice(0)) {
          queued.reject(new Error(`seed ${queued.seed}: no worker left`));
        }
      }
    });
    return worker;
  }

  #dispatch(): void {
    for (const worker of this.#workers) {
      if (this.#queue.length === 0) return;
      if (worker.job !== null || !worker.child.connected) continue;
      const job = this.#queue.shift()!;
      worker.job = job;
      worker.child.send({ seed: job.seed });
    }
  }
}
