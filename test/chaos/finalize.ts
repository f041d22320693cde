// The end of a run: heal every link, restart every stopped node, wait (with a deadline) until all
// nodes hold the same hash and content, measure how long that took after the final heal, then
// stop every node with SIGTERM and run SQLite's integrity check on each data dir.
import { sleep } from '../helpers/http.ts';
import type { ChaosCluster } from './chaos-cluster.ts';
import { changeMembership, startNode, stopNode } from './executor.ts';
import type { History } from './history.ts';
import { canonical, integrityCheck, type NodeSnapshot, readHash, snapshot } from './observe.ts';
import { ALL_KEYS } from './schedule.ts';

const POLL_INTERVAL_MS = 100;

export interface FinalState {
  readonly healAtMs: number;
  /** When every node was running again after the final heal. */
  readonly readyAtMs: number;
  readonly converged: boolean;
  /** Time of the first poll that found every node equal (undefined if none did). */
  readonly convergedAtMs: number | undefined;
  /** The last snapshot read from each node (undefined: could not be read, or node down). */
  readonly snapshots: readonly (NodeSnapshot | undefined)[];
  /** Per node: 'ok', or what the integrity check (or opening the file) reported. */
  readonly integrity: readonly string[];
}

export interface FinalizeContext {
  readonly cluster: ChaosCluster;
  readonly history: History;
  readonly convergeTimeoutMs: number;
  readonly log: (line: string) => void;
}

export async function finalize(ctx: FinalizeContext): Promise<FinalState> {
  ctx.cluster.healAll();
  const healAtMs = ctx.history.nowMs();
  const stopped = ctx.cluster.cluster.nodes.flatMap((node, i) => (node.running ? [] : [i]));
  // A node that will not start is already an incident in the history; the rest still converge.
  await Promise.allSettled(stopped.map((i) => startNode(ctx, i, undefined, undefined)));
  await addBackRemoved(ctx, healAtMs + ctx.convergeTimeoutMs);
  const readyAtMs = ctx.history.nowMs();
  ctx.log(`final heal done; restarted ${stopped.length} node(s); waiting for convergence`);
  const wait = await waitConverged(ctx, healAtMs + ctx.convergeTimeoutMs);
  const running = ctx.cluster.cluster.nodes.flatMap((node, i) => (node.running ? [i] : []));
  await Promise.all(running.map((i) => stopNode(ctx, i, 'SIGTERM')));
  const integrity = ctx.cluster.cluster.nodes.map((node) => {
    try {
      return integrityCheck(node.dataDir);
    } catch (error) {
      return `cannot open: ${error instanceof Error ? error.message : String(error)}`;
    }
  });
  return { healAtMs, readyAtMs, ...wait, integrity };
}

type Wait = Pick<FinalState, 'converged' | 'convergedAtMs' | 'snapshots'>;

async function waitConverged(ctx: FinalizeContext, deadlineMs: number): Promise<Wait> {
  const nodes = ctx.cluster.cluster.nodes;
  let snapshots: (NodeSnapshot | undefined)[] = nodes.map(() => undefined);
  while (ctx.history.nowMs() < deadlineMs) {
    const pollMs = ctx.history.nowMs();
    const hashes = await Promise.all(
      nodes.map((node) => readHash(node.url).catch(() => undefined)),
    );
    if (hashes.every((hash) => hash !== undefined && hash === hashes[0])) {
      snapshots = await readAll(ctx);
      const texts = snapshots.map((snap) => (snap === undefined ? undefined : canonical(snap)));
      const again = await Promise.all(
        nodes.map((node) => readHash(node.url).catch(() => undefined)),
      );
      const stable = again.every((hash) => hash === hashes[0]);
      if (stable && texts.every((text) => text !== undefined && text === texts[0])) {
        return { converged: true, convergedAtMs: pollMs, snapshots };
      }
    }
    await sleep(POLL_INTERVAL_MS);
  }
  return { converged: false, convergedAtMs: undefined, snapshots: await readAll(ctx) };
}

async function readAll(ctx: FinalizeContext): Promise<(NodeSnapshot | undefined)[]> {
  return Promise.all(
    ctx.cluster.cluster.nodes.map((node) =>
      node.running ? snapshot(node.url, ALL_KEYS).catch(() => undefined) : undefined,
    ),
  );
}

/** Adds back every node still removed from the cluster, through any other node, until the deadline. */
async function addBackRemoved(ctx: FinalizeContext, deadlineMs: number): Promise<void> {
  const cluster = ctx.cluster;
  while (cluster.removed.size > 0 && ctx.history.nowMs() < deadlineMs) {
    for (const index of [...cluster.removed]) {
      for (let via = 0; via < cluster.size && cluster.removed.has(index); via += 1) {
        if (via !== index) await changeMembership(cluster, 'member-add', index, via);
      }
    }
    if (cluster.removed.size > 0) await sleep(250);
  }
  if (cluster.removed.size > 0) {
    ctx.log(`could not add back node(s) ${[...cluster.removed].join(', ')} before the deadline`);
  }
}
