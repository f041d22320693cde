// Goal: a write made later in real time on a node whose clock runs 5 minutes behind still wins,
// because its hybrid clock observed the earlier version, and the skew shows in /cluster; method:
// two nodes, B with PEERKV_CLOCK_OFFSET_MS=-300000, write k on A, then on B once B has A's.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Cluster, startCluster, waitFor } from '../helpers/node-process.ts';
import {
  assertConverged,
  Ledger,
  listAll,
  PINGFREQ_SECONDS,
  peerView,
  putKey,
  TIMEOUT_SECONDS,
  withLogsOnFailure,
} from './replication-support.ts';

const OFFSET_MS = -300_000;
/** How far the measured offset may be from the configured one (ping round trips, scheduling). */
const OFFSET_TOLERANCE_MS = 5_000;
const SETTLE_MS = 10_000;

let cluster: Cluster;

before(async () => {
  cluster = await startCluster({
    nodes: 2,
    pingfreq: PINGFREQ_SECONDS,
    timeout: TIMEOUT_SECONDS,
    env: (index): Record<string, string> =>
      index === 1 ? { PEERKV_CLOCK_OFFSET_MS: String(OFFSET_MS) } : {},
  });
});

after(async () => {
  await cluster?.cleanup();
});

test('a later write on a node with a lagging clock wins on both nodes', async () => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b] = [cluster.node(0), cluster.node(1)];
    const ledger = new Ledger();
    const versionA = await putKey(a.url, 'k', 'from-a', ledger);
    await waitFor(async () => (await listAll(b.url)).get('k')?.version === versionA, {
      timeoutMs: SETTLE_MS,
      message: `B holds A's write of k (${versionA})`,
    });
    const versionB = await putKey(b.url, 'k', 'from-b', ledger);
    assert.ok(versionB > versionA, `B's version ${versionB} must order after A's ${versionA}`);
    await assertConverged(cluster.nodes, ledger, SETTLE_MS);
    for (const node of cluster.nodes) {
      const item = (await listAll(node.url)).get('k');
      assert.deepEqual(item, { value: 'from-b', version: versionB }, `${node.name} keeps B's k`);
    }
  });
});

test("A's /cluster reports B's clock 5 minutes behind and skewed", async (t) => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b] = [cluster.node(0), cluster.node(1)];
    const view = await waitFor(
      async () => {
        const peer = await peerView(a.url, b.url);
        return peer.clockOffsetMs !== null ? peer : undefined;
      },
      { timeoutMs: SETTLE_MS, message: "A has measured B's clock offset" },
    );
    t.diagnostic(`A sees B's clockOffsetMs ${view.clockOffsetMs}, clockSkewed ${view.clockSkewed}`);
    assert.ok(
      Math.abs((view.clockOffsetMs ?? 0) - OFFSET_MS) <= OFFSET_TOLERANCE_MS,
      `offset ${view.clockOffsetMs} is not within ${OFFSET_TOLERANCE_MS} ms of ${OFFSET_MS}`,
    );
    assert.equal(view.clockSkewed, true);
  });
});
