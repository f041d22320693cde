/**
 * Scaling with the store's size, run by the cluster case at every size:
 * writes to node 1 (overwrites of random existing keys, so the store keeps
 * its size and the writes land all over the key space) with GET /store/hash
 * polled beside them; node 1's RSS; and node 1 restarted on its data dir:
 * the time from spawn to /ping ready, and GET /ping latency while its
 * start-up digest scrub hashes every key in a pool worker.
 */
import type { BenchContext } from '../lib/bench-context.ts';
import type { LoadResult } from '../lib/load.ts';
import { rowsFromLoad } from '../lib/load-rows.ts';
import {
  clusterStatus,
  connectionsText,
  logStep,
  type PeerkvNode,
  restartNode,
  waitForOutput,
} from '../lib/peerkv.ts';
import { readRssBytes } from '../lib/processes.ts';
import type { CaseResult, Target } from '../lib/report.ts';
import { randomExistingKeyWrites } from '../lib/request-generators.ts';
import { renderLineChart } from '../lib/svg-chart.ts';

export const scalingGroup = 'Scaling with store size (3-node cluster, writes to node 1)';
/** GET /store/hash requests per second beside the write load. */
export const hashRate = 200;
/** The scrub of a million keys takes seconds; give up on it after this. */
const scrubDeadlineSec = 300;
const MiB = 1024 * 1024;

/** Resync traffic between the nodes while the writes ran (anti-entropy, every 6 pings). */
export interface ResyncTraffic {
  runs: number;
  bytes: number;
  entries: number;
}

export interface WritePoint {
  writes: LoadResult;
  hash: LoadResult;
  resyncDuringWrites: ResyncTraffic;
}

export interface RestartPoint {
  /** SIGTERM to exit of the old process (SIGKILL after the grace). */
  stopMs: number;
  /** Spawn to /ping ready. */
  startupMs: number;
  /** From /ping ready to the scrub's log line; 0 if it was done before. */
  scrubMs: number;
  pingDuringScrub: LoadResult;
}

export interface ScalePoint extends WritePoint, RestartPoint {
  keys: number;
  rssAfterLoad: number;
  rssAfterWrites: number;
}

/** Overwrites of random preloaded keys at `connections`, optionally at a fixed rate. */
export function updateLoad(
  ctx: BenchContext,
  url: string,
  keyCount: number,
  options: { connections: number; seed: number; durationSec?: number; overallRate?: number },
): Promise<LoadResult> {
  const rate = options.overallRate === undefined ? '' : ` at ${options.overallRate}/s`;
  return ctx.load({
    label: `peerkv POST /store (random existing key of ${keyCount}) c=${options.connections}${rate}`,
    url: `${url}/store`,
    connections: options.connections,
    durationSec: options.durationSec,
    overallRate: options.overallRate,
    requestsForConnection: randomExistingKeyWrites({
      path: '/store',
      keyCount,
      seed: options.seed,
    }),
  });
}

/** Resync runs, bytes and entries every node has started, summed over its peers. */
async function resyncTotals(nodes: readonly PeerkvNode[]): Promise<ResyncTraffic> {
  const statuses = await Promise.all(nodes.map(clusterStatus));
  const total: ResyncTraffic = { runs: 0, bytes: 0, entries: 0 };
  for (const peer of statuses.flatMap((s) => s.peers)) {
    total.runs += peer.resyncTotals.runs;
    total.bytes += peer.resyncTotals.bytesSent + peer.resyncTotals.bytesReceived;
    total.entries += peer.resyncTotals.entriesSent + peer.resyncTotals.entriesReceived;
  }
  return total;
}

/**
 * Writes to nodes[0] at the default connection count with GET /store/hash
 * polled beside them; counts the resyncs the nodes ran meanwhile.
 */
