/**
 * Recovery of a peer, run by the cluster case at every store size:
 *
 * - missed writes: node 3 is SIGKILLed, 100 keys are written to node 1,
 *   node 3 is restarted; the time from its /ping answering to equal
 *   /store/hash on all nodes, and the bytes and entries that every node's
 *   /cluster counters show toward or from node 3 (replication + resync).
 *   How much moves depends on a race (does node 3's resync with node 2 diff
 *   buckets before node 1's replication stream delivers the writes?), so
 *   full mode repeats it and reports the worst trial;
 * - wiped: node 3 is SIGKILLed, its data dir removed, and it is restarted
 *   empty (a new node id); the time to equal hashes, entries/s, bytes.
 */
import type { BenchContext } from '../lib/bench-context.ts';
import {
  type ClusterStatus,
  clusterStatus,
  killNode,
  logStep,
  type PeerkvNode,
  restartNode,
  waitForEqualHashes,
  waitForQuiet,
  writeKeys,
} from '../lib/peerkv.ts';
import type { CaseResult } from '../lib/report.ts';
import { renderLineChart } from '../lib/svg-chart.ts';

export const recoveryGroup = 'Recovery of a peer vs store size';
export const missedWrites = 100;

interface WireCost {
  bytes: number;
  entries: number;
}

export interface Recovery extends WireCost {
  /** Spawn to /ping ready. */
  readyMs: number;
  /** /ping ready to equal hashes on every node. */
  equalMs: number;
  detail: Record<string, unknown>;
}

export interface RecoveryPoint {
  keys: number;
  /** Every entry of the store in its wire form, as a full copy would send it. */
  storeBytes: number;
  /** The worst of the missed-writes trials in each measure. */
  missed: Recovery;
  /** Every trial, for the raw results. */
  missedTrials: Recovery[];
  wiped: Recovery;
}

function worstOf(trials: readonly Recovery[]): Recovery {
  return {
    readyMs: Math.max(...trials.map((t) => t.readyMs)),
    equalMs: Math.max(...trials.map((t) => t.equalMs)),
    bytes: Math.max(...trials.map((t) => t.bytes)),
    entries: Math.max(...trials.map((t) => t.entries)),
    detail: {
      trials: trials.map((t) => ({
        readyMs: t.readyMs,
        equalMs: t.equalMs,
        bytes: t.bytes,
        entries: t.entries,
        ...t.detail,
      })),
    },
  };
}

/** Everything the counters say went over the wire toward or from `target`. */
function wireCost(statuses: ReadonlyMap<PeerkvNode, ClusterStatus>, target: PeerkvNode): WireCost {
  let bytes = 0;
  let entries = 0;
  for (const [node, status] of statuses) {
    const peers = node === target ? status.peers : status.peers.filter((p) => p.url === target.url);
    for (const peer of peers) {
      bytes +=
        peer.replication.bytesSent + peer.resyncTotals.bytesSent + peer.resyncTotals.bytesReceived;
      entries +=
        peer.replication.entriesSent +
        peer.resyncTotals.entriesSent +
        peer.resyncTotals.entriesReceived;
    }
  }
  return { bytes, entries };
}

async function statusesOf(nodes: readonly PeerkvNode[]): Promise<Map<PeerkvNode, ClusterStatus>> {
  const statuses = await Promise.all(nodes.map(clusterStatus));
  return new Map(nodes.map((node, index) => [node, statuses[index]!]));
}

/**
 * Restarts nodes[targetIndex] (already SIGKILLed) and measures until the
 * cluster agrees again. `before` holds the other nodes' counters from before
 * the kill; the restarted node's own counters start from zero.
 */
async function recover(
  ctx: BenchContext,
  nodes: PeerkvNode[],
  targetIndex: number,
  before: ReadonlyMap<PeerkvNode, ClusterStatus>,
  options: { wipe: boolean; deadlineMs: number },
): Promise<Recovery> {
  const restarted = await restartNode(ctx, nodes[targetIndex]!, { wipe: options.wipe });
  const target = restarted.node;
  nodes[targetIndex] = target;
  const equalMs = await waitForEqualHashes(nodes, options.deadlineMs);
  // Resyncs still running (e.g. a peer's deferred one) finish before the counters are read.
  await waitForQuiet(nodes, options.deadlineMs);
  const after = await statusesOf(nodes);
  const spent = wireCost(after, target);
  const earlier = wireCost(before, target);
  return {
    readyMs: restarted.readyMs,
    equalMs,
    bytes: spent.bytes - earlier.bytes,
    entries: spent.entries - earlier.entries,
    detail: {
      restartedNode: after.get(target)!.peers.map((p) => ({
        peer: p.url,
        replication: p.replication,
        lastResync: p.lastResync,
        resyncTotals: p.resyncTotals,
      })),
      towardRestarted: [...after]
        .filter(([node]) => node !== target)
        .map(([node, status]) => {
          const peer = status.peers.find((p) => p.url === target.url);
          return {
            node: node.name,
            replication: peer?.replication,
            lastResync: peer?.lastResync,
            resyncTotals: peer?.resyncTotals,
          };
        }),
    },
  };
}

