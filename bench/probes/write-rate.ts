/**
 * Probe for issue 14: the sustained write rate of one node, or of three with
 * writes to the first, from the sources of a tree (this one by default, or
 * `--tree DIR`, e.g. a `git worktree` of an older commit, for A/B runs one
 * after the other). autocannon, 50 connections, `POST /store` with distinct
 * keys and 100-byte values, on fresh data dirs. Prints the mean and the
 * per-second rates, the first node's commit and checkpoint metrics, and its
 * WAL's size at the end.
 *
 *   npx tsx bench/probes/write-rate.ts                          # 1 node, 12 s, --sync full
 *   npx tsx bench/probes/write-rate.ts --nodes 3 --seconds 12 --sync normal --tree /work/old
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import autocannon from 'autocannon';
import minimist from 'minimist';
import { request } from 'undici';
import { freePort } from './probe-support.ts';

const args = minimist(process.argv.slice(2), {
  string: ['tree', 'nodes', 'seconds', 'sync', 'node-flag'],
});
/** Flags for node itself, for every peerkv node (`--node-flag=--cpu-prof`). */
const nodeFlags = [args['node-flag'] ?? []].flat() as string[];
const tree = resolve(args.tree ?? join(import.meta.dirname, '..', '..'));
const nodeCount = Number(args.nodes ?? 1);
const seconds = Number(args.seconds ?? 12);
const sync = args.sync ?? 'full';
const VALUE = 'x'.repeat(100);
const READY_DEADLINE_MS = 30_000;

async function ready(url: string): Promise<void> {
  const deadline = Date.now() + READY_DEADLINE_MS;
  for (;;) {
    try {
      const answer = await request(`${url}/readyz`);
      await answer.body.dump();
      if (answer.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready in ${READY_DEADLINE_MS} ms`);
    await sleep(50);
  }
}

async function text(url: string): Promise<string> {
  const answer = await request(url);
  return answer.body.text();
}

const root = mkdtempSync(join(tmpdir(), 'peerkv-write-rate-'));
const children: ChildProcess[] = [];
try {
  const ports: number[] = [];
  while (ports.length < nodeCount) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const urls = ports.map((port) => `http://127.0.0.1:${port}`);
  for (const [index, port] of ports.entries()) {
    const nodeArgs = ['--port', String(port), '--data-dir', join(root, `n${index + 1}`)];
    nodeArgs.push('--sync', sync, '--log-level', 'warn');
    if (nodeCount > 1) nodeArgs.push('--peers', urls.join(','));
    const child = spawn(
      process.execPath,
      [...nodeFlags, '--import', 'tsx', join(tree, 'src', 'main.ts'), 'node', ...nodeArgs],
      { cwd: tree, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    children.push(child);
  }
  await Promise.all(urls.map(ready));
  const perSecond: number[] = [];
  let answered = 0;
  let written = 0;
  let finish: (result: autocannon.Result) => void = () => {};
  const finished = new Promise<autocannon.Result>((done) => {
    finish = done;
  });
  const run = autocannon(
    {
      url: `${urls[0]}/store`,
      connections: 50,
      duration: seconds,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      requests: [
        {
          setupRequest: (req) => {
            written += 1;
            return { ...req, body: JSON.stringify({ key: `w-${written}`, value: VALUE }) };
          },
        },
      ],
    },
    (error, result) => {
      if (error) throw error;
      finish(result);
    },
  );
  run.on('response', () => {
    answered += 1;
  });
  const sampler = setInterval(() => {
    perSecond.push(answered);
    answered = 0;
  }, 1_000);
  const result = await finished;
  clearInterval(sampler);
  const metrics = (await text(`${urls[0]}/metrics`))
    .split('\n')
    .filter((line) =>
      /^peerkv_(commit_mutations|commit_duration_seconds|wal_checkpoint_duration_seconds)_(sum|count)|^peerkv_wal_frames/.test(
        line,
      ),
    );
  const walBytes = statSync(join(root, 'n1', 'peerkv.db-wal'), { throwIfNoEntry: false })?.size;
  console.log(
    JSON.stringify({
      tree,
      nodes: nodeCount,
      sync,
      seconds,
      writesPerSec: Math.round(result.requests.average),
      non2xx: result.non2xx,
      errors: result.errors,
      perSecond,
      walBytes,
    }),
  );
  for (const line of metrics) console.log(line);
} finally {
  for (const child of children) child.kill('SIGTERM');
  await Promise.all(
    children.map((child) =>
      child.exitCode === null ? new Promise((done) => child.once('exit', done)) : null,
    ),
  );
  rmSync(root, { recursive: true, force: true });
}
