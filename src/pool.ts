/**
 * The piscina pool that runs the O(N) store tasks (workers/store-tasks.ts)
 * off the event loop. Workers load the task the way the node loads its own
 * code (src/code-location.ts): the compiled `.js` file with the node's own
 * flags, or the TypeScript file through tsx. They start on demand (no thread
 * at rest) and end after `poolIdleTimeoutMs` without a task.
 *
 * Peers' requests (`POST /sync/rows`) get a share of the pool, not all of it:
 * past `poolPeerTasksMax` of them in flight, the next one is refused with 503
 * and `Retry-After`, so the node's own work (replication backlogs, its own
 * resyncs, the digest scrub) always finds room in the queue. A full queue is
 * the same 503, never a 500.
 */
import assert from 'node:assert/strict';
import { Piscina } from 'piscina';
import type {
  CheckpointResult,
  RowsResult,
  ScanDigestResult,
  StoreTask,
} from '../workers/store-tasks.ts';
import { codeUrl, loaderExecArgv, runsFromSources } from './code-location.ts';
import { PeerkvError } from './errors.ts';
import { limits } from './limits.ts';

type RowsTask = Extract<StoreTask, { kind: 'bucket-rows' | 'change-range' }>;

export interface StorePool {
  /** The node's own work. */
  rows(task: RowsTask): Promise<RowsResult>;
  /** Work for a peer's request, within the peers' share of the pool. */
  rowsForPeer(task: RowsTask): Promise<RowsResult>;
  scanDigest(dbPath: string): Promise<ScanDigestResult>;
  /** A PASSIVE checkpoint of the file's WAL, on a connection of its own. */
  checkpoint(dbPath: string): Promise<CheckpointResult>;
  /** Peer tasks queued or running. */
  readonly peerTasks: number;
  /** Tasks waiting for a thread, and threads running (for metrics). */
  readonly queuedTasks: number;
  readonly threads: number;
  close(): Promise<void>;
}

export interface StorePoolOptions {
  readonly threadsMax: number;
  readonly queueMax: number;
  readonly peerTasksMax: number;
}

export function createStorePool(
  options: StorePoolOptions = {
    threadsMax: limits.poolThreadsMax,
    queueMax: limits.poolQueueMax,
    peerTasksMax: limits.poolPeerTasksMax,
  },
  /** Told how long each task took, queueing included (for metrics). */
  observeTaskMs: (kind: StoreTask['kind'], ms: number) => void = () => {},
): StorePool {
  assert.ok(options.peerTasksMax < options.queueMax, 'peers must leave room in the pool queue');
  const pool = new Piscina({
    filename: codeUrl('../workers/store-tasks.ts', import.meta.url).href,
    // Compiled: undefined, so a worker inherits the node's flags (as Worker does).
    execArgv: runsFromSources ? loaderExecArgv() : undefined,
    minThreads: 0,
    maxThreads: options.threadsMax,
    idleTimeout: limits.poolIdleTimeoutMs,
    resourceLimits: { maxYoungGenerationSizeMb: limits.poolYoungGenerationMb },
    maxQueue: options.queueMax,
  });
  const run = <T>(task: StoreTask): Promise<T> => {
    const startedMonoMs = performance.now();
    return (pool.run(task) as Promise<T>).then(
      (result) => {
        observeTaskMs(task.kind, performance.now() - startedMonoMs);
        return result;
      },
      (error: unknown) => {
        throw queueFull(error) ? overloaded(error) : error;
      },
    );
  };
  let peerTasks = 0;
  return {
    rows: (task) => run<RowsResult>(task),
    rowsForPeer: async (task) => {
      if (peerTasks >= options.peerTasksMax) throw overloaded(undefined);
      peerTasks += 1;
      try {
        return await run<RowsResult>(task);
      } finally {
        peerTasks -= 1;
        assert.ok(peerTasks >= 0, 'peer task count went negative');
      }
    },
    scanDigest: (dbPath) => run<ScanDigestResult>({ kind: 'scan-digest', dbPath }),
    checkpoint: (dbPath) => run<CheckpointResult>({ kind: 'checkpoint', dbPath }),
    get peerTasks() {
      return peerTasks;
    },
    get queuedTasks() {
      return pool.queueSize;
    },
    get threads() {
      return pool.threads.length;
    },
    close: () => pool.destroy(),
  };
}

function queueFull(error: unknown): boolean {
  return error instanceof Error && error.message === 'Task queue is at limit';
}

function overloaded(cause: unknown): PeerkvError {
  return new PeerkvError('OVERLOADED', 'worker pool is busy, retry later', {
    headers: { 'Retry-After': '1' },
    cause,
  });
}
