/**
 * `peerkv restore FILE --data-dir DIR [--force]`: flags -> a restore
 * (src/store/restore-backup.ts) -> the lines it prints. Every refusal is a
 * ConfigError: one line on stderr, exit code 2, DIR left as it was.
 */
import minimist from 'minimist';
import { ConfigError } from './errors.ts';
import { type RestoreReport, type RestoreRequest, restoreBackup } from './store/restore-backup.ts';

export const RESTORE_USAGE = `Usage: peerkv restore FILE --data-dir <dir> [--force]

  Makes <dir> the data dir of a new node holding the data of FILE, a backup
  from GET /backup (peerkv backup). FILE is checked first: a SQLite database,
  PRAGMA integrity_check ok, a peerkv schema this version reads.

  The restored node gets a NEW node id (two live nodes must never share one)
  and no peer cursors: start it with --peers and it joins like a new node,
  resyncs with its peers and catches up. Entries keep their versions, so keys
  deleted or rewritten after the backup was taken stay deleted or rewritten.

  --data-dir <dir>   the new node's data dir (made if missing; must be empty)
  --force            replace the database of a non-empty <dir> (refused while
                     a node runs on it)
`;

/** Parses `restore` flags; undefined when help was asked. */
export function parseRestoreArgs(argv: readonly string[]): RestoreRequest | undefined {
  const unknown: string[] = [];
  const args = minimist([...argv], {
    string: ['data-dir'],
    boolean: ['force', 'help'],
    alias: { h: 'help' },
    unknown: (arg) => {
      if (arg.startsWith('-')) unknown.push(arg);
      return !arg.startsWith('-');
    },
  });
  if (unknown.length > 0)
    throw new ConfigError(`unknown flag ${unknown[0]} (see peerkv restore --help)`);
  if (args.help) return undefined;
  const files = args._.map(String);
  if (files.length !== 1)
    throw new ConfigError('restore: expected one FILE (see peerkv restore --help)');
  const dataDir = args['data-dir'];
  if (Array.isArray(dataDir)) throw new ConfigError('--data-dir given more than once');
  if (dataDir === undefined || dataDir.trim() === '') {
    throw new ConfigError('--data-dir is required (see peerkv restore --help)');
  }
  return { file: files[0]!, dataDir, force: args.force === true };
}

export function runRestore(request: RestoreRequest): string {
  return describeRestore(request, restoreBackup(request));
}

function describeRestore(request: RestoreRequest, report: RestoreReport): string {
  const count = (n: number) => n.toLocaleString('en-US');
  return [
    `peerkv: restored ${request.file} into ${request.dataDir}${report.replaced ? ' (its database replaced)' : ''}: ${count(report.entries)} entries (tombstones included), ${count(report.bytes)} bytes, change sequence ${report.seq}`,
    `peerkv: new node id ${report.nodeIdAfter} (the backup was of ${report.nodeIdBefore}); start the node with its --peers: it resyncs from them and catches up`,
    '',
  ].join('\n');
}
