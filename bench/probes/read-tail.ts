/**
 * Probe: where the single node's read max latency (400-740 ms in every bench
 * run, p99 6-8 ms) comes from. One compiled node, 10,000 preloaded keys,
 * `GET /store/key` reads with the seed's `{"key"}` body at 50 connections in
 * rounds; every answer slower than `--slow-ms` is printed with when its
 * request was sent (ms into the round) and its connection, and `builtMs` is
 * when autocannon() returned, having built every connection. `--prebuilt` is
 * how many requests each connection gets built (the bench: 1,000).
 * `--node-flag` passes a flag to the node itself (`--node-flag=--trace-gc`).
 *
 * Found (2026-12-04): every slow answer is the first of its connection, sent
 * before builtMs; autocannon takes ~10 ms a connection to build 1,000
 * requests, and those answers wait on it (max 450-770 ms at --prebuilt 1000,
 * 25 ms at --prebuilt 10 once warm). bench/lib/load.ts leaves them out.
 *
 *   npx tsx bench/probes/read-tail.ts [--seconds 5] [--rounds 3] [--slow-ms 50] [--prebuilt 1000]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import minimist from 'minimist';
import { distState } from '../../bin/dist.js';
import { createSeededRandom, randomExistingKeyReads } from '../lib/request-generators.ts';
import { bulkLoad, call, freePort, listening, stopChild } from './probe-support.ts';

const args = minimist(process.argv.slice(2), {
  string: ['seconds', 'rounds', 'slow-ms', 'node-flag', 'prebuilt'],
});
const root = resolve(import.meta.dirname, '..', '..');
const seconds = Number(args.seconds ?? 5);
const rounds = Number(args.rounds ?? 3);
const slowMs = Number(args['slow-ms'] ?? 50);
const prebuilt = Number(args.prebuilt ?? 1_000);
const nodeFlags = [args['node-flag'] ?? []].flat() as string[];
const KEYS = 10_000;
const CONNECTIONS = 50;

async function round(url: string, index: number): Promise<void> {
  const slow: { atMs: number; ms: number; client: number }[] = [];
  const clients = new Map<unknown, number>();
  const started = performance.now();
  let resolveRun: (result: autocannon.Result) => void = () => {};
  const finished = new Promise<autocannon.Result>((resolve) => {
    resolveRun = resolve;
  });
  // The callback form: it returns the event emitter (@types/autocannon types the promise form
  // as a bare Promise), whose 'response' events carry each answer's latency.
  const instance = autocannon(
    {
      url: `${url}/store/key`,
      connections: CONNECTIONS,
      duration: seconds,
      requests: randomExistingKeyReads({
        path: '/store/key',
        keyCount: KEYS,
        random: createSeededRandom(CONNECTIONS + index),
        count: prebuilt,
      }),
    },
    (error: unknown, result: autocannon.Result) => {
      if (error) throw error;
      resolveRun(result);
    },
  );
  // autocannon() returns once it has built every connection's requests.
  const builtMs = Math.round(performance.now() - started);
  instance.on('response', (client: unknown, _status: number, _bytes: number, ms: number) => {
    if (!clients.has(client)) clients.set(client, clients.size);
    if (ms >= slowMs) {
      const atMs = Math.round(performance.now() - started - ms);
      slow.push({ atMs, ms: Math.round(ms), client: clients.get(client)! });
    }
  });
  const result = await finished;
  console.log(
    JSON.stringify({
      round: index,
      rate: Math.round(result.requests.average),
      p99: result.latency.p99,
      max: result.latency.max,
      slow: slow.length,
      builtMs,
    }),
  );
  for (const entry of slow.slice(0, 60)) console.log(`  slow: ${JSON.stringify(entry)}`);
}

const dist = distState(root);
if (!dist.current) throw new Error(`dist/ is ${dist.reason}: run npm run build`);
const dataDir = mkdtempSync(join(tmpdir(), 'peerkv-read-tail-'));
const port = await freePort();
let child: ChildProcess | undefined;
try {
  child = spawn(
    process.execPath,
    [
      ...nodeFlags,
      dist.mainFile,
      'node',
      '--port',
      String(port),
      '--data-dir',
      dataDir,
      '--log-level',
      'warn',
    ],
    { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] },
  );
  const url = `http://127.0.0.1:${port}`;
  await listening(url, '/readyz');
  await bulkLoad(KEYS, async (body) => {
    await call(`${url}/replicate`, 'POST', body);
  });
  for (let index = 0; index < rounds; index += 1) await round(url, index);
} finally {
  if (child) await stopChild(child);
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(0);
