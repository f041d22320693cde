/**
 * A 3-node cluster on this one machine, grown through the store sizes
 * (10k, 100k, 1M keys; quick mode 10k and 30k): at each size every node is
 * bulk-loaded to that size, then
 *
 * 1. clients write to node 1 (scaling.ts): write rate, latency, GET
 *    /store/hash beside it, time until the peers have caught up, RSS;
 * 2. node 3 misses 100 writes, then is wiped (recovery.ts);
 * 3. node 1 is restarted: start-up time, GET /ping during its scrub
 *    (scaling.ts);
 * 4. at the first size only, on the freshly restarted node 1 (its lag
 *    samples live until a restart): writes at half the measured rate, and
 *    the replication lag its /cluster reports (ack time − write time, per
 *    batch).
 *
 * Writes overwrite random existing keys, so the store keeps the size it is
 * measured at however long a run lasts.
 */
import type { BenchCase, BenchContext } from '../lib/bench-context.ts';
import type { LoadResult } from '../lib/load.ts';
import { percentileRowsFromLoad, rowsFromLoad } from '../lib/load-rows.ts';
import {
  type BulkData,
  bulkLoad,
  bulkStoreBytes,
  type ClusterStatus,
  clusterStatus,
  connectionsText,
  logStep,
  makeBulkData,
  type NodeOptions,
  type PeerkvNode,
  startCluster,
  waitForEqualHashes,
  waitForPeersUp,
  waitForQuiet,
} from '../lib/peerkv.ts';
import type { CaseResult } from '../lib/report.ts';
import { renderBarChart } from '../lib/svg-chart.ts';
import {
  addRecoveryCharts,
  measureRecovery,
  type RecoveryPoint,
  recoveryGroup,
  recoveryRows,
} from './recovery.ts';
import {
  addScalingCharts,
  hashRate,
  measureRestart,
  measureWrites,
  rssOf,
  type ScalePoint,
  scalingGroup,
  scalingRows,
  updateLoad,
} from './scaling.ts';

const group = '3-node cluster (writes to node 1, replicated to 2 peers)';
/**
 * Short pings so a restarted peer is noticed quickly (anti-entropy runs every
 * 6 pings); shorter still in quick mode, where every second counts.
 */
function clusterOptions(ctx: BenchContext): NodeOptions {
  return { pingfreqSec: ctx.settings.quick ? 0.25 : 0.5, timeoutSec: 5 };
}
const settleDeadlineMs = 300_000;

interface LagPoint {
  /** The full-rate run it is half of. */
  fullRate: number;
  load: LoadResult;
  p50: number;
  p99: number;
  batches: number;
}

interface FirstSize {
  keys: number;
  writes: LoadResult;
  catchUpMs: number;
  lag: LagPoint;
}

/** The worst lag over the node's peers. */
function lagOf(status: ClusterStatus): { p50: number; p99: number; batches: number } {
  return {
    p50: Math.max(...status.peers.map((p) => p.replication.lagMsP50 ?? Number.NaN)),
    p99: Math.max(...status.peers.map((p) => p.replication.lagMsP99 ?? Number.NaN)),
    batches: status.peers.reduce((sum, p) => sum + p.replication.batchesSent, 0),
  };
}

async function settle(nodes: readonly PeerkvNode[]): Promise<void> {
  await waitForEqualHashes(nodes, settleDeadlineMs);
  await waitForQuiet(nodes, settleDeadlineMs);
}

/** Writes at half `fullRate` on a node restarted just before (fresh lag samples). */
async function measureLag(
  ctx: BenchContext,
  nodes: PeerkvNode[],
  keys: number,
  fullRate: number,
): Promise<LagPoint> {
  await waitForPeersUp(nodes, 30_000);
  const rate = Math.max(1, Math.round(fullRate / 2));
  const load = await updateLoad(ctx, nodes[0]!.url, keys, {
    connections: ctx.settings.connectionsDefault,
    seed: 2 * keys + 1,
    overallRate: rate,
    durationSec: ctx.settings.quick ? 2 : ctx.settings.durationSec,
  });
  const lag = lagOf(await clusterStatus(nodes[0]!));
  await settle(nodes);
  logStep(`replication lag at ${rate}/s: p50 ${lag.p50} ms, p99 ${lag.p99} ms`);
  return { fullRate, load, ...lag };
}

