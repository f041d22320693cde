/**
 * Probe for issue 14: one compiled node's read rate against the body-parsing
 * ceiling (bench/lib/ceiling-server.ts) in the same run, alternating, the
 * way `npm run bench` measures them: autocannon, 50 connections, `GET
 * /store/key` with the seed's `{"key"}` body over 1,000 preloaded keys of
 * 100-byte values. `--node-flag` passes a flag to node itself for the peerkv
 * node (`--node-flag=--cpu-prof --node-flag=--cpu-prof-dir=.tmp/prof`).
 *
 *   npx tsx bench/probes/read-rate.ts [--seconds 8] [--rounds 2]
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import minimist from 'minimist';
import { request } from 'undici';
import { distState } from '../../bin/dist.js';
import { createSeededRandom, randomExistingKeyReads } from '../lib/request-generators.ts';
import { freePort, listening, stopChild } from './probe-support.ts';

const args = minimist(process.argv.slice(2), { string: ['seconds', 'rounds', 'node-flag'] });
const root = resolve(import.meta.dirname, '..', '..');
const seconds = Number(args.seconds ?? 8);
const rounds = Number(args.rounds ?? 2);
const nodeFlags = [args['node-flag'] ?? []].flat() as string[];
const KEYS = 1_000;
const CONNECTIONS = 50;

async function rate(url: string): Promise<number> {
  const result = await autocannon({
    url: `${url}/store/key`,
    connections: CONNECTIONS,
    duration: seconds,
    requests: randomExistingKeyReads({
      path: '/store/key',
      keyCount: KEYS,
      random: createSeededRandom(CONNECTIONS),
    }),
  });
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors} errors`);
  }
  return Math.round(result.requests.average);
}

const dist = distState(root);
if (!dist.current) throw new Error(`dist/ is ${dist.reason}: run npm run build`);
const dataDir = mkdtempSync(join(tmpdir(), 'peerkv-read-rate-'));
const [nodePort, ceilingPort] = [await freePort(), await freePort()];
const children: ChildProcess[] = [];
try {
  const nodeArgs = [
    'node',
    '--port',
    String(nodePort),
    '--data-dir',
    dataDir,
    '--log-level',
    'warn',
  ];
  children.push(
    spawn(process.execPath, [...nodeFlags, dist.mainFile, ...nodeArgs], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  const ceilingServer = join(root, 'bench', 'lib', 'ceiling-server.ts');
  children.push(
    spawn(process.execPath, ['--import', 'tsx', ceilingServer, '--port', String(ceilingPort)], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'inherit'],
    }),
  );
  const [nodeUrl, ceilingUrl] = [`http://127.0.0.1:${nodePort}`, `http://127.0.0.1:${ceilingPort}`];
  await Promise.all([listening(nodeUrl, '/readyz'), listening(ceilingUrl, '/ping')]);
  for (let index = 0; index < KEYS; index += 1) {
    const answer = await request(`${nodeUrl}/store`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ key: `k${index}`, value: 'x'.repeat(100) }),
    });
    await answer.body.dump();
  }
  for (let round = 0; round < rounds; round += 1) {
    const ceiling = await rate(ceilingUrl);
    const peerkv = await rate(nodeUrl);
    console.log(
      JSON.stringify({ round, ceiling, peerkv, ratio: Number((peerkv / ceiling).toFixed(3)) }),
    );
  }
} finally {
  await Promise.all(children.map(stopChild));
  rmSync(dataDir, { recursive: true, force: true });
}
process.exit(0);
