/**
 * One peerkv node (no peers, --sync full), preloaded with 10,000 keys:
 * durable writes of distinct keys (POST /store), reads of existing keys
 * (GET /store/key, the seed's JSON body and the ?key= form), and a 90 % read
 * / 10 % write mix, each with its latency percentiles, beside the ceilings;
 * then the concurrency sweep (concurrency.ts) on the same node.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { limits } from '../../src/limits.ts';
import type { BenchCase, BenchContext } from '../lib/bench-context.ts';
import type { LoadResult } from '../lib/load.ts';
import { blendLoads, percentileRowsFromLoad, rowsFromLoad } from '../lib/load-rows.ts';
import { bulkLoad, connectionsText, makeBulkData, startSingleNode } from '../lib/peerkv.ts';
import { readRssBytes } from '../lib/processes.ts';
import type { CaseResult } from '../lib/report.ts';
import {
  createSeededRandom,
  distinctKeyWrites,
  mixedReadsAndWrites,
  randomExistingKeyReads,
} from '../lib/request-generators.ts';
import { renderBarChart } from '../lib/svg-chart.ts';
import { runConcurrencySweep } from './concurrency.ts';

export const preloadedKeys = 10_000;
const group = `Single node (${preloadedKeys.toLocaleString('en-US')} keys preloaded, --sync full)`;
const MiB = 1024 * 1024;
/** Share of writes in the mixed load. */
const mixedWriteShare = 0.1;

/** A node of its own: no peers, durable commits (the default --sync full). */
export const singleNodeOptions = { pingfreqSec: 1, timeoutSec: 5 } as const;

/** Distinct-key writes at `connections`; `tag` keeps the keys of every run apart. */
export function writeLoad(
  ctx: BenchContext,
  url: string,
  connections: number,
  tag: string,
  extra: { durationSec?: number; overallRate?: number } = {},
): Promise<LoadResult> {
  return ctx.load({
    label: `peerkv POST /store c=${connections} (${tag})`,
    url: `${url}/store`,
    connections,
    ...extra,
    requestsForConnection: distinctKeyWrites({ path: '/store', keyPrefix: tag }),
  });
}

/** Reads of random preloaded keys with the seed's JSON body `{"key"}`. */
export function readLoad(
  ctx: BenchContext,
  url: string,
  connections: number,
  keyCount: number,
  extra: { durationSec?: number } = {},
): Promise<LoadResult> {
  return ctx.load({
    label: `peerkv GET /store/key c=${connections}`,
    url: `${url}/store/key`,
    connections,
    ...extra,
    requests: randomExistingKeyReads({
      path: '/store/key',
      keyCount,
      random: createSeededRandom(connections),
    }),
  });
}

async function measure(ctx: BenchContext, url: string) {
  const c = ctx.settings.connectionsDefault;
  // Warm-up on keys of their own, so the measured writes are all new keys.
  await writeLoad(ctx, url, c, 'warm', { durationSec: ctx.settings.warmupSec });
  const writes = await writeLoad(ctx, url, c, 'w');
  const reads = await readLoad(ctx, url, c, preloadedKeys);
  const readsQuery = await ctx.load({
    label: `peerkv GET /store/key?key= c=${c}`,
    url: `${url}/store/key`,
    connections: c,
    durationSec: ctx.settings.sweepDurationSec,
    requests: randomExistingKeyReads({
      path: (key) => `/store/key?key=${encodeURIComponent(key)}`,
      makeBody: null,
      keyCount: preloadedKeys,
      random: createSeededRandom(7),
    }),
  });
  const mixed = await ctx.load({
    label: `peerkv 90% GET /store/key + 10% POST /store c=${c}`,
    url,
    connections: c,
    durationSec: ctx.settings.sweepDurationSec,
    requestsForConnection: mixedReadsAndWrites({
      writeShare: mixedWriteShare,
      readPath: '/store/key',
      writePath: '/store',
      keyCount: preloadedKeys,
      keyPrefix: 'mix',
      seed: 11,
    }),
  });
  return { writes, reads, readsQuery, mixed };
}

/** The throughput row of `load` against the body-parsing ceiling, with the target. */
function vsParsing(
  name: string,
  load: LoadResult,
  ceiling: LoadResult,
  throughputRatioMin: number,
): CaseResult[] {
  return rowsFromLoad({
    group,
    name: `${name} (vs polka parsing the same bodies)`,
    load,
    ceiling,
    throughputRatioMin,
  }).filter((row) => row.metric === 'throughput');
}

/** Past the pool's idle timeout, so its start-up threads have ended. */
const IDLE_AFTER_READY_MS = limits.poolIdleTimeoutMs + 5_000;