/** Missed writes (`trials` times), then a wipe, of nodes[targetIndex]; nodes[0] takes the writes. */
export async function measureRecovery(
  ctx: BenchContext,
  nodes: PeerkvNode[],
  targetIndex: number,
  keys: number,
  storeBytes: number,
  trials: number,
): Promise<RecoveryPoint> {
  const writer = nodes[0]!;
  const others = nodes.filter((_, index) => index !== targetIndex);
  const missedTrials: Recovery[] = [];
  for (let trial = 0; trial < trials; trial += 1) {
    const beforeMissed = await statusesOf(others);
    await killNode(nodes[targetIndex]!);
    await writeKeys(writer, `missed${keys}t${trial}`, missedWrites);
    // The live peers have the writes before the dead one comes back.
    await waitForQuiet(others, 30_000);
    const missed = await recover(ctx, nodes, targetIndex, beforeMissed, {
      wipe: false,
      deadlineMs: 60_000,
    });
    missedTrials.push(missed);
    logStep(
      `${keys.toLocaleString('en-US')} keys: ${missedWrites} missed writes: equal hashes ` +
        `${Math.round(missed.equalMs)} ms after ready, ${missed.bytes.toLocaleString('en-US')} bytes`,
    );
  }
  const beforeWiped = await statusesOf(others);
  await killNode(nodes[targetIndex]!);
  const wiped = await recover(ctx, nodes, targetIndex, beforeWiped, {
    wipe: true,
    deadlineMs: 60_000 + keys / 2,
  });
  logStep(
    `${keys.toLocaleString('en-US')} keys: wiped peer rebuilt in ${Math.round(wiped.equalMs)} ms, ` +
      `${wiped.entries.toLocaleString('en-US')} entries moved`,
  );
  return { keys, storeBytes, missed: worstOf(missedTrials), missedTrials, wiped };
}

function rebuildRate(point: RecoveryPoint): number {
  return (point.keys + missedWrites) / (point.wiped.equalMs / 1000);
}

export function recoveryRows(points: readonly RecoveryPoint[]): CaseResult[] {
  const group = recoveryGroup;
  return points.flatMap((point, index) => {
    const largest = index === points.length - 1;
    const k = `${point.keys.toLocaleString('en-US')} keys`;
    const trials = point.missedTrials.length;
    const missedName = `${k}: peer missed ${missedWrites} writes${trials > 1 ? ` (worst of ${trials} trials)` : ''}`;
    const wipedName = `${k}: wiped peer rebuilt`;
    const rows: CaseResult[] = [
      {
        group,
        name: missedName,
        metric: 'restart-ready to equal hashes',
        value: point.missed.equalMs,
        unit: 'ms',
        target: largest ? { on: 'value', op: '<=', threshold: 1_000 } : undefined,
        detail: point.missed.detail,
      },
      {
        group,
        name: missedName,
        metric: 'bytes on the wire (ceiling: store size)',
        value: point.missed.bytes,
        unit: 'B',
        ceiling: point.storeBytes,
        target: largest ? { on: 'ratio', op: '<=', threshold: 0.01 } : undefined,
      },
      {
        group,
        name: missedName,
        metric: 'entries moved (ceiling: missed writes)',
        value: point.missed.entries,
        unit: '',
        ceiling: missedWrites,
      },
      {
        group,
        name: wipedName,
        metric: 'restart-ready to equal hashes',
        value: point.wiped.equalMs,
        unit: 'ms',
        detail: point.wiped.detail,
      },
      {
        group,
        name: wipedName,
        metric: 'rebuild rate',
        value: rebuildRate(point),
        unit: 'entries/s',
        target: largest ? { on: 'value', op: '>=', threshold: 100_000 } : undefined,
      },
      {
        group,
        name: wipedName,
        metric: 'entries moved (ceiling: store entries)',
        value: point.wiped.entries,
        unit: '',
        ceiling: point.keys + missedWrites,
      },
      {
        group,
        name: wipedName,
        metric: 'bytes on the wire (ceiling: store size)',
        value: point.wiped.bytes,
        unit: 'B',
        ceiling: point.storeBytes,
      },
    ];
    return rows;
  });
}

export async function addRecoveryCharts(
  ctx: BenchContext,
  points: readonly RecoveryPoint[],
): Promise<void> {
  const line = (
    name: string,
    title: string,
    yLabel: string,
    series: { name: string; y: (p: RecoveryPoint) => number }[],
  ) =>
    ctx.report.addChart(
      recoveryGroup,
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
  await line('recovery-time', 'Recovery time vs store size', 'restart-ready to equal hashes (ms)', [
    { name: `missed ${missedWrites} writes`, y: (p) => p.missed.equalMs },
    { name: 'wiped', y: (p) => p.wiped.equalMs },
  ]);
  await line(
    'recovery-missed-bytes',
    `Peer that missed ${missedWrites} writes: bytes on the wire`,
    'bytes',
    [
      { name: 'replication + resync bytes', y: (p) => p.missed.bytes },
      { name: '1% of the store', y: (p) => p.storeBytes / 100 },
    ],
  );
  await line('recovery-wiped-entries', 'Wiped peer: entries moved vs store entries', 'entries', [
    { name: 'entries moved', y: (p) => p.wiped.entries },
    { name: 'store entries', y: (p) => p.keys + missedWrites },
  ]);
  await line('recovery-rebuild-rate', 'Wiped peer rebuild rate', 'entries/s', [
    { name: 'rebuild rate', y: rebuildRate },
    { name: 'target', y: () => 100_000 },
  ]);
}
