/**
 * What the numbers were measured on: CPU model and count, memory, OS, Node,
 * and the git commit of the code under test.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
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

export interface CpuSnapshot {
  /** CPU seconds all processors spent busy (not idle, not iowait) since boot. */
  busySec: number;
  /** CPU seconds of this process and of its children that have exited. */
  ownSec: number;
  atMs: number;
}

/** USER_HZ: the unit of /proc/stat and /proc/<pid>/stat times on Linux. */
const clockTicksPerSec = 100;

/** A CPU-time snapshot, or null where /proc is not available. */
export function cpuSnapshot(): CpuSnapshot | null {
  try {
    const stat = readFileSync('/proc/stat', 'utf8');
    const fields = stat.split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq] = fields;
    const busy = (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0);
    const self = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    // Fields 14-17 of /proc/self/stat (utime stime cutime cstime), counted after "pid (comm) ".
    const own = [11, 12, 13, 14].reduce((sum, i) => sum + Number(self[i]), 0);
    return {
      busySec: busy / clockTicksPerSec,
      ownSec: own / clockTicksPerSec,
      atMs: Date.now(),
    };
  } catch {
    return null;
  }
}

/**
 * Share of the machine's CPU (0..1) that processes other than this one and
 * its children used between two snapshots: what made the numbers noisy.
 */
export function foreignCpuShare(start: CpuSnapshot, end: CpuSnapshot, cpuCount: number): number {
  const elapsedSec = (end.atMs - start.atMs) / 1000;
  if (elapsedSec <= 0 || cpuCount <= 0) return 0;
  const foreign = end.busySec - start.busySec - (end.ownSec - start.ownSec);
  return Math.min(1, Math.max(0, foreign / (elapsedSec * cpuCount)));
}

export function loadAverage1m(): number {
  return os.loadavg()[0] ?? 0;
}
