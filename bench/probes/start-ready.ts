/**
 * Probe for issue 14: a node's idle memory and its start-up time, compiled
 * (`node dist/src/main.js`, what bin/peerkv.js runs while dist/ is current)
 * and from the sources (`node --import tsx src/main.ts`, the bin's fallback).
 * For each mode and run it spawns a node on an empty data dir and on one
 * holding `--keys` keys, times spawn -> first HTTP answer (listening) and
 * spawn -> `/readyz` 200 (the start-up digest scrub done), then samples RSS
 * (the node plus its child processes: tsx's esbuild service) for `--idle-sec`
 * seconds, past the pool's idle timeout. The keyed data dir is built once
 * (POST /replicate batches of 5,000) under .tmp/ and reused. Prints one JSON
 * line per run, then a summary (medians).
 *
 *   npx tsx bench/probes/start-ready.ts                        # both modes, 3 runs, 1M keys
 *   npx tsx bench/probes/start-ready.ts --modes compiled --runs 1 --keys 100000 --idle-sec 10
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import minimist from 'minimist';
import { request } from 'undici';
import { distState } from '../../bin/dist.js';
import { bulkLoad, freePort, stopChild } from './probe-support.ts';

const args = minimist(process.argv.slice(2), {
  string: ['modes', 'runs', 'keys', 'idle-sec', 'data-dir'],
});
const root = resolve(import.meta.dirname, '..', '..');
const modes = (args.modes ?? 'sources,compiled').split(',') as Mode[];
const runs = Number(args.runs ?? 3);
const keys = Number(args.keys ?? 1_000_000);
const idleSec = Number(args['idle-sec'] ?? 40);
const keyedDir = resolve(args['data-dir'] ?? join(root, '.tmp', `probe-start-${keys}`));
const POLL_MS = 5;
const READY_DEADLINE_MS = 120_000;
const CALL_TIMEOUT_MS = 120_000;
const MiB = 1024 * 1024;

type Mode = 'sources' | 'compiled';

function nodeCommand(mode: Mode): string[] {
  if (mode === 'sources') return ['--import', 'tsx', join(root, 'src', 'main.ts')];
  const dist = distState(root);
  if (!dist.current) throw new Error(`dist/ is ${dist.reason}: run npm run build first`);
  return [dist.mainFile];
}

function spawnNode(mode: Mode, port: number, dataDir: string): ChildProcess {
  const flags = ['node', '--port', String(port), '--data-dir', dataDir, '--log-level', 'warn'];
  return spawn(process.execPath, [...nodeCommand(mode), ...flags], {
    cwd: root,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

/** Status of GET url, or 0 when nothing answers yet. */
async function status(url: string): Promise<number> {
  try {
    const answer = await request(url, { headersTimeout: 1_000, bodyTimeout: 1_000 });
    await answer.body.dump();
    return answer.statusCode;
  } catch {
    // Not listening yet (ECONNREFUSED) is what the poll waits out.
    return 0;
  }
}

/** Milliseconds from `startedMonoMs` to the first answer and to /readyz 200. */
async function waitReady(url: string, startedMonoMs: number) {
  let listeningMs: number | undefined;
  while (performance.now() - startedMonoMs < READY_DEADLINE_MS) {
    const code = await status(`${url}/readyz`);
    if (code !== 0) listeningMs ??= performance.now() - startedMonoMs;
    if (code === 200)
      return { listeningMs: listeningMs!, readyMs: performance.now() - startedMonoMs };
    await sleep(POLL_MS);
  }
  throw new Error(`${url} not ready after ${READY_DEADLINE_MS} ms`);
}

/** RSS of `pid` and of every process below it (tsx's esbuild service), from /proc. */
function treeRssBytes(pid: number): { nodeBytes: number; childrenBytes: number } {
  const rss = (p: number) => {
    const match = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  };
  const parentOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parentOf.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // The process ended between readdir and read: it has no RSS to count.
    }
  }
  let childrenBytes = 0;
  for (const [p] of parentOf) {
    let up = parentOf.get(p);
    while (up !== undefined && up !== pid && up > 1) up = parentOf.get(up);
    if (up === pid) childrenBytes += rss(p);
  }
  return { nodeBytes: rss(pid), childrenBytes };
}