interface SizeResult {
  scale: ScalePoint;
  /** Undefined where skipped (quick mode measures recovery at its largest size only). */
  recovery?: RecoveryPoint;
  first?: FirstSize;
}

async function measureSize(
  ctx: BenchContext,
  nodes: PeerkvNode[],
  data: BulkData,
  loadedBefore: number,
  isFirst: boolean,
  withRecovery: boolean,
): Promise<SizeResult> {
  const keys = data.keyCount;
  const loadMs = await bulkLoad(nodes, data, loadedBefore);
  await settle(nodes);
  logStep(
    `${keys.toLocaleString('en-US')} keys: ${(keys - loadedBefore).toLocaleString('en-US')} ` +
      `keys bulk-loaded into 3 nodes in ${(loadMs / 1000).toFixed(1)} s`,
  );
  const rssAfterLoad = await rssOf(nodes[0]!);
  if (isFirst) {
    // JIT and caches: thrown away.
    await updateLoad(ctx, nodes[0]!.url, keys, {
      connections: ctx.settings.connectionsDefault,
      seed: 7,
      durationSec: ctx.settings.warmupSec,
    });
    await settle(nodes);
  }
  const durationSec = isFirst ? ctx.settings.durationSec : ctx.settings.sweepDurationSec;
  const written = await measureWrites(ctx, nodes, keys, durationSec);
  const stoppedAt = performance.now();
  await waitForEqualHashes(nodes, settleDeadlineMs);
  const catchUpMs = performance.now() - stoppedAt;
  await waitForQuiet(nodes, settleDeadlineMs);
  const rssAfterWrites = await rssOf(nodes[0]!);
  const recovery = withRecovery
    ? await measureRecovery(ctx, nodes, 2, keys, bulkStoreBytes(data), ctx.settings.quick ? 1 : 3)
    : undefined;
  const restart = await measureRestart(ctx, nodes, 0);
  const first = isFirst
    ? {
        keys,
        writes: written.writes,
        catchUpMs,
        lag: await measureLag(ctx, nodes, keys, written.writes.requestsPerSecMean),
      }
    : undefined;
  if (!isFirst) await settle(nodes);
  return {
    scale: { keys, ...written, ...restart, rssAfterLoad, rssAfterWrites },
    recovery,
    first,
  };
}

function clusterRows(ctx: BenchContext, first: FirstSize): CaseResult[] {
  const c = ctx.settings.connectionsDefault;
  const echo = ctx.ceilings.echo;
  const k = `${first.keys.toLocaleString('en-US')} keys`;
  const halfName = `${k}: POST /store at half that rate (${Math.round(first.lag.fullRate / 2).toLocaleString('en-US')}/s), ${connectionsText(c)}`;
  return [
    ...percentileRowsFromLoad({
      group,
      name: `${k}: POST /store to node 1, ${connectionsText(c)} (vs POST /echo)`,
      load: first.writes,
      ceiling: echo,
      throughputRatioMin: 0.4,
    }),
    // Issue 14's ratio: against polka reading and parsing the very same bodies.
    ...rowsFromLoad({
      group,
      name: `${k}: POST /store to node 1, ${connectionsText(c)} (vs polka parsing the same bodies)`,
      load: first.writes,
      ceiling: ctx.ceilings.parsing.writes,
      throughputRatioMin: 0.5,
    }).filter((row) => row.metric === 'throughput'),
    {
      group,
      name: `${k}: after that run`,
      metric: 'time until all hashes equal',
      value: first.catchUpMs,
      unit: 'ms',
    },
    {
      group,
      name: halfName,
      metric: 'throughput (ceiling: the full-rate run)',
      value: first.lag.load.requestsPerSecMean,
      unit: 'req/s',
      ceiling: first.writes.requestsPerSecMean,
      load: first.lag.load,
    },
    {
      group,
      name: halfName,
      metric: 'client latency p99 (ceiling: POST /echo)',
      value: first.lag.load.latencyMsP99,
      unit: 'ms',
      ceiling: echo.latencyMsP99,
      load: first.lag.load,
    },
    {
      group,
      name: `${halfName}: replication lag, worst peer`,
      metric: 'lag p50',
      value: first.lag.p50,
      unit: 'ms',
    },
    {
      group,
      name: `${halfName}: replication lag, worst peer`,
      metric: 'lag p99',
      value: first.lag.p99,
      unit: 'ms',
      target: { on: 'value', op: '<=', threshold: 100 },
    },
    {
      group,
      name: `${halfName}: replication lag, worst peer`,
      metric: 'batches acknowledged',
      value: first.lag.batches,
      unit: '',
    },
  ];
}

