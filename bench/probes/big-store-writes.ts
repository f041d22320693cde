/**
 * Probe for issue 14: one node's writes on a large store, the way the bench's
 * scaling rows load it (overwrites of random existing keys, 50 connections,
 * `GET /store/hash` polled at 200/s beside them), from the sources of one or
 * more trees (`--tree DIR`, repeatable: e.g. a `git worktree` with a changed
 * limit), taking turns, on copies of one store bulk-loaded once. Prints per
 * run: writes/s, write p50/p99, /store/hash p99, and the node's commits and
 * checkpoints from its /metrics.
 *
 *   npx tsx bench/probes/big-store-writes.ts --keys 1000000 --seconds 15 --rounds 2 \
 *     --tree . --tree /tmp/wt-other
 *
 * `--node-flag` passes a flag to node for the measured nodes (`--node-flag=--cpu-prof`).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import minimist from 'minimist';
import { randomExistingKeyWrites } from '../lib/request-generators.ts';
import { bulkLoad, call, freePort, stopChild } from './probe-support.ts';

const args = minimist(process.argv.slice(2), {
  string: ['keys', 'seconds', 'rounds', 'tree', 'node-flag'],
});
const here = resolve(import.meta.dirname, '..', '..');
const trees = [args.tree ?? here].flat().map((tree: string) => resolve(tree));
const keys = Number(args.keys ?? 1_000_000);
const seconds = Number(args.seconds ?? 15);
const rounds = Number(args.rounds ?? 2);
const HASH_RATE = 200;
const nodeFlags = [args['node-flag'] ?? []].flat() as string[];

async function until(what: string, probe: () => Promise<boolean>, limitMs: number): Promise<void> {
  const started = performance.now();
  while (performance.now() - started < limitMs) {
    if (await probe().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${what}: not after ${limitMs} ms`);
}

function startNode(tree: string, port: number, dir: string, flags: string[] = []): ChildProcess {
  const nodeArgs = ['node', '--port', String(port), '--data-dir', dir, '--log-level', 'debug'];
  const child = spawn(
    process.execPath,
    [...flags, '--import', 'tsx', join(tree, 'src', 'main.ts'), ...nodeArgs],
    { cwd: tree, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    out += chunk.toString();
    if (out.length > 1_000_000) out = out.slice(-100_000);
  });
  (child as ChildProcess & { output: () => string }).output = () => out;
  return child;
}

function metric(text: string, pattern: RegExp): number {
  let total = 0;
  for (const match of text.matchAll(pattern)) total += Number(match[1]);
  return total;
}

/** GET /store/hash at HASH_RATE from a process of its own (autocannon's CLI); its p99 in ms. */
function hashApart(url: string): Promise<number> {
  const bin = join(here, 'node_modules', '.bin', 'autocannon');
  const flags = [
    '-c',
    '1',
    '-d',
    String(seconds),
    '-R',
    String(HASH_RATE),
    '-j',
    `${url}/store/hash`,
  ];
  return new Promise((done, fail) => {
    let out = '';
    const child = spawn(bin, flags, { stdio: ['ignore', 'pipe', 'ignore'] });
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.once('error', fail);
    child.once('exit', () => {
      try {
        done((JSON.parse(out) as { latency: { p99: number } }).latency.p99);
      } catch (error) {
        fail(error);
      }
    });
  });
}

async function load(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'peerkv-bigstore-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = startNode(here, port, dir);
  try {
    await until('ready', async () => (await call(`${url}/readyz`, 'GET')) !== '', 30_000);
    const started = performance.now();
    await bulkLoad(keys, async (body) => {
      await call(`${url}/replicate`, 'POST', body);
    });
    console.error(`loaded ${keys} keys in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    await stopChild(child);
  }
  return dir;
}

async function run(tree: string, source: string): Promise<Record<string, number | string>> {
  const dir = mkdtempSync(join(tmpdir(), 'peerkv-bigstore-run-'));
  execFileSync('cp', ['-a', `${source}/.`, dir]);
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = startNode(tree, port, dir, nodeFlags) as ChildProcess & { output: () => string };
  try {
    await until('ready', async () => (await call(`${url}/readyz`, 'GET')) !== '', 60_000);
    // The start-up scrub hashes every key in a worker: let it end before measuring.
    await until('scrub done', async () => /digest scrub/.test(child.output()), 120_000).catch(
      () => {},
    );
    await sleep(1_000);
    const before = await call(`${url}/metrics`, 'GET');
    // The bench polls /store/hash from the process that drives the writes; a second poller in a
    // process of its own tells the node's delays from the load generator's own.
    const apart = hashApart(url);
    const [writes, hash] = await Promise.all([
      autocannon({
        url: `${url}/store`,
        connections: 50,
        duration: seconds,
        requests: randomExistingKeyWrites({ path: '/store', keyCount: keys, seed: 7 })(0),
      }),
      autocannon({
        url: `${url}/store/hash`,
        connections: 1,
        duration: seconds,
        overallRate: HASH_RATE,
      }),
    ]);
    const hashApartP99 = await apart;
    const after = await call(`${url}/metrics`, 'GET');
    const delta = (pattern: RegExp) => metric(after, pattern) - metric(before, pattern);
    return {
      tree,
      writesPerSec: Math.round(writes.requests.average),
      writeP50Ms: writes.latency.p50,
      writeP99Ms: writes.latency.p99,
      hashP99Ms: hash.latency.p99,
      hashApartP99Ms: hashApartP99,
      errors: writes.errors + writes.non2xx,
      commits: delta(/^peerkv_commit_mutations_count (\S+)$/gm),
      checkpoints: delta(/^peerkv_wal_checkpoint_duration_seconds_count\{[^}]*\} (\S+)$/gm),
      // prom-client resets its event-loop delay monitor at every scrape: these cover the run.
      loopDelayP99Ms: Number(
        (metric(after, /^nodejs_eventloop_lag_p99_seconds (\S+)$/gm) * 1000).toFixed(1),
      ),
      loopDelayMaxMs: Number(
        (metric(after, /^nodejs_eventloop_lag_max_seconds (\S+)$/gm) * 1000).toFixed(1),
      ),
      walMiB: Number((statSync(join(dir, 'peerkv.db-wal')).size / 2 ** 20).toFixed(1)),
      checkpointSec: Number(
        delta(/^peerkv_wal_checkpoint_duration_seconds_sum\{[^}]*\} (\S+)$/gm).toFixed(2),
      ),
    };
  } finally {
    await stopChild(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

const source = await load();
try {
  for (let round = 0; round < rounds; round += 1) {
    for (const tree of trees) console.log(JSON.stringify({ round, ...(await run(tree, source)) }));
  }
} finally {
  rmSync(source, { recursive: true, force: true });
}
