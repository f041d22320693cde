/**
 * Runs the backup copy (workers/backup-copy.ts) in a worker thread of its
 * own, so the O(N) copy and the fsync that ends it never hold the event
 * loop, and a backup never takes a thread of the store pool from the
 * replication and resync work that needs it. A compiled node's worker loads
 * the compiled task; from the sources, the worker registers tsx itself, then
 * loads the TypeScript task.
 */
import { Worker } from 'node:worker_threads';
import type { CopyFacts, CopyMessage, CopyTask } from '../../workers/backup-copy.ts';
import { codeUrl, runsFromSources } from '../code-location.ts';

export type { CopyFacts } from '../../workers/backup-copy.ts';

/** A copy under way: `done` settles with its facts; `cancel` stops it and resolves once it has. */
export interface CopyJob {
  readonly done: Promise<CopyFacts>;
  cancel(): Promise<void>;
}

export type CopyDatabase = (destPath: string) => CopyJob;

const TASK_URL = codeUrl('../../workers/backup-copy.ts', import.meta.url);

/** The compiled task, or (from the sources) code that registers tsx, then loads the task. */
function workerCode(): { code: URL | string; eval: boolean } {
  if (!runsFromSources) return { code: TASK_URL, eval: false };
  const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))})
  .then((tsx) => { tsx.register(); return import(${JSON.stringify(TASK_URL.href)}); });`;
  return { code: bootstrap, eval: true };
}

/** Copies of the database at `sourcePath`, each in a fresh worker thread. */
export function copyInWorker(sourcePath: string): CopyDatabase {
  return (destPath) => {
    const task: CopyTask = { kind: 'backup-copy', sourcePath, destPath };
    const { code, eval: isEval } = workerCode();
    const worker = new Worker(code, { eval: isEval, workerData: task });
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    const done = new Promise<CopyFacts>((resolve, reject) => {
      worker.once('message', (message: CopyMessage) => {
        if ('facts' in message) resolve(message.facts);
        else reject(Object.assign(new Error(message.error.message), { code: message.error.code }));
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`backup worker exited (${code}) early`)));
    });
    return {
      done,
      cancel: async () => {
        await worker.terminate();
        await exited;
      },
    };
  };
}
