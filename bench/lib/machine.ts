/**
 * What the numbers were measured on: CPU model and count, memory, OS, Node,
 * and the git commit of the code under test.
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  cpuCount: number;
  memoryBytesTotal: number;
  os: string;
  nodeVersion: string;
  /** Short commit hash, '+dirty' if the tree has changes, or 'unknown'. */
  commit: string;
}

/** Bounds the git calls: they read local files only. */
const gitTimeoutMs = 5_000;

function runGit(args: string[], cwd: string): string | null {
  const out = spawnSync('git', args, { cwd, encoding: 'utf8', timeout: gitTimeoutMs });
  return out.status === 0 ? out.stdout.trim() : null;
}

function describeCommit(repoDir: string): string {
  const hash = runGit(['rev-parse', '--short', 'HEAD'], repoDir);
  if (hash === null) return 'unknown';
  const status = runGit(['status', '--porcelain'], repoDir);
  return status === null || status === '' ? hash : `${hash}+dirty`;
}

export function describeMachine(repoDir: string): MachineInfo {
  const cpus = os.cpus();
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCount: cpus.length,
    memoryBytesTotal: os.totalmem(),
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    nodeVersion: process.version,
    commit: describeCommit(repoDir),
  };
}