export async function measureWrites(
  ctx: BenchContext,
  nodes: readonly PeerkvNode[],
  keyCount: number,
  durationSec: number,
): Promise<WritePoint> {
  const writer = nodes[0]!;
  const connections = ctx.settings.connectionsDefault;
  const before = await resyncTotals(nodes);
  const [writes, hash] = await Promise.all([
    updateLoad(ctx, writer.url, keyCount, { connections, seed: keyCount, durationSec }),
    ctx.load({
      label: `peerkv GET /store/hash (${hashRate}/s beside the writes)`,
      url: `${writer.url}/store/hash`,
      connections: 1,
      durationSec,
      overallRate: hashRate,
      progressStream: null,
      // Polled from the write load's process, it measured that process's event loop: at 1M
      // keys p99 32-99 ms there against 3-9 ms from a process of its own, at the same time
      // (bench/probes/big-store-writes.ts).
      ownProcess: true,
    }),
  ]);
  const after = await resyncTotals(nodes);
  const resyncDuringWrites = {
    runs: after.runs - before.runs,
    bytes: after.bytes - before.bytes,
    entries: after.entries - before.entries,
  };
  return { writes, hash, resyncDuringWrites };
}

/**
 * Restarts nodes[index] on its data dir (with its peers, which hold the same
 * data, so its start-up resyncs find equal hashes) and loads GET /ping at once
 * until the start-up digest scrub's log line appears.
 */
export async function measureRestart(
  ctx: BenchContext,
  nodes: PeerkvNode[],
  index: number,
): Promise<RestartPoint> {
  const restarted = await restartNode(ctx, nodes[index]!, {
    options: { logLevel: 'debug' },
    // Long enough to see peerkv's own shutdown grace (10 s) in full mode.
    stopGraceMs: ctx.settings.quick ? 5_000 : 15_000,
  });
  const node = restarted.node;
  nodes[index] = node;
  const readyAt = performance.now();
  const scrubDone = new AbortController();
  const scrubSeen = waitForOutput(
    node.server,
    'digest scrub',
    AbortSignal.timeout(scrubDeadlineSec * 1000),
  ).finally(() => scrubDone.abort());
  const c = ctx.settings.connectionsDefault;
  const pingDuringScrub = await ctx.load({
    label: `peerkv GET /ping c=${c} during the start-up scrub`,
    url: `${node.url}/ping`,
    connections: c,
    durationSec: scrubDeadlineSec,
    stopSignal: scrubDone.signal,
  });
  const scrubMs = Math.max(0, (await scrubSeen) - readyAt);
  logStep(
    `${node.name} ready ${Math.round(restarted.readyMs)} ms after spawn, ` +
      `scrub done ${Math.round(scrubMs)} ms after ready`,
  );
  return { stopMs: restarted.stopMs ?? 0, startupMs: restarted.readyMs, scrubMs, pingDuringScrub };
}

export async function rssOf(node: PeerkvNode): Promise<number> {
  return readRssBytes(node.server.pid);
}

function atMost(threshold: number): Target {
  return { on: 'value', op: '<=', threshold };
}

function pointRows(ctx: BenchContext, point: ScalePoint, largest: boolean): CaseResult[] {
  const group = scalingGroup;
  const k = `${point.keys.toLocaleString('en-US')} keys`;
  const c = ctx.settings.connectionsDefault;
  const echo = ctx.ceilings.echo;
  const ping = ctx.ceilings.pingByConnections.get(c)!;
  const pingOne = ctx.ceilings.pingByConnections.get(1) ?? ping;
  const row = (name: string, metric: string, value: number, unit: string, target?: Target) =>
    ({ group, name: `${k}: ${name}`, metric, value, unit, target }) as CaseResult;
  return [
    ...rowsFromLoad({
      group,
      name: `${k}: POST /store, ${connectionsText(c)} (vs POST /echo)`,
      load: point.writes,
      ceiling: echo,
    }),
    ...rowsFromLoad({
      group,
      name: `${k}: GET /store/hash at ${hashRate}/s during the writes (vs GET /ping, 1 connection)`,
      load: point.hash,
      ceiling: pingOne,
      latencyMsP99Max: largest ? 5 : undefined,
    }).filter((r) => r.metric !== 'throughput'),
    row('resyncs run during the writes (anti-entropy)', 'runs', point.resyncDuringWrites.runs, ''),
    row(
      'resyncs run during the writes (anti-entropy)',
      'bytes on the wire',
      point.resyncDuringWrites.bytes,
      'B',
    ),
    row(
      'resyncs run during the writes (anti-entropy)',
      'entries moved',
      point.resyncDuringWrites.entries,
      '',
    ),
    row('node 1 after the bulk load', 'RSS', point.rssAfterLoad / MiB, 'MiB', atMost(250)),
    row('node 1 after the write run', 'RSS', point.rssAfterWrites / MiB, 'MiB', atMost(250)),
    row('node 1 restarted', 'SIGTERM to exit', point.stopMs, 'ms'),
    row('node 1 restarted', 'spawn to /ping ready', point.startupMs, 'ms'),
    row('node 1 restarted', 'start-up scrub done after ready', point.scrubMs, 'ms'),
    ...rowsFromLoad({
      group,
      name: `${k}: GET /ping, ${connectionsText(c)}, during the start-up scrub (vs GET /ping)`,
      load: point.pingDuringScrub,
      ceiling: ping,
      latencyMsP99Max: largest ? 50 : undefined,
    }),
  ].map((r) => (largest || r.metric !== 'RSS' ? r : { ...r, target: undefined }));
}

