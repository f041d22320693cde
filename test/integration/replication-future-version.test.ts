// Goal (issue 9, point 10): a version from the future does not move the cluster's clock; method:
// two real nodes with synchronised clocks; a batch holding a version an hour ahead is refused
// whole; one a few seconds ahead is taken, and A's /cluster and log report its clock running
// ahead; the peer's clock stays at wall time.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { test } from 'node:test';
import { LOGICAL_PER_MS, timestampToMs } from '../../src/clock.ts';
import { parseVersion } from '../../src/version.ts';
import { getJson, postJson, putJson } from '../helpers/http.ts';
import { type Cluster, useCluster, waitFor } from '../helpers/node-process.ts';
import { assertError } from './node-support.ts';
import {
  PINGFREQ_SECONDS,
  TIMEOUT_SECONDS,
  waitAllUp,
  withLogsOnFailure,
} from './replication-support.ts';

const OTHER_NODE = '0000000000000f0f';
const HOUR_MS = 3_600_000;
const AHEAD_MS = 5_000;
const DEADLINE_MS = 10_000;

let cluster: Cluster;
useCluster({ nodes: 2, pingfreq: PINGFREQ_SECONDS, timeout: TIMEOUT_SECONDS }, (started) => {
  cluster = started;
});

const versionAt = (ms: number) =>
  `${(ms * LOGICAL_PER_MS).toString(16).padStart(14, '0')}-${OTHER_NODE}`;

const stampedMs = (answer: { body: unknown }) =>
  timestampToMs(parseVersion((answer.body as { version: string }).version)!.timestamp);

test('a version an hour ahead is refused; a few seconds ahead is taken and reported', async () => {
  await withLogsOnFailure(cluster, async () => {
    const [a, b] = [cluster.node(0), cluster.node(1)];
    await waitAllUp(cluster.nodes, DEADLINE_MS);
    const far = await postJson(`${a.url}/replicate`, {
      from: OTHER_NODE,
      entries: [{ key: 'from-the-future', value: 1, version: versionAt(Date.now() + HOUR_MS) }],
    });
    assertError(far, 400, 'BAD_BATCH', 'an hour ahead');
    assert.match((far.body as { error: string }).error, /too far ahead/);
    assert.equal((await getJson(`${a.url}/kv/from-the-future`)).status, 404);

    const near = await postJson(`${a.url}/replicate`, {
      from: OTHER_NODE,
      entries: [{ key: 'a-bit-ahead', value: 1, version: versionAt(Date.now() + AHEAD_MS) }],
    });
    assert.equal(near.status, 200, near.text);
    const status = await getJson(`${a.url}/cluster`);
    const clock = (status.body as { node: { clock: { aheadOfWallMs: number; ahead: boolean } } })
      .node.clock;
    assert.ok(
      clock.aheadOfWallMs > 1_000 && clock.aheadOfWallMs <= AHEAD_MS + 1_000,
      `${clock.aheadOfWallMs}`,
    );
    assert.equal(clock.ahead, true);
    const metric = /^peerkv_clock_ahead_seconds\S* (\S+)$/m.exec(
      (await getJson(`${a.url}/metrics`)).text,
    );
    assert.ok(metric && Number(metric[1]) > 1, `peerkv_clock_ahead_seconds ${metric?.[1]}`);
    await waitFor(
      () => fs.readFileSync(a.logPath, 'utf8').includes('clock runs ahead of wall time'),
      {
        timeoutMs: DEADLINE_MS,
        message: 'A logs that its clock runs ahead',
      },
    );
    // B's clock was not moved (A does not forward what it took from a third node) ...
    const onB = await putJson(`${b.url}/kv/elsewhere`, 'y');
    assert.ok(Math.abs(stampedMs(onB) - Date.now()) < 2_000, 'B is stamped at wall time');
    // ... and a write on A orders after the version A took, as a hybrid clock must.
    const onA = await putJson(`${a.url}/kv/later`, 'x');
    assert.ok(stampedMs(onA) >= Date.now() + 1_000, 'A orders after the version it took');
  });
});