function addNotes(ctx: BenchContext): void {
  const pingfreq = clusterOptions(ctx).pingfreqSec;
  const writes =
    'Writes overwrite preloaded keys picked at random (the store keeps its size; the ' +
    'single-node case measures distinct new keys).';
  ctx.report.addNote(
    group,
    `Three nodes with \`--pingfreq ${pingfreq} --sync full\`, every one ` +
      `bulk-loaded through \`POST /replicate\` with the same keys and 100-byte values. ${writes} ` +
      "Replication lag is what the writer's `/cluster` reports: per acknowledged batch, ack " +
      'time minus the HLC time of its oldest write, p50/p99 over the last 2,048 batches, on a ' +
      'writer restarted just before the half-rate run (autocannon `overallRate`). "Time until ' +
      'all hashes equal" runs from the end of the full-rate run.',
  );
  ctx.report.addNote(
    scalingGroup,
    `The same cluster, grown to each size. ${writes} \`GET /store/hash\` is polled at ` +
      `${hashRate}/s by one more connection during the write run, from a process of its own ` +
      "(from the write load's process it measured that process's event loop). The restart is of node 1 " +
      'with its peers (equal data, so its start-up resyncs find equal hashes); GET /ping is ' +
      "loaded from the moment it answers until its start-up scrub's log line (autocannon stops " +
      'on whole seconds, so at least 1 s). Targets apply to the largest size; the flatness rows ' +
      'compare the largest size with the smallest (the smallest is the longer, headline run).',
  );
  ctx.report.addNote(
    recoveryGroup,
    "Node 3 of the same cluster. Bytes are the sum of every node's `/cluster` counters toward " +
      'or from node 3: replication `bytesSent` and resync `bytesSent` + `bytesReceived` ' +
      '(pings not counted), read once no resync runs any more; the store size is every entry ' +
      "in its wire form. Times run from node 3's /ping answering to equal `/store/hash` on all " +
      'three nodes. What a peer that missed writes costs depends on a race: if its start-up ' +
      "resync with node 2 diffs buckets before node 1's replication stream has delivered the " +
      'writes, key summaries of every differing bucket cross the wire (about N / 4,096 keys per ' +
      'bucket); full mode therefore repeats it 3 times and reports the worst trial (all trials ' +
      'are in the raw results).',
  );
}

async function run(ctx: BenchContext): Promise<CaseResult[]> {
  const sizes = ctx.settings.quick ? [10_000, 30_000] : [10_000, 100_000, 1_000_000];
  const nodes = await startCluster(ctx, 'cluster', 3, clusterOptions(ctx));
  await waitForPeersUp(nodes, 30_000);
  const results: SizeResult[] = [];
  let loaded = 0;
  for (const [index, keys] of sizes.entries()) {
    const data = makeBulkData(keys);
    const last = index === sizes.length - 1;
    // Quick mode (a smoke test, under a minute) recovers a peer at its largest size only.
    const withRecovery = !ctx.settings.quick || last;
    results.push(await measureSize(ctx, nodes, data, loaded, index === 0, withRecovery));
    loaded = keys;
  }
  const recoveries = results.flatMap((r) => (r.recovery ? [r.recovery] : []));
  const first = results[0]!.first!;
  addNotes(ctx);
  const rows = [
    ...clusterRows(ctx, first),
    ...scalingRows(
      ctx,
      results.map((r) => r.scale),
    ),
    ...recoveryRows(recoveries),
  ];
  const chart = renderBarChart({
    title: `Writes, ${connectionsText(ctx.settings.connectionsDefault)}: 3-node cluster vs bare polka`,
    yLabel: 'requests/s',
    categories: ['3 nodes, POST /store to node 1', 'bare polka POST /echo'],
    series: [
      {
        name: 'writes/s',
        values: [first.writes.requestsPerSecMean, ctx.ceilings.echo.requestsPerSecMean],
      },
    ],
  });
  await ctx.report.addChart(group, 'cluster-writes-vs-ceiling', 'Cluster writes vs ceiling', chart);
  await addScalingCharts(
    ctx,
    results.map((r) => r.scale),
  );
  await addRecoveryCharts(ctx, recoveries);
  return rows;
}

export const clusterCase: BenchCase = { name: 'cluster', run };
