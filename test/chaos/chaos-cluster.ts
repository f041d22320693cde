// The cluster under test: N real node processes whose peer links each pass through a FaultProxy
// (one per directed link i->j; node i's --peers entry for node j is that proxy's URL), so the
// executor can cut, blackhole, slow or break any link without root.
import assert from 'node:assert/strict';
import { createRng, FaultProxy } from '../helpers/fault-proxy.ts';
import {
  type Cluster,
  freePorts,
  type NodeProcess,
  startCluster,
} from '../helpers/node-process.ts';
import type { LinkFault } from './schedule.ts';

const FLAKY_DROP_PROBABILITY = 0.3;
const KILL_WAIT_MS = 5_000;

export interface ChaosClusterOptions {
  readonly nodes: number;
  readonly pingfreqSeconds: number;
  readonly timeoutSeconds: number;
  readonly tombstoneGraceSeconds: number;
  readonly seed: number;
}

export class ChaosCluster {
  /** Runs of each node so far (1 after the first start), to attribute ops to a node's life. */
  readonly runs: number[];
  #closed = false;

  private constructor(
    readonly cluster: Cluster,
    /** proxies[from][to]: the link node `from` uses to call node `to` (undefined when equal). */
    private readonly proxies: (FaultProxy | undefined)[][],
    private readonly seed: number,
  ) {
    this.runs = cluster.nodes.map(() => 1);
  }

  static async start(options: ChaosClusterOptions): Promise<ChaosCluster> {
    const n = options.nodes;
    // One call for every port, so a proxy can never take a port a node is about to bind.
    const ports = await freePorts(n * n);
    const nodePorts = ports.slice(0, n);
    let next = n;
    const proxies: (FaultProxy | undefined)[][] = nodePorts.map((_, from) =>
      nodePorts.map((targetPort, to) =>
        from === to ? undefined : new FaultProxy({ targetPort, listenPort: ports[next++] }),
      ),
    );
    const all = proxies.flat().filter((p): p is FaultProxy => p !== undefined);
    try {
      await Promise.all(all.map((proxy) => proxy.start()));
      const cluster = await startCluster({
        nodes: n,
        ports: nodePorts,
        pingfreq: options.pingfreqSeconds,
        timeout: options.timeoutSeconds,
        // Anti-entropy every 2 s (default 60 s), so a short run also exercises it; a short
        // tombstone grace, so tombstones and expired entries are removed during the run.
        extraArgs: [
          '--anti-entropy',
          '2',
          '--tombstone-grace',
          String(options.tombstoneGraceSeconds),
          // The checker adds every removed node back with its data: none is ever closed.
          '--removed-member-hold',
          '1d',
        ],
        peerUrlFor: (from, to) => proxies[from]![to]!.url,
      });
      return new ChaosCluster(cluster, proxies, options.seed);
    } catch (error) {
      await Promise.allSettled(all.map((proxy) => proxy.close()));
      throw error;
    }
  }

  /** Nodes some member removed from the cluster and no one has added back yet. */
  readonly removed = new Set<number>();

  /** The URL node `from` calls node `to` at (the link's proxy). */
  peerUrl(from: number, to: number): string {
    const proxy = this.proxies[from]?.[to];
    assert.ok(proxy !== undefined, `no link ${from}->${to}`);
    return proxy.url;
  }

  get size(): number {
    return this.cluster.nodes.length;
  }

  node(index: number): NodeProcess {
    return this.cluster.node(index);
  }

  runningCount(): number {
    return this.cluster.nodes.filter((node) => node.running).length;
  }

  /** Heals every link, then disturbs the given ones; `stepIndex` seeds the flaky links' drops. */
  applyLinks(links: readonly LinkFault[], stepIndex: number): void {
    this.healAll();
    for (const link of links) {
      const proxy = this.proxies[link.from]?.[link.to];
      assert.ok(proxy !== undefined, `no link ${link.from}->${link.to}`);
      if (link.mode === 'cut') proxy.cut();
      else if (link.mode === 'blackhole') proxy.blackhole();
      else if (link.mode === 'slow') proxy.setDelay(link.delayMs ?? 0);
      else {
        // Reset open (pooled) connections, so the link's next calls open new ones that may drop.
        proxy.cut();
        proxy.heal();
        const rng = createRng((this.seed * 31 + stepIndex * 7 + link.from * 3 + link.to) | 0);
        proxy.setDropMidRequest(FLAKY_DROP_PROBABILITY, rng);
      }
    }
  }

  healAll(): void {
    for (const proxy of this.allProxies()) {
      proxy.heal();
      proxy.setDelay(0);
      proxy.setDropMidRequest(0, () => 0); // probability 0: the rng is never called
    }
  }

  /** Connections refused or dropped by the proxies, summed over every link. */
  proxyTotals(): { refused: number; dropped: number; accepted: number } {
    const totals = { refused: 0, dropped: 0, accepted: 0 };
    for (const proxy of this.allProxies()) {
      const stats = proxy.stats();
      totals.refused += stats.connectionsRefused;
      totals.dropped += stats.connectionsDropped;
      totals.accepted += stats.connectionsAccepted;
    }
    return totals;
  }

  /** Kills every node still running, closes the proxies, and removes the temp dir unless kept. */
  async close(keepDirs: boolean): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const results = await Promise.allSettled([
      keepDirs ? this.killAll() : this.cluster.cleanup(),
      ...this.allProxies().map((proxy) => proxy.close()),
    ]);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  private async killAll(): Promise<void> {
    const running = this.cluster.nodes.filter((node) => node.running);
    for (const node of running) node.kill('SIGKILL');
    await Promise.all(running.map((node) => node.waitExit(KILL_WAIT_MS)));
  }

  private allProxies(): FaultProxy[] {
    return this.proxies.flat().filter((p): p is FaultProxy => p !== undefined);
  }
}