/** The largest store against the smallest (issue 14: throughput ≥ 0.85×, p99 ≤ 1.3×; p50 ≤ 1.2×). */
function flatnessRows(first: ScalePoint, last: ScalePoint): CaseResult[] {
  const text = (keys: number) => `${keys.toLocaleString('en-US')} keys`;
  const name = `writes at ${text(last.keys)} (ceiling: the same at ${text(first.keys)})`;
  const flat = (metric: string, value: number, ceiling: number, unit: string, target: Target) =>
    ({ group: scalingGroup, name, metric, value, ceiling, unit, target }) as CaseResult;
  return [
    flat('throughput', last.writes.requestsPerSecMean, first.writes.requestsPerSecMean, 'req/s', {
      on: 'ratio',
      op: '>=',
      threshold: 0.85,
    }),
    flat('latency p50', last.writes.latencyMsP50, first.writes.latencyMsP50, 'ms', {
      on: 'ratio',
      op: '<=',
      threshold: 1.2,
    }),
    flat('latency p99', last.writes.latencyMsP99, first.writes.latencyMsP99, 'ms', {
      on: 'ratio',
      op: '<=',
      threshold: 1.3,
    }),
  ];
}

export function scalingRows(ctx: BenchContext, points: readonly ScalePoint[]): CaseResult[] {
  const rows = points.flatMap((p, i) => pointRows(ctx, p, i === points.length - 1));
  if (points.length > 1) rows.push(...flatnessRows(points[0]!, points.at(-1)!));
  return rows;
}

export async function addScalingCharts(
  ctx: BenchContext,
  points: readonly ScalePoint[],
): Promise<void> {
  const line = (
    name: string,
    title: string,
    yLabel: string,
    series: { name: string; y: (p: ScalePoint) => number }[],
  ) =>
    ctx.report.addChart(
      scalingGroup,
      name,
      title,
      renderLineChart({
        title,
        xLabel: 'keys in the store (log scale)',
        yLabel,
        xScale: 'log',
        series: series.map((s) => ({
          name: s.name,
          points: points.map((p) => ({ x: p.keys, y: s.y(p) })),
        })),
      }),
    );
  const echo = ctx.ceilings.echo.requestsPerSecMean;
  await line('scaling-write-throughput', 'Write throughput vs store size', 'writes/s', [
    { name: 'peerkv POST /store (3 nodes)', y: (p) => p.writes.requestsPerSecMean },
    { name: 'ceiling POST /echo', y: () => echo },
  ]);
  await line('scaling-write-latency', 'Write latency vs store size', 'latency (ms)', [
    { name: 'p50', y: (p) => p.writes.latencyMsP50 },
    { name: 'p99', y: (p) => p.writes.latencyMsP99 },
  ]);
  await line('scaling-hash-latency', 'GET /store/hash latency during writes', 'latency (ms)', [
    { name: 'p50', y: (p) => p.hash.latencyMsP50 },
    { name: 'p99', y: (p) => p.hash.latencyMsP99 },
    { name: 'target p99', y: () => 5 },
  ]);
  await line('scaling-rss', 'Node RSS vs store size', 'MiB', [
    { name: 'after bulk load', y: (p) => p.rssAfterLoad / MiB },
    { name: 'after write run', y: (p) => p.rssAfterWrites / MiB },
    { name: 'target', y: () => 250 },
  ]);
  await line('scaling-startup', 'Start-up vs store size', 'ms', [
    { name: 'spawn to /ping ready', y: (p) => p.startupMs },
    { name: 'scrub done after ready', y: (p) => p.scrubMs },
    { name: 'GET /ping p99 during scrub', y: (p) => p.pingDuringScrub.latencyMsP99 },
  ]);
}
