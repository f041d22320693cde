/**
 * Probe for issue 9, point 12: listing latency over many tombstones, and
 * /ping latency while listings run. Starts one node (from this checkout, or
 * from `--root <checkout>` to measure another one), loads `--tombstones`
 * deleted keys under `a/` plus a few live ones through POST /replicate, then
 * times `GET /kv?prefix=a` alone and `GET /ping` under four concurrent
 * listing loops. Prints one JSON line.
 *
 *   npx tsx bench/probes/tombstone-listing.ts --tombstones 300000
 *   npx tsx bench/probes/tombstone-listing.ts --root /path/to/old/checkout
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import minimist from 'minimist';
import { request } from 'undici';
import { freePort } from './probe-support.ts';

const args = minimist(process.argv.slice(2), { string: ['root', 'tombstones', 'samples'] });
const root = resolve(args.root ?? '.');
const tombstones = Number(args.tombstones ?? 300_000);
const samples = Number(args.samples ?? 200);
const NODE = '00000000000000b0';
const BATCH = 5_000;

async function call(url: string, method: 'GET' | 'POST' = 'GET', body?: string) {
  const started = performance.now();
  const response = await request(url, {
    method,
    body,
    headers: body ? { 'content-type': 'application/json' } : {},
    headersTimeout: 120_000,
    bodyTimeout: 120_000,
  });
  const text = await response.body.text();
  if (response.statusCode !== 200)
    throw new Error(`${url} answered ${response.statusCode}: ${text}`);
  return { ms: performance.now() - started, text };
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return (
    Math.round(sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! * 10) /
    10
  );
}

async function load(url: string): Promise<void> {
  for (let start = 0; start < tombstones; start += BATCH) {
    const entries: string[] = [];
    for (let index = start; index < Math.min(tombstones, start + BATCH); index += 1) {
      const version = `${(index + 1).toString(16).padStart(14, '0')}-${NODE}`;
      entries.push(
        `{"key":"a/${String(index).padStart(7, '0')}","deleted":true,"version":"${version}"}`,
      );
    }
    await call(`${url}/replicate`, 'POST', `{"from":"${NODE}","entries":[${entries.join(',')}]}`);
  }
  const live = ['a~1', 'a~2', 'z'].map(
    (key, index) =>
      `{"key":"${key}","value":1,"version":"${(tombstones + index + 1).toString(16).padStart(14, '0')}-${NODE}"}`,
  );
  await call(`${url}/replicate`, 'POST', `{"from":"${NODE}","entries":[${live.join(',')}]}`);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'peerkv-probe-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      join(root, 'src/main.ts'),
      'node',
      '--port',
      String(port),
      '--data-dir',
      join(dir, 'node'),
      '--log-level',
      'warn',
    ],
    { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] },
  );
  try {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await call(`${url}/ping`);
        break;
      } catch (error) {
        if (attempt > 300) throw error;
        await sleep(100);
      }
    }
    await load(url);
    const alone: number[] = [];
    for (let index = 0; index < samples; index += 1)
      alone.push((await call(`${url}/kv?prefix=a`)).ms);
    const empty: number[] = [];
    for (let index = 0; index < samples; index += 1)
      empty.push((await call(`${url}/kv?prefix=q`)).ms);
    const pingQuiet: number[] = [];
    for (let index = 0; index < samples; index += 1) pingQuiet.push((await call(`${url}/ping`)).ms);
    let running = true;
    const listers = Array.from({ length: 4 }, async () => {
      while (running) await call(`${url}/kv?prefix=a`);
    });
    const pingBusy: number[] = [];
    for (let index = 0; index < samples; index += 1) {
      pingBusy.push((await call(`${url}/ping`)).ms);
      await sleep(5);
    }
    running = false;
    await Promise.all(listers);
    const summary = (values: number[]) => ({
      p50: percentile(values, 50),
      p99: percentile(values, 99),
    });
    process.stdout.write(
      `${JSON.stringify({
        root,
        tombstones,
        listPrefixAMs: summary(alone),
        listEmptyPrefixMs: summary(empty),
        pingQuietMs: summary(pingQuiet),
        pingUnderFourListingsMs: summary(pingBusy),
      })}\n`,
    );
  } finally {
    child.kill('SIGTERM');
    await new Promise((done) => child.once('exit', done));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
