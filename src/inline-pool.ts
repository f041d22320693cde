/**
 * A StorePool that runs the store tasks on the calling thread, synchronously,
 * with the same task code the piscina workers run (workers/store-tasks.ts).
 * For the simulator (test/sim/), where a whole cluster runs in one process and
 * every step must happen in an order the seed decides, and for tests that want
 * the logic without threads. The node itself always uses the worker pool.
 */
import runTask, {
  type CheckpointResult,
  type RowsResult,
  type ScanDigestResult,
} from '../workers/store-tasks.ts';
import type { StorePool } from './pool.ts';

export function createInlineStorePool(): StorePool {
  let closed = false;
  const run = <T>(task: Parameters<typeof runTask>[0]): Promise<T> => {
    if (closed) return Promise.reject(new Error('store pool is closed'));
    try {
      return Promise.resolve(runTask(task) as T);
    } catch (error) {
      return Promise.reject(error);
    }
  };
  return {
    rows: (task) => run<RowsResult>(task),
    rowsForPeer: (task) => run<RowsResult>(task),
    scanDigest: (dbPath) => run<ScanDigestResult>({ kind: 'scan-digest', dbPath }),
    checkpoint: (dbPath) => run<CheckpointResult>({ kind: 'checkpoint', dbPath }),
    peerTasks: 0,
    queuedTasks: 0,
    threads: 0,
    close: async () => {
      closed = true;
    },
  };
}
