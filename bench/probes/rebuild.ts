/**
 * Probe for issue 14: how fast a wiped peer is rebuilt. Node A (peered with
 * B, which is down) takes a bulk load of `--keys` keys the way the bench
 * loads its stores (`POST /replicate`, 5,000 entries a body); then B starts
 * on an empty data dir and pulls everything in its start-up resync. Prints
 * one JSON line: spawn of B to its first `/readyz` 200, and to equal store
 * hashes, and the rate in entries per second. `--node-flag` passes a flag to
 * node itself for B alone (`--node-flag=--cpu-prof`, with
 * `--node-flag=--cpu-prof-dir=.tmp/prof`), `--sources` runs the nodes
 * through tsx instead of dist/, `--logs <prefix>` writes the nodes' info logs
 * to <prefix>.A.log and <prefix>.B.log, `--pingfreq` is the nodes' (0.5 s,
 * the bench's). The line also gives what moved through each node (A., B.):
 * a B that took more mutations than there are keys was sent entries twice.
 *
 *   npx tsx bench/probes/rebuild.ts [--keys 200000] [--runs 1]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import minimist from 'minimist';
import { distState } from '../../bin/dist.js';
import { bulkLoad, call, freePort, stopChild } from './probe-support.ts';

const args = minimist(process.argv.slice(2), {
  string: ['keys', 'runs', 'node-flag', 'logs', 'pingfreq'],
  boolean: ['sources'],
});
const root = resolve(import.meta.dirname, '..', '..');
const keys = Number(args.keys ?? 200_000);
const runs = Number(args.runs ?? 1);
const nodeFlags = [args['node-flag'] ?? []].flat() as string[];
// The bench's cluster pings every 0.5 s (bench/cases/cluster.ts).
const pingfreq = String(args.pingfreq ?? 0.5);

/** Polls `probe` every 20 ms until it is true; the ms it took. */
async function until(
  what: string,
  probe: () => Promise<boolean>,
  limitMs: number,
): Promise<number> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    if (await probe().catch(() => false)) return performance.now() - started;
    await sleep(20);
  }
  throw new Error(`${what}: not after ${limitMs} ms`);
}

const hashOf = async (url: string) =>
  (JSON.parse(await call(`${url}/store/hash`, 'GET')) as { hash: string }).hash;

/** CPU seconds (user and system, every thread) a process has used. */
function cpuSec(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** What moved through one node, from its /metrics: resync entries each way, /replicate calls, commits. */
async function movedBy(url: string): Promise<Record<string, number>> {
  const text = await call(`${url}/metrics`, 'GET');
  const counters: Record<string, number> = {};
  for (const [, direction, value] of text.matchAll(
    /^peerkv_resync_entries_total\{direction="(\w+)"[^}]*\} (\S+)$/gm,
  )) {
    counters[`resync.${direction}`] = (counters[`resync.${direction}`] ?? 0) + Number(value);
  }
  const replicate =
    /^peerkv_http_request_duration_seconds_count\{[^}]*route="\/replicate"[^}]*\} (\S+)$/m.exec(
      text,
    );
  counters.replicateCalls = Number(replicate?.[1] ?? 0);
  counters.commits = Number(/^peerkv_commit_mutations_count (\S+)$/m.exec(text)?.[1] ?? 0);
  counters.mutations = Number(/^peerkv_commit_mutations_sum (\S+)$/m.exec(text)?.[1] ?? 0);
  return counters;
}

const dist = distState(root);
function mainArgs(): string[] {
  if (args.sources) return ['--import', 'tsx', join(root, 'src', 'main.ts')];
  if (!dist.current) throw new Error(`dist/ is ${dist.reason}: run npm run build`);
  return [dist.mainFile];
}
const main = mainArgs();

async function once(): Promise<Record<string, number>> {
  const ports = [await freePort(), await freePort()];
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const dirs = ports.map(() => mkdtempSync(join(tmpdir(), 'peerkv-rebuild-')));
  const start = (index: number, flags: string[]) => {
    const nodeArgs = ['node', '--port', String(ports[index]), '--data-dir', dirs[index]!];
    const level = args.logs === undefined ? 'warn' : 'info';
    const peers = ['--peers', urls.join(','), '--pingfreq', pingfreq, '--log-level', level];
    const out =
      args.logs === undefined ? 'ignore' : openSync(`${args.logs}.${'AB'[index]}.log`, 'w');
    return spawn(process.execPath, [...flags, ...main, ...nodeArgs, ...peers], {
      cwd: root,
      stdio: ['ignore', out, 'inherit'],
    });
  };
  const children = [start(0, [])];
  try {
    await until('A ready', async () => (await call(`${urls[0]}/readyz`, 'GET')) !== '', 30_000);
    const loadStarted = performance.now();
    await bulkLoad(keys, async (body) => {
      await call(`${urls[0]}/replicate`, 'POST', body);
    });
    const loadSec = (performance.now() - loadStarted) / 1000;
    const target = await hashOf(urls[0]!);
    children.push(start(1, nodeFlags));
    const spawned = performance.now();
    const cpuBefore = cpuSec(children[0]!.pid!);
    await until('B ready', async () => (await call(`${urls[1]}/readyz`, 'GET')) !== '', 30_000);
    const readyMs = performance.now() - spawned;
    await until('equal hashes', async () => (await hashOf(urls[1]!)) === target, 600_000);
    const equalMs = performance.now() - spawned;
    const cpu = {
      'A.cpuSec': cpuSec(children[0]!.pid!) - cpuBefore,
      'B.cpuSec': cpuSec(children[1]!.pid!),
    };
    const counters = await Promise.all(urls.map(movedBy));
    return {
      keys,
      loadSec: Number(loadSec.toFixed(1)),
      readyMs: Math.round(readyMs),
      equalMs: Math.round(equalMs),
      entriesPerSec: Math.round(keys / ((equalMs - readyMs) / 1000)),
      entriesPerSecFromSpawn: Math.round(keys / (equalMs / 1000)),
      ...Object.fromEntries(Object.entries(cpu).map(([k, v]) => [k, Number(v.toFixed(2))])),
      ...Object.fromEntries(
        counters.flatMap((c, i) => Object.entries(c).map(([k, v]) => [`${'AB'[i]}.${k}`, v])),
      ),
    };
  } finally {
    await Promise.all(children.map(stopChild));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  }
}

for (let run = 0; run < runs; run += 1) console.log(JSON.stringify(await once()));
process.exit(0);