async function run(ctx: BenchContext): Promise<CaseResult[]> {
  // Issue 14's idle RSS: a node on an empty data dir that is never asked anything. It idles
  // through the runs below (no peers: it pings no one) and is read once its pool idled out.
  // Quick mode (CI) does not wait the pool's idle timeout out: no idle node there.
  const idle = ctx.settings.quick ? null : await startSingleNode(ctx, 'idle', singleNodeOptions);
  const idleReadyMonoMs = performance.now();
  const node = await startSingleNode(ctx, 'single', singleNodeOptions);
  await bulkLoad([node], makeBulkData(preloadedKeys));
  const { writes, reads, readsQuery, mixed } = await measure(ctx, node.url);
  const rssBytes = await readRssBytes(node.server.pid);
  let idleRssBytes: number | null = null;
  if (idle) {
    await sleep(Math.max(0, idleReadyMonoMs + IDLE_AFTER_READY_MS - performance.now()));
    idleRssBytes = await readRssBytes(idle.server.pid);
    await ctx.processes.stop(idle.server);
  }
  const c = ctx.settings.connectionsDefault;
  const sweepRows = await runConcurrencySweep(
    ctx,
    {
      writes: (connections, durationSec) =>
        writeLoad(ctx, node.url, connections, `sweep${connections}`, { durationSec }),
      reads: (connections, durationSec) =>
        readLoad(ctx, node.url, connections, preloadedKeys, { durationSec }),
    },
    { connections: c, writes, reads },
  );
  const ping = ctx.ceilings.pingByConnections.get(c)!;
  const echo = ctx.ceilings.echo;
  const mixCeiling = blendLoads('ceiling 90% GET /ping + 10% POST /echo', [
    { load: ping, share: 1 - mixedWriteShare },
    { load: echo, share: mixedWriteShare },
  ]);
  const at = connectionsText(c);
  const rows: CaseResult[] = [
    ...percentileRowsFromLoad({
      group,
      name: `POST /store, distinct keys, ${at} (vs POST /echo)`,
      load: writes,
      ceiling: echo,
      throughputRatioMin: 0.5,
    }),
    ...percentileRowsFromLoad({
      group,
      name: `GET /store/key, JSON body, ${at} (vs GET /ping)`,
      load: reads,
      ceiling: ping,
      throughputRatioMin: 0.7,
    }),
    // Issue 14's ratios: against polka reading and parsing the very same bodies.
    ...vsParsing(`POST /store, distinct keys, ${at}`, writes, ctx.ceilings.parsing.writes, 0.8),
    ...vsParsing(`GET /store/key, JSON body, ${at}`, reads, ctx.ceilings.parsing.reads, 1.0),
    ...percentileRowsFromLoad({
      group,
      name: `GET /store/key?key=, ${at} (vs GET /ping)`,
      load: readsQuery,
      ceiling: ping,
    }),
    ...percentileRowsFromLoad({
      group,
      name: `90% reads / 10% writes, ${at} (vs the same mix of ceilings)`,
      load: mixed,
      ceiling: mixCeiling,
    }),
    {
      group,
      name: 'node after all runs',
      metric: 'RSS',
      value: rssBytes / MiB,
      unit: 'MiB',
    },
    ...(idleRssBytes === null
      ? []
      : [
          {
            group,
            name: `idle node: empty, no peers, never asked anything, ${IDLE_AFTER_READY_MS / 1000} s after ready`,
            metric: 'RSS',
            value: idleRssBytes / MiB,
            unit: 'MiB',
            target: { on: 'value', op: '<=', threshold: 70 },
          } satisfies CaseResult,
        ]),
  ];
  ctx.report.addNote(
    group,
    `Writes are \`POST /store\` of keys never written before (acknowledged after the SQLite commit, ` +
      `WAL fsynced: \`--sync full\`); their ceiling is the bare polka \`POST /echo\` with the same ` +
      `bodies. Reads pick preloaded keys at random. The mix's ceiling is the 90/10 blend of the ` +
      `two ceilings (harmonic mean of throughput; latencies weighted, an approximation). ` +
      `The \`?key=\` and mixed runs last ${ctx.settings.sweepDurationSec} s.`,
  );
  const chart = renderBarChart({
    title: `Single node vs bare polka, ${at}`,
    yLabel: 'requests/s',
    categories: ['POST /store', 'GET /store/key', 'GET ?key=', '90/10 mix'],
    series: [
      {
        name: 'peerkv',
        values: [writes, reads, readsQuery, mixed].map((l) => l.requestsPerSecMean),
      },
      {
        name: 'ceiling',
        values: [echo, ping, ping, mixCeiling].map((l) => l.requestsPerSecMean),
      },
    ],
  });
  await ctx.report.addChart(group, 'single-node-vs-ceiling', 'Single node vs ceiling', chart);
  return [...rows, ...sweepRows];
}

export const singleNodeCase: BenchCase = { name: 'single-node', run };
