/**
 * The piscina pool that runs the O(N) store tasks (workers/store-tasks.ts)
 * off the event loop. Workers load the TypeScript task through tsx whether
 * the node runs under `tsx`, `node --import tsx` or the bin.
 */
import { Piscina } from 'piscina';
import type { RowsResult, ScanDigestResult, StoreTask } from '../workers/store-tasks.ts';

export interface StorePool {
  rows(task: Exclude<StoreTask, { kind: 'scan-digest' }>): Promise<RowsResult>;
  scanDigest(dbPath: string): Promise<ScanDigestResult>;
  close(): Promise<void>;
}

export function createStorePool(threadsMax: number): StorePool {
  const pool = new Piscina({
    filename: new URL('../workers/store-tasks.ts', import.meta.url).href,
    execArgv: ['--import', import.meta.resolve('tsx')],
    minThreads: 0,
    maxThreads: threadsMax,
    idleTimeout: 30_000,
    maxQueue: 256,
  });
  return {
    rows: (task) => pool.run(task) as Promise<RowsResult>,
    scanDigest: (dbPath) => pool.run({ kind: 'scan-digest', dbPath }) as Promise<ScanDigestResult>,
    close: () => pool.destroy(),
  };
}
