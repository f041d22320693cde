// Goal: changes a sender could not deliver to a dead peer survive the sender's own restart (SIGTERM
// and SIGKILL) and reach the peer when it is back; method: A and B up, C killed, write to A,
// restart A, start C, then compare full content and read A's per-peer counters in /cluster.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { type Cluster, startCluster } from '../helpers/node-process.ts';
import {
  assertConverged,
  deleteKey,
  Ledger,
  PINGFREQ_SECONDS,
  peerView,
  putKey,
  runBounded,
  TIMEOUT_SECONDS,
  waitAllUp,
  waitLinkIdle,
  waitSameHash,
  withLogsOnFailure,
} from './replication-support.ts';

const WRITES = 50;
const IN_FLIGHT = 8;
const SETTLE_MS = 10_000;

let cluster: Cluster;
const ledger = new Ledger();

before(async () => {
  cluster = await startCluster({ nodes: 3, pingfreq: PINGFREQ_SECONDS, timeout: TIMEOUT_SECONDS });
  // A must have met C (learned its node id) before C goes down, or C is rightly new to A later.
  await waitAllUp(cluster.nodes, SETTLE_MS);
});

after(async () => {
  await cluster?.cleanup();
});

for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
  test(`a sender restarted with ${signal} still delivers to a peer that was down`, async (t) => {
    await withLogsOnFailure(cluster, async () => {
      const [a, b, c] = [cluster.node(0), cluster.node(1), cluster.node(2)];
      c.kill('SIGKILL');
      await c.waitExit();
      const tag = signal.toLowerCase();
      // A's own changes (what its cursor toward C must still cover): puts, and deletes of keys
      // C held when it went down (written in the previous round, if any).
      await runBounded(
        Array.from({ length: WRITES }, (_, j) => j),
        IN_FLIGHT,
        async (j) => {
          if (j % 5 === 4 && ledger.versionOf(`sigterm/${j}`) !== undefined) {
            await deleteKey(a.url, `sigterm/${j}`, ledger);
          } else await putKey(a.url, `${tag}/${j}`, j, ledger);
        },
      );
      await waitSameHash([a, b], SETTLE_MS, 'A and B agree before A restarts');

      assert.ok(a.kill(signal), 'A was running');
      const exited = await a.waitExit();
      // SIGTERM is a clean shutdown (exit 0); SIGKILL gives the cursor no chance to be saved last.
      const expectedExit =
        signal === 'SIGTERM' ? { code: 0, signal: null } : { code: null, signal };
      assert.deepEqual(exited, expectedExit);
      await a.start();
      await c.start();

      await assertConverged(cluster.nodes, ledger, SETTLE_MS);
      const toC = await waitLinkIdle(a.url, c.url, SETTLE_MS);
      const byResync = await peerView(c.url, a.url);
      t.diagnostic(
        `${WRITES} writes on A; A -> C since A's restart: replication.entriesSent ` +
          `${toC.replication.entriesSent}, cursor ${toC.replication.cursor}; ` +
          `C's resync with A: ${JSON.stringify(byResync.resyncTotals)}`,
      );
      // Content above is the main assertion; this says the writes went by A's persisted cursor.
      // If A forgot C across its restart, C looks new: the cursor jumps to the head (0 sent) and
      // the entries arrive only through C's digest resync.
      assert.ok(
        toC.replication.entriesSent >= WRITES,
        `A sent ${toC.replication.entriesSent} entries to C by its cursor, fewer than ${WRITES}`,
      );
    });
  });
}