async function call(url: string, body: string): Promise<unknown> {
  const answer = await request(url, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
    headersTimeout: CALL_TIMEOUT_MS,
    bodyTimeout: CALL_TIMEOUT_MS,
  });
  const text = await answer.body.text();
  assert.equal(answer.statusCode, 200, text);
  return JSON.parse(text);
}

/** Builds the keyed data dir once (compiled when dist/ is current, else from sources). */
async function ensureKeyedDir(): Promise<void> {
  const marker = join(keyedDir, 'probe-complete.json');
  if (existsSync(marker)) return;
  rmSync(keyedDir, { recursive: true, force: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawnNode(distState(root).current ? 'compiled' : 'sources', port, keyedDir);
  const startedMonoMs = performance.now();
  try {
    await waitReady(url, startedMonoMs);
    await bulkLoad(keys, async (body, count) => {
      const answer = (await call(`${url}/replicate`, body)) as { applied: number };
      assert.equal(answer.applied, count);
    });
    const loadSec = (performance.now() - startedMonoMs) / 1000;
    process.stderr.write(
      `[probe] ${keys} keys loaded into ${keyedDir} in ${loadSec.toFixed(1)} s\n`,
    );
  } finally {
    await stopChild(child);
  }
  writeFileSync(marker, `${JSON.stringify({ keys, builtAt: new Date().toISOString() })}\n`);
}

async function measure(mode: Mode, dataDir: string, storeKeys: number) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const startedMonoMs = performance.now();
  const child = spawnNode(mode, port, dataDir);
  try {
    const { listeningMs, readyMs } = await waitReady(url, startedMonoMs);
    const samples: { sec: number; nodeBytes: number; childrenBytes: number }[] = [];
    for (let sec = 0; sec <= idleSec; sec += 1) {
      samples.push({ sec, ...treeRssBytes(child.pid!) });
      if (sec < idleSec) await sleep(1_000);
    }
    const mib = (bytes: number) => Math.round((bytes / MiB) * 10) / 10;
    const at = (sample: (typeof samples)[number]) => ({
      node: mib(sample.nodeBytes),
      children: mib(sample.childrenBytes),
    });
    return {
      mode,
      keys: storeKeys,
      listeningMs: Math.round(listeningMs),
      readyMs: Math.round(readyMs),
      rssMiBAtReady: at(samples[0]!),
      rssMiBAt5s: at(samples[Math.min(5, samples.length - 1)]!),
      rssMiBAtEnd: { sec: idleSec, ...at(samples.at(-1)!) },
      rssMiBPeak: mib(Math.max(...samples.map((s) => s.nodeBytes + s.childrenBytes))),
    };
  } finally {
    await stopChild(child);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

async function main(): Promise<void> {
  await ensureKeyedDir();
  const results: Awaited<ReturnType<typeof measure>>[] = [];
  for (let run = 0; run < runs; run += 1) {
    for (const mode of modes) {
      const empty = mkdtempSync(join(tmpdir(), 'peerkv-probe-start-'));
      try {
        results.push(await measure(mode, join(empty, 'd'), 0));
      } finally {
        rmSync(empty, { recursive: true, force: true });
      }
      process.stdout.write(`${JSON.stringify(results.at(-1))}\n`);
      results.push(await measure(mode, keyedDir, keys));
      process.stdout.write(`${JSON.stringify(results.at(-1))}\n`);
    }
  }
  const summary = [];
  for (const mode of modes) {
    for (const storeKeys of [0, keys]) {
      const mine = results.filter((r) => r.mode === mode && r.keys === storeKeys);
      const of = (pick: (r: (typeof mine)[number]) => number) => median(mine.map(pick));
      summary.push({
        mode,
        keys: storeKeys,
        runs: mine.length,
        listeningMs: of((r) => r.listeningMs),
        readyMs: of((r) => r.readyMs),
        idleRssMiB: of((r) => r.rssMiBAtEnd.node + r.rssMiBAtEnd.children),
        idleRssNodeMiB: of((r) => r.rssMiBAtEnd.node),
        rssMiBAt5s: of((r) => r.rssMiBAt5s.node + r.rssMiBAt5s.children),
        rssMiBPeak: of((r) => r.rssMiBPeak),
      });
    }
  }
  process.stdout.write(`${JSON.stringify({ summary, idleSec })}\n`);
}

await main();
