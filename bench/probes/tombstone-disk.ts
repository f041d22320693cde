/**
 * Probe for issue 12 (tombstone removal): disk size over a delete-heavy run,
 * with and without removal. Starts two 3-node clusters from this checkout, one
 * with `--tombstone-grace 2` and one with `--tombstone-grace 3650d` (nothing is
 * removed within the run), and runs the same `--cycles` on each: put `--keys`
 * fresh keys of `--value-bytes` with POST /batch on one node, delete them all
 * on another. After each cycle, and once all writes settled, it reads every
 * node's peerkv_database_bytes and peerkv_tombstones. Prints one JSON line per
 * cluster.
 *
 *   npx tsx bench/probes/tombstone-disk.ts                     # 10 cycles of 20,000 keys
 *   npx tsx bench/probes/tombstone-disk.ts --cycles 5 --keys 50000
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import minimist from 'minimist';
import { request } from 'undici';
import { freePort } from './probe-support.ts';

const args = minimist(process.argv.slice(2), { string: ['cycles', 'keys', 'value-bytes'] });
const root = resolve('.');
const cycles = Number(args.cycles ?? 10);
const keys = Number(args.keys ?? 20_000);
const valueBytes = Number(args['value-bytes'] ?? 100);
const BATCH_OPS = 1_000;
const MAIN = join(root, 'src/main.ts');
const MiB = 1024 * 1024;

async function call(url: string, method: 'GET' | 'POST' = 'GET', body?: string) {
  const response = await request(url, {
    method,
    body,
    headers: body ? { 'content-type': 'application/json' } : {},
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
  return { status: response.statusCode, text: await response.body.text() };
}

async function metric(url: string, name: string): Promise<number> {
  const text = (await call(`${url}/metrics`)).text;
  const line = text.split('\n').find((row) => row.startsWith(`${name} `));
  return Number(line?.split(' ')[1] ?? Number.NaN);
}

async function waitReady(url: string): Promise<void> {
  const deadline = performance.now() + 60_000;
  for (;;) {
    try {
      if ((await call(`${url}/readyz`)).status === 200) return;
    } catch (error) {
      if (performance.now() > deadline) throw error;
    }
    await sleep(100);
  }
}

async function batches(url: string, op: 'put' | 'delete', cycle: number): Promise<void> {
  const value = JSON.stringify('v'.repeat(valueBytes));
  for (let start = 0; start < keys; start += BATCH_OPS) {
    const ops: string[] = [];
    for (let index = start; index < Math.min(keys, start + BATCH_OPS); index += 1) {
      const key = `c${cycle}-${String(index).padStart(7, '0')}`;
      ops.push(
        op === 'put'
          ? `{"op":"put","key":"${key}","value":${value}}`
          : `{"op":"delete","key":"${key}"}`,
      );
    }
    const answer = await call(`${url}/batch`, 'POST', `{"ops":[${ops.join(',')}]}`);
    if (answer.status !== 200) throw new Error(`batch answered ${answer.status}: ${answer.text}`);
  }
}

/** Polls until every node has the same /store/hash. */
async function settle(urls: readonly string[]): Promise<void> {
  const deadline = performance.now() + 120_000;
  for (;;) {
    const hashes = await Promise.all(
      urls.map(async (url) => (await call(`${url}/store/hash`)).text),
    );
    if (new Set(hashes).size === 1) return;
    if (performance.now() > deadline) throw new Error('the cluster did not settle');
    await sleep(200);
  }
}

async function runCluster(grace: string): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'peerkv-tombstone-disk-'));
  const ports = [await freePort(), await freePort(), await freePort()];
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  const children: ChildProcess[] = ports.map((port) =>
    spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        MAIN,
        'node',
        '--port',
        String(port),
        '--peers',
        urls.join(','),
        '--data-dir',
        join(dir, `node-${port}`),
        '--pingfreq',
        '0.5',
        '--tombstone-grace',
        grace,
        '--log-level',
        'warn',
      ],
      { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
    ),
  );
  try {
    await Promise.all(urls.map(waitReady));
    const perCycle: { cycle: number; mib: number[]; tombstones: number[] }[] = [];
    const startedMs = performance.now();
    for (let cycle = 0; cycle < cycles; cycle += 1) {
      await batches(urls[0]!, 'put', cycle);
      await batches(urls[1]!, 'delete', cycle);
      await settle(urls);
      perCycle.push({
        cycle,
        mib: await Promise.all(
          urls.map(
            async (url) =>
              Math.round(((await metric(url, 'peerkv_database_bytes')) / MiB) * 10) / 10,
          ),
        ),
        tombstones: await Promise.all(urls.map((url) => metric(url, 'peerkv_tombstones'))),
      });
    }
    const seconds = Math.round((performance.now() - startedMs) / 100) / 10;
    // Once writes stop, removal catches up (a few steps of the grace): the final figures.
    await sleep(5_000);
    await settle(urls);
    const final = {
      mib: await Promise.all(
        urls.map(
          async (url) => Math.round(((await metric(url, 'peerkv_database_bytes')) / MiB) * 10) / 10,
        ),
      ),
      tombstones: await Promise.all(urls.map((url) => metric(url, 'peerkv_tombstones'))),
      removed: await Promise.all(urls.map((url) => metric(url, 'peerkv_tombstones_removed_total'))),
    };
    return { grace, cycles, keysPerCycle: keys, valueBytes, seconds, perCycle, final };
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(
      children.map((child) =>
        child.exitCode === null ? new Promise((done) => child.once('exit', done)) : undefined,
      ),
    );
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const grace of ['2', '3650d']) {
  process.stdout.write(`${JSON.stringify(await runCluster(grace))}\n`);
}
