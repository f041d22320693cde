/**
 * Probe for issue 14: a node's memory while it takes a bulk load, the way
 * `npm run bench` loads its million keys (`POST /replicate`, 5,000 entries a
 * body, two in flight, 100-byte values, every body to every node) and after
 * it. Spawns `--nodes` nodes peered with each other on fresh data dirs,
 * compiled (`--sources`: through tsx, as the bench ran them before), samples
 * the first node's RSS every 100 ms, and reads its V8 heap from /metrics
 * after the load. `--node-flag` (repeatable) passes a flag to node itself,
 * for experiments (`--node-flag=--max-semi-space-size=4`). Prints one JSON
 * line; `--pmap` first prints the first node's largest mappings (pmap -x) to stderr,
 * `--heap-snapshot` writes the first node's V8 heap after the load to .tmp/.
 *
 *   npx tsx bench/probes/bulk-memory.ts [--keys 1000000] [--nodes 3] [--batch 5000] [--sources]
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import minimist from 'minimist';
import { distState } from '../../bin/dist.js';
import { bulkLoad, call, freePort, stopChild } from './probe-support.ts';

const args = minimist(process.argv.slice(2), {
  string: ['keys', 'nodes', 'batch', 'idle-sec', 'node-flag'],
  boolean: ['sources', 'pmap', 'heap-snapshot'],
});
const root = resolve(import.meta.dirname, '..', '..');
const keys = Number(args.keys ?? 1_000_000);
const nodeCount = Number(args.nodes ?? 1);
const batch = Number(args.batch ?? 5_000);
const idleSec = Number(args['idle-sec'] ?? 10);
const nodeFlags = [args['node-flag'] ?? []].flat() as string[];
const snapshotDir = join(root, '.tmp', 'bulk-memory-heap');
if (args['heap-snapshot']) {
  mkdirSync(snapshotDir, { recursive: true });
  nodeFlags.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snapshotDir}`);
}
const IN_FLIGHT = 2;
const SAMPLE_MS = 100;
const MiB = 1024 * 1024;

function rssMiB(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : 0;
}

async function waitReady(url: string): Promise<void> {
  const deadline = performance.now() + 30_000;
  while (performance.now() < deadline) {
    try {
      await call(`${url}/readyz`, 'GET');
      return;
    } catch {
      // Not listening yet.
      await sleep(20);
    }
  }
  throw new Error(`${url} not ready after 30 s`);
}

function metric(text: string, name: string): number {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

/** Signals the node to write its heap and waits until the file stops growing. */
async function heapSnapshot(pid: number): Promise<string> {
  const before = new Set(readdirSync(snapshotDir));
  process.kill(pid, 'SIGUSR2');
  for (let size = -1; ; ) {
    await sleep(1_000);
    const name = readdirSync(snapshotDir).find((file) => !before.has(file));
    if (name === undefined) continue;
    const path = join(snapshotDir, name);
    const now = statSync(path).size;
    if (now === size && now > 0) return path;
    size = now;
  }
}

