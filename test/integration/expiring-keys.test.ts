// Checks expiring keys on a real three-node cluster: a key written with a 1 s TTL (PUT ?ttl, POST
// /store "ttl", a batch op) reads as absent on every node once it expires — also on a node that
// was down when it was written and received it only after its expiry — and its older value never
// comes back; hashes agree between a node that swept the expired values and one that never sweeps;
// hostile ttl values are refused with nothing written.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { getJson, postJson, putJson } from '../helpers/http.ts';
import { type Cluster, useCluster, waitFor } from '../helpers/node-process.ts';
import { assertError, storeHash } from './node-support.ts';
import { waitSameHash } from './replication-support.ts';

const kv = (url: string, key: string): string => `${url}/kv/${encodeURIComponent(key)}`;
const CONVERGE_MS = 15_000;

async function swept(url: string): Promise<number> {
  const answer = await getJson(`${url}/cluster`);
  return (answer.body as { node: { expiredSwept: number } }).node.expiredSwept;
}

describe('expiring keys', () => {
  let cluster: Cluster;
  let a = '';
  let b = '';
  useCluster(
    {
      nodes: 3,
      pingfreq: 0.25,
      timeout: 2,
      // Node 1 never sweeps during the test: its expired entries keep their values.
      extraArgs: (index) => (index === 1 ? ['--expiry-sweep', '3600'] : ['--expiry-sweep', '0.2']),
    },
    (started) => {
      cluster = started;
    },
  );
  before(() => {
    a = cluster.node(0).url;
    b = cluster.node(1).url;
  });

  test('a 1 s TTL expires on every node, also one that was down and got it late', async () => {
    await putJson(kv(a, 'session'), 'old');
    await waitSameHash(cluster.nodes, CONVERGE_MS);
    await cluster.node(2).stop();
    const put = await putJson(`${kv(a, 'session')}?ttl=1`, 'new');
    assert.equal(put.status, 200, put.text);
    const { expiresAt } = put.body as { expiresAt: number };
    assert.ok(Math.abs(expiresAt - (Date.now() + 1_000)) < 1_000, put.text);
    const stored = await postJson(`${b}/store`, { key: 'seed-style', value: 1, ttl: 1 });
    assert.equal(stored.status, 200, stored.text);
    const batch = await postJson(`${a}/batch`, {
      ops: [{ op: 'put', key: 'batch-ttl', value: 2, ttl: 1 }],
    });
    assert.equal(batch.status, 200, batch.text);
    const read = await getJson(kv(b, 'session'));
    if (read.status === 200)
      assert.equal((read.body as { expiresAt: number }).expiresAt, expiresAt);
    await waitFor(
      async () => {
        for (const url of [a, b]) {
          for (const key of ['session', 'seed-style', 'batch-ttl']) {
            if ((await getJson(kv(url, key))).status !== 404) return false;
          }
        }
        return true;
      },
      { timeoutMs: 5_000, message: 'the keys expire on A and B' },
    );
    const listing = await getJson(`${b}/kv?prefix=s`);
    assert.deepEqual((listing.body as { items: unknown[] }).items, []);
    assert.equal((await getJson(`${a}/store/key?key=session`)).status, 404);
    await waitFor(async () => (await swept(a)) >= 3, { timeoutMs: 5_000, message: 'A swept' });
    await cluster.node(2).start();
    const hash = await waitSameHash(cluster.nodes, CONVERGE_MS);
    assert.equal(await storeHash(cluster.node(2).url), hash);
    const late = await getJson(kv(cluster.node(2).url, 'session'));
    assert.equal(late.status, 404, `the older value must not come back: ${late.text}`);
    assert.equal(await swept(b), 0, 'B has not swept, yet its hash agrees');
  });

  test('an expired key is absent for conditions; a new write brings it back', async () => {
    const first = await putJson(`${kv(a, 'lease')}?ttl=0.3`, 'holder-1');
    assert.equal(first.status, 200, first.text);
    const taken = await putJson(kv(a, 'lease'), 'holder-2', { headers: { 'if-none-match': '*' } });
    assert.equal(taken.status, 412, 'still held');
    await waitFor(async () => (await getJson(kv(a, 'lease'))).status === 404, {
      timeoutMs: 5_000,
      message: 'the lease expires',
    });
    const again = await putJson(kv(a, 'lease'), 'holder-2', { headers: { 'if-none-match': '*' } });
    assert.equal(again.status, 200, again.text);
    const read = await getJson(kv(a, 'lease'));
    assert.equal((read.body as { value: string }).value, 'holder-2');
    assert.equal((read.body as { expiresAt?: number }).expiresAt, undefined);
    await waitSameHash(cluster.nodes, CONVERGE_MS);
  });

  test('hostile ttl values are refused and write nothing', async () => {
    await waitSameHash(cluster.nodes, CONVERGE_MS);
    const before = await storeHash(a);
    for (const ttl of ['0', '-1', 'abc', '1e3', '0.0001', '400000000', '', 'NaN', 'Infinity']) {
      assertError(await putJson(`${kv(a, 'h')}?ttl=${ttl}`, 1), 400, 'BAD_REQUEST', `ttl=${ttl}`);
    }
    assertError(await putJson(`${kv(a, 'h')}?ttl=1&ttl=2`, 1), 400, 'BAD_REQUEST', 'twice');
    for (const ttl of [0, -5, 'x', null, true, [1], { s: 1 }, 1e300]) {
      const answer = await postJson(`${a}/store`, { key: 'h', value: 1, ttl });
      assertError(answer, 400, 'BAD_REQUEST', `ttl ${JSON.stringify(ttl)}`);
    }
    const op = await postJson(`${a}/batch`, { ops: [{ op: 'delete', key: 'h', ttl: 1 }] });
    assert.equal(op.status, 400, op.text);
    assert.equal(await storeHash(a), before, 'nothing was written');
  });
});
