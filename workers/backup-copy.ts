/**
 * The copy behind GET /backup, run in a worker thread of its own (see
 * src/store/copy-in-worker.ts): SQLite's online backup of the node's
 * database over a read-only connection, in one step. One step is one read
 * transaction, so the copy is the database exactly as the last commit before
 * it left it (WAL lets the node keep writing meanwhile), whereas steps with
 * the writer's commits between them would restart the copy from page one on
 * every commit. The finished copy is made one self-contained file and its
 * node id and last change sequence are read back.
 */
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface CopyFacts {
  readonly totalPages: number;
  readonly nodeId: string;
  readonly seq: number;
}

export interface CopyTask {
  readonly kind: 'backup-copy';
  readonly sourcePath: string;
  readonly destPath: string;
}

/** What the worker posts back: the facts, or the error's message and SQLite code. */
export type CopyMessage =
  | { readonly facts: CopyFacts }
  | { readonly error: { readonly message: string; readonly code: string | undefined } };

/** Pages per backup step: all of them, see above. */
const ALL_PAGES = 0x7fffffff;

export async function copyDatabase(sourcePath: string, destPath: string): Promise<CopyFacts> {
  const source = new Database(sourcePath, { readonly: true, fileMustExist: true });
  let totalPages: number;
  try {
    ({ totalPages } = await source.backup(destPath, { progress: () => ALL_PAGES }));
  } finally {
    source.close();
  }
  return { totalPages, ...sealCopy(destPath) };
}

/**
 * The copy of a WAL database says "WAL" in its header (opening it would make
 * side files): switch it to a rollback journal, and read what it holds.
 */
function sealCopy(path: string): { nodeId: string; seq: number } {
  const copy = new Database(path, { timeout: 0 });
  try {
    copy.pragma('journal_mode = DELETE');
    const nodeId = copy.prepare("SELECT value FROM meta WHERE name = 'node_id'").pluck().get();
    const seq = copy.prepare('SELECT max(seq) FROM kv').pluck().get();
    if (typeof nodeId !== 'string') throw new Error('the copy holds no node id');
    return { nodeId, seq: (seq as number | null) ?? 0 };
  } finally {
    copy.close();
  }
}

const task = workerData as CopyTask | null;
if (parentPort !== null && task?.kind === 'backup-copy') {
  const port = parentPort;
  copyDatabase(task.sourcePath, task.destPath).then(
    (facts) => port.postMessage({ facts } satisfies CopyMessage),
    (error: unknown) => {
      const code = (error as { code?: unknown } | null)?.code;
      const message = error instanceof Error ? error.message : String(error);
      port.postMessage({
        error: { message, code: typeof code === 'string' ? code : undefined },
      } satisfies CopyMessage);
    },
  );
}
