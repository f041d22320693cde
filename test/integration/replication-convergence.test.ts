// Goal: three live nodes written concurrently (puts and deletes, some keys from several nodes)
// converge; method: record every acknowledged write, then compare each node's full listing with
// the highest acknowledged version of every key, and require equal /store/hash everywhere.
import { test } from 'node:test';
import { type Cluster, useCluster } from '../helpers/node-process.ts';
import {
  assertConverged,
  deleteKey,
  Ledger,
  PINGFREQ_SECONDS,
  putKey,
  runBounded,
  TIMEOUT_SECONDS,
  withLogsOnFailure,
} from './replication-support.ts';

const OWN_KEYS = 40;
const SHARED_KEYS = 15;
const CROSS_DELETES = 8;
const IN_FLIGHT = 8;
const CONVERGE_MS = 10_000;

let cluster: Cluster;
useCluster({ nodes: 3, pingfreq: PINGFREQ_SECONDS, timeout: TIMEOUT_SECONDS }, (started) => {
  cluster = started;
});

/** Node `i`'s share of the first round: its own keys, every shared key, deletes of others'. */
function firstRound(i: number, ledger: Ledger): (() => Promise<string>)[] {
  const url = cluster.node(i).url;
  const other = (i + 1) % 3;
  const ops: (() => Promise<string>)[] = [];
  for (let j = 0; j < OWN_KEYS; j += 1)
    ops.push(() => putKey(url, `n${i}/k${j}`, { i, j }, ledger));
  for (let j = 0; j < SHARED_KEYS; j += 1) {
    // Every third shared key is deleted by one of the writers: tombstone against puts.
    ops.push(() =>
      j % 3 === i ? deleteKey(url, `shared/${j}`, ledger) : putKey(url, `shared/${j}`, i, ledger),
    );
  }
  for (let j = 0; j < CROSS_DELETES; j += 1) {
    ops.push(() => deleteKey(url, `n${other}/k${j}`, ledger));
  }
  return ops;
}

test('writes to every node converge to the same content and hash', async (t) => {
  await withLogsOnFailure(cluster, async () => {
    const ledger = new Ledger();
    await Promise.all(
      [0, 1, 2].map((i) => runBounded(firstRound(i, ledger), IN_FLIGHT, (op) => op().then())),
    );
    // Second round, once the first is acknowledged: revive deleted keys from another node,
    // overwrite shared keys, delete a few more.
    await Promise.all([
      runBounded([0, 1, 2, 3], IN_FLIGHT, (j) =>
        putKey(cluster.node(2).url, `n1/k${j}`, 'revived', ledger).then(),
      ),
      runBounded([0, 1, 2], IN_FLIGHT, (j) =>
        putKey(cluster.node(1).url, `shared/${j}`, 'late', ledger).then(),
      ),
      runBounded([10, 11, 12], IN_FLIGHT, (j) =>
        deleteKey(cluster.node(0).url, `n2/k${j}`, ledger).then(),
      ),
    ]);
    const startedMs = performance.now();
    await assertConverged(cluster.nodes, ledger, CONVERGE_MS);
    t.diagnostic(
      `${ledger.writes} acknowledged writes, ${ledger.expected().size} live keys; ` +
        `hashes equal ${Math.round(performance.now() - startedMs)} ms after the last ack`,
    );
  });
});