const dist = distState(root);
function mainArgs(): string[] {
  if (args.sources) return ['--import', 'tsx', join(root, 'src', 'main.ts')];
  if (!dist.current) throw new Error(`dist/ is ${dist.reason}: run npm run build`);
  return [dist.mainFile];
}
const main = mainArgs();
const ports: number[] = [];
while (ports.length < nodeCount) {
  const port = await freePort();
  if (!ports.includes(port)) ports.push(port);
}
const urls = ports.map((port) => `http://127.0.0.1:${port}`);
const dataDirs = ports.map(() => mkdtempSync(join(tmpdir(), 'peerkv-bulk-memory-')));
const children = ports.map((port, index) => {
  const peers = nodeCount > 1 ? ['--peers', urls.join(',')] : [];
  const flags = ['node', '--port', String(port), '--data-dir', dataDirs[index]!, ...peers];
  return spawn(process.execPath, [...nodeFlags, ...main, ...flags, '--log-level', 'warn'], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
});
const url = urls[0]!;
const child = children[0]!;
try {
  await Promise.all(urls.map(waitReady));
  const pid = child.pid!;
  let peakMiB = rssMiB(pid);
  const sampler = setInterval(() => {
    peakMiB = Math.max(peakMiB, rssMiB(pid));
  }, SAMPLE_MS);
  const startedMs = performance.now();
  await bulkLoad(
    keys,
    async (body, count) => {
      for (const text of await Promise.all(urls.map((u) => call(`${u}/replicate`, 'POST', body)))) {
        assert.equal((JSON.parse(text) as { applied: number }).applied, count);
      }
    },
    { batch, inFlight: IN_FLIGHT },
  );
  const loadSec = (performance.now() - startedMs) / 1000;
  const afterLoadMiB = rssMiB(pid);
  const metrics = await call(`${url}/metrics`, 'GET');
  if (args['heap-snapshot']) process.stderr.write(`heap snapshot: ${await heapSnapshot(pid)}\n`);
  await sleep(idleSec * 1000);
  clearInterval(sampler);
  if (args.pmap) {
    const lines = execFileSync('pmap', ['-x', String(pid)], { encoding: 'utf8' }).split('\n');
    const rows = lines.filter((line) => /^[0-9a-f]{16} /.test(line));
    rows.sort((a, b) => Number(b.split(/\s+/)[2]) - Number(a.split(/\s+/)[2]));
    process.stderr.write(`${[lines.at(-2), ...rows.slice(0, 12)].join('\n')}\n`);
    const anon = rows.filter((row) => row.includes('[ anon ]'));
    const sizes = anon.map((row) => Number(row.split(/\s+/)[2]));
    const small = sizes.filter((kib) => kib <= 264);
    process.stderr.write(
      `anon mappings: ${anon.length}, of which <= 264 KiB (V8 pages): ${small.length}, ` +
        `${(small.reduce((a, b) => a + b, 0) / 1024).toFixed(1)} MiB; ` +
        `the rest ${((sizes.reduce((a, b) => a + b, 0) - small.reduce((a, b) => a + b, 0)) / 1024).toFixed(1)} MiB\n`,
    );
    const status = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n');
    const memory = status.filter((line) => /^(VmRSS|RssAnon|RssFile|Threads)/.test(line));
    process.stderr.write(`${memory.join('\n')}\n`);
  }
  console.log(
    JSON.stringify({
      keys,
      nodes: nodeCount,
      code: args.sources ? 'sources' : 'compiled',
      batch,
      nodeFlags,
      loadSec: Number(loadSec.toFixed(1)),
      entriesPerSec: Math.round(keys / loadSec),
      rssPeakMiB: Number(peakMiB.toFixed(1)),
      rssAfterLoadMiB: Number(afterLoadMiB.toFixed(1)),
      [`rssAfter${idleSec}sMiB`]: Number(rssMiB(pid).toFixed(1)),
      heapTotalMiBAfterLoad: Number(
        (metric(metrics, 'nodejs_heap_size_total_bytes') / MiB).toFixed(1),
      ),
      heapUsedMiBAfterLoad: Number(
        (metric(metrics, 'nodejs_heap_size_used_bytes') / MiB).toFixed(1),
      ),
      poolTasks: Object.fromEntries(
        [...metrics.matchAll(/^peerkv_pool_task_duration_seconds_count\{task="([^"]+)"\} (\d+)$/gm)]
          .filter((match) => match[2] !== '0')
          .map((match) => [match[1], Number(match[2])]),
      ),
      externalMiBAfterLoad: Number(
        (metric(metrics, 'nodejs_external_memory_bytes') / MiB).toFixed(1),
      ),
    }),
  );
} finally {
  await Promise.all(children.map(stopChild));
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
