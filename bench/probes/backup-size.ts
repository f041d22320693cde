/**
 * Probe for issue 12 (backup and restore): backup time and file size at a
 * million keys. Starts one node from this checkout in a temp dir, loads
 * `--keys` keys of `--value-bytes` (default 1,000,000 of 100) with POST
 * /batch, then times `peerkv backup --out` (the real CLI) while one client
 * keeps writing to the node (its PUT latency is sampled before and during
 * the backup), another pings it (the event loop alone), and the node's RSS
 * is sampled; then times `peerkv restore` of
 * the file (integrity check included) and the restored node's start until
 * /readyz (its start-up digest check). Prints one JSON line.
 *
 *   npx tsx bench/probes/backup-size.ts                 # 1,000,000 keys
 *   npx tsx bench/probes/backup-size.ts --keys 100000 --value-bytes 500
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import minimist from 'minimist';
import { request } from 'undici';
import { freePort } from './probe-support.ts';

const args = minimist(process.argv.slice(2), { string: ['keys', 'value-bytes', 'batch'] });
const root = resolve('.');
const keys = Number(args.keys ?? 1_000_000);
const valueBytes = Number(args['value-bytes'] ?? 100);
const batchOps = Number(args.batch ?? 1_000);
const MAIN = join(root, 'src/main.ts');
const MiB = 1024 * 1024;

async function call(url: string, method: 'GET' | 'POST' | 'PUT' = 'GET', body?: string) {
  const started = performance.now();
  const response = await request(url, {
    method,
    body,
    headers: body ? { 'content-type': 'application/json' } : {},
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
  const text = await response.body.text();
  return { status: response.statusCode, ms: performance.now() - started, text };
}

function startNode(port: number, dataDir: string): ChildProcess {
  return spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      MAIN,
      'node',
      '--port',
      String(port),
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
    ],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
  );
}

async function waitStatus(url: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    try {
      if ((await call(url)).status === 200) return;
    } catch (error) {
      if (performance.now() > deadline) throw error;
    }
    if (performance.now() > deadline) throw new Error(`${url} not 200 within ${timeoutMs} ms`);
    await sleep(100);
  }
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((done) => child.once('exit', done));
}

function run(argv: string[]): Promise<{ code: number | null; ms: number; out: string }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, ...argv], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  child.stderr.on('data', (chunk) => (out += chunk));
  return new Promise((done) =>
    child.once('close', (code) => done({ code, ms: performance.now() - started, out })),
  );
}

async function load(url: string): Promise<number> {
  const value = JSON.stringify('v'.repeat(valueBytes));
  const started = performance.now();
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < keys) {
      const start = next;
      next = Math.min(keys, next + batchOps);
      const ops: string[] = [];
      for (let index = start; index < next; index += 1) {
        ops.push(`{"op":"put","key":"key-${String(index).padStart(8, '0')}","value":${value}}`);
      }
      const answer = await call(`${url}/batch`, 'POST', `{"ops":[${ops.join(',')}]}`);
      if (answer.status !== 200) throw new Error(`batch answered ${answer.status}: ${answer.text}`);
    }
  };
  await Promise.all([lane(), lane()]);
  return performance.now() - started;
}

/**
 * One client in a loop, writing (PUT: waits for a commit's fsync, so it
 * feels the disk) or pinging (GET /ping: only the event loop); `stop()`
 * returns the latencies seen.
 */
function clientLoop(url: string, kind: 'put' | 'ping') {
  const latencies: number[] = [];
  let running = true;
  let n = 0;
  const done = (async () => {
    while (running) {
      const answer =
        kind === 'put'
          ? await call(`${url}/kv/probe-${n++}`, 'PUT', '"w"')
          : await call(`${url}/ping`);
      if (answer.status !== 200) throw new Error(`${kind} answered ${answer.status}`);
      latencies.push(answer.ms);
    }
  })();
  return {
    stop: async () => {
      running = false;
      await done;
      return latencies;
    },
  };
}

function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : 0;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const value = sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
  return Math.round(value * 10) / 10;
}

const fileBytes = (path: string): number => {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'peerkv-probe-backup-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const dataDir = join(dir, 'node');
  const node = startNode(port, dataDir);
  const children = [node];
  try {
    await waitStatus(`${url}/readyz`, 120_000);
    const loadMs = await load(url);
    const dbFile = join(dataDir, 'peerkv.db');
    const quiet = clientLoop(url, 'put');
    const quietPing = clientLoop(url, 'ping');
    await sleep(3_000);
    const quietLatencies = await quiet.stop();
    const quietPings = await quietPing.stop();
    const rssBefore = rssBytes(node.pid!);
    let rssMax = rssBefore;
    const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssBytes(node.pid!))), 50);
    const busy = clientLoop(url, 'put');
    const busyPing = clientLoop(url, 'ping');
    const file = join(dir, 'backup.db');
    const backup = await run(['backup', '--node', url, '--out', file]);
    const busyLatencies = await busy.stop();
    const busyPings = await busyPing.stop();
    clearInterval(sampler);
    if (backup.code !== 0) throw new Error(`backup failed: ${backup.out}`);
    const restoreDir = join(dir, 'restored');
    const restore = await run(['restore', file, '--data-dir', restoreDir]);
    if (restore.code !== 0) throw new Error(`restore failed: ${restore.out}`);
    const restoredPort = await freePort();
    const startedMs = performance.now();
    const restored = startNode(restoredPort, restoreDir);
    children.push(restored);
    await waitStatus(`http://127.0.0.1:${restoredPort}/readyz`, 600_000);
    const restoredReadyMs = performance.now() - startedMs;
    const round = (ms: number) => Math.round(ms) / 1000;
    process.stdout.write(
      `${JSON.stringify({
        keys,
        valueBytes,
        loadSeconds: round(loadMs),
        databaseMiB: Math.round(((fileBytes(dbFile) + fileBytes(`${dbFile}-wal`)) / MiB) * 10) / 10,
        backupFileMiB: Math.round((fileBytes(file) / MiB) * 10) / 10,
        backupSeconds: round(backup.ms),
        backupSummary: backup.out.trim(),
        writesDuringBackup: busyLatencies.length,
        putMsQuiet: {
          p50: percentile(quietLatencies, 50),
          p99: percentile(quietLatencies, 99),
          max: percentile(quietLatencies, 100),
        },
        putMsDuringBackup: {
          p50: percentile(busyLatencies, 50),
          p99: percentile(busyLatencies, 99),
          max: percentile(busyLatencies, 100),
        },
        pingMsQuiet: {
          p50: percentile(quietPings, 50),
          p99: percentile(quietPings, 99),
          max: percentile(quietPings, 100),
        },
        pingMsDuringBackup: {
          p50: percentile(busyPings, 50),
          p99: percentile(busyPings, 99),
          max: percentile(busyPings, 100),
        },
        nodeRssMiB: {
          before: Math.round(rssBefore / MiB),
          maxDuringBackup: Math.round(rssMax / MiB),
        },
        restoreSeconds: round(restore.ms),
        restoredNodeReadySeconds: round(restoredReadyMs),
      })}\n`,
    );
  } finally {
    for (const child of children) await stop(child);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
